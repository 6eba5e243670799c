"""The published identity graph, indexed for one-record lookups.

Built from the outputs of the last materialization — ``membership``, ``identifiers``,
``golden_profiles`` and the registry of issued ids — with vectorised Polars into plain
dicts (normalized identifier value → the record that anchors its group) and sorted
columns searched by bisection. A lookup is a dict access or a binary search, never a
scan of a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from customer360.core.stable_ids import ID_REGISTRY_STATE
from customer360.core.storage import ArtifactStore

GRAPH_TABLES = ("membership", "identifiers", "golden_profiles")
LINEAGE_TABLE = "cluster_lineage"

Fingerprint = tuple[tuple[int, int] | None, ...]


def graph_fingerprint(store: ArtifactStore) -> Fingerprint:
    """(size, modification time) of every file the index is built from: a cheap stat
    that changes whenever a materialization publishes a new graph."""
    paths = [store.path(table) for table in GRAPH_TABLES] + [store.state_path(ID_REGISTRY_STATE)]
    return tuple(_stat(path) for path in paths)


def _stat(path: Any) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_size, stat.st_mtime_ns)


class SortedKeys:
    """Row numbers of a sorted text column, found by bisection: as fast as a dict for
    one lookup, without a dict entry per row."""

    def __init__(self, keys: pl.Series) -> None:
        self._keys = keys.to_numpy()

    def find(self, key: str) -> int | None:
        index = int(np.searchsorted(self._keys, key))
        return index if index < len(self._keys) and self._keys[index] == key else None

    def span(self, key: str) -> range:
        """The rows holding ``key`` (empty when none do)."""
        return range(
            int(np.searchsorted(self._keys, key, side="left")),
            int(np.searchsorted(self._keys, key, side="right")),
        )


@dataclass(frozen=True)
class GraphMatch:
    """The published customer that holds an identifier value."""

    resolved_id: str
    entity_key: str  # the record anchoring the value's group (first in canonical order)
    group_size: int  # records sharing the value


class GraphIndex:
    """One published graph, read-only once built; a reload builds a new one."""

    def __init__(self, store: ArtifactStore, fingerprint: Fingerprint) -> None:
        self.fingerprint = fingerprint
        self.loaded_at = datetime.now(UTC)
        self._lineage_path = store.path(LINEAGE_TABLE)
        membership = store.read("membership", ["entity_key", "source", "record_key", "resolved_id"])
        self.record_count = membership.height
        # membership is in canonical order (most trusted, earliest first), so a group's
        # anchor — the record its identity edges start from — is its lowest position
        self._entity_keys = membership.get_column("entity_key")
        self._resolved_ids = membership.get_column("resolved_id")
        self._values, self._group_sizes, self._oversize = _value_index(store, membership)

        by_entity = membership.select("entity_key", "resolved_id").sort("entity_key")
        self._entity_index = SortedKeys(by_entity.get_column("entity_key"))
        self._entity_resolved_ids = by_entity.get_column("resolved_id")

        self._members = membership.select("resolved_id", "entity_key", "source", "record_key").sort(
            "resolved_id", "entity_key"
        )
        self._member_index = SortedKeys(self._members.get_column("resolved_id"))
        self.customer_count = self._members.get_column("resolved_id").n_unique()

        profiles = store.read("golden_profiles") if store.exists("golden_profiles") else None
        self._profiles = (
            profiles.sort("resolved_id")
            if profiles is not None
            else pl.DataFrame(schema={"resolved_id": pl.String})
        )
        self._profile_index = SortedKeys(self._profiles.get_column("resolved_id"))

        issued = _issued_ids(membership, store.read_state(ID_REGISTRY_STATE))
        self._issued_index = SortedKeys(issued.get_column("resolved_id"))
        self._issued_seqs = issued.get_column("issued_seq")

    def match(self, identifier_type: str, value: str) -> GraphMatch | None:
        """The customer whose records link on this value, if the value links at all."""
        position = self._values.get(identifier_type, {}).get(value)
        if position is None:
            return None
        return GraphMatch(
            resolved_id=self._resolved_ids[position],
            entity_key=self._entity_keys[position],
            group_size=self._group_sizes.get(identifier_type, {}).get(value, 1),
        )

    def links_on(self, identifier_type: str, value: str) -> bool:
        """The batch classified this value as linkable (and may have found it over-size)."""
        return value in self._values.get(identifier_type, ()) or self.is_oversize(
            identifier_type, value
        )

    def is_oversize(self, identifier_type: str, value: str) -> bool:
        """Shared by more records than max_group_size allows: it links nothing."""
        return value in self._oversize.get(identifier_type, ())

    def resolved_id_of(self, entity_key: str) -> str | None:
        row = self._entity_index.find(entity_key)
        return None if row is None else self._entity_resolved_ids[row]

    def is_issued(self, resolved_id: str) -> bool:
        """Issued by a run, now or ever: such an id is never handed out again."""
        return self._issued_index.find(resolved_id) is not None

    def issued_seq(self, resolved_id: str) -> int | None:
        """When the id was first issued (the registry's order; oldest first)."""
        row = self._issued_index.find(resolved_id)
        return None if row is None else self._issued_seqs[row]

    def profile(self, resolved_id: str) -> dict[str, Any] | None:
        row = self._profile_index.find(resolved_id)
        return None if row is None else self._profiles.row(row, named=True)

    def members(self, resolved_id: str) -> list[dict[str, Any]]:
        rows = self._member_index.span(resolved_id)
        return (
            self._members.slice(rows.start, len(rows)).drop("resolved_id").to_dicts()
            if rows
            else []
        )

    def lineage(self, resolved_id: str) -> list[dict[str, Any]]:
        """Every recorded change of id that involves this customer, oldest first."""
        if not self._lineage_path.is_file():
            return []
        involved = (pl.col("resolved_id") == resolved_id) | (
            pl.col("previous_resolved_id") == resolved_id
        )
        return (
            pl.scan_parquet(self._lineage_path)
            .filter(involved & (pl.col("change_type") != "UNCHANGED"))
            .sort("recorded_at", "entity_key")
            .collect()
            .to_dicts()
        )


def _value_index(
    store: ArtifactStore, membership: pl.DataFrame
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]], dict[str, set[str]]]:
    """Per identifier type: linkable value → anchor position, group sizes of shared
    linkable values, and the over-size values."""
    positions = membership.select("entity_key").with_row_index("position").lazy()
    groups = (
        store.scan("identifiers")
        .filter(pl.col("status").is_in(["linkable", "oversize"]))
        .select("entity_key", "identifier_type", "value", "status", "group_size")
        .join(positions, on="entity_key")
        .group_by("identifier_type", "value", "status")
        .agg(pl.col("position").min().alias("anchor"), pl.col("group_size").max())
        .collect()
    )
    values: dict[str, dict[str, int]] = {}
    sizes: dict[str, dict[str, int]] = {}
    oversize: dict[str, set[str]] = {}
    for (identifier_type,), part in groups.partition_by("identifier_type", as_dict=True).items():
        linkable = part.filter(pl.col("status") == "linkable")
        values[identifier_type] = _as_dict(linkable, "value", "anchor")
        sizes[identifier_type] = _as_dict(
            linkable.filter(pl.col("group_size") > 1), "value", "group_size"
        )
        over = part.filter(pl.col("status") == "oversize")
        oversize[identifier_type] = set(over.get_column("value").to_list())
    return values, sizes, oversize


def _as_dict(frame: pl.DataFrame, key: str, value: str) -> dict:
    return dict(
        zip(frame.get_column(key).to_list(), frame.get_column(value).to_list(), strict=True)
    )


def _issued_ids(membership: pl.DataFrame, registry: pl.DataFrame | None) -> pl.DataFrame:
    """Every issued id with its issue order, sorted by id; a published id missing from
    the registry (a run stopped between the two writes) counts as issued, order unknown."""
    issued = (
        registry.select("resolved_id", "issued_seq")
        if registry is not None
        else pl.DataFrame(schema={"resolved_id": pl.String, "issued_seq": pl.Int64})
    )
    unregistered = (
        membership.select("resolved_id")
        .unique()
        .join(issued, on="resolved_id", how="anti")
        .with_columns(pl.lit(None, dtype=pl.Int64).alias("issued_seq"))
    )
    return pl.concat([issued, unregistered]).sort("resolved_id")
