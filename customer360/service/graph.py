"""The published identity graph, indexed for one-record lookups.

Built from the outputs of the last materialization — ``membership``, ``identifiers``,
``golden_profiles`` and the registry of issued ids — with vectorised Polars into plain
dicts (normalized identifier value → the record that anchors its group) and sorted
columns searched by bisection. A lookup is a dict access or a binary search, never a
scan of a table.

For identifier types the corroboration guard watches, the index also keeps each shared
value's records and every record's name key, and learns up front whether the spellings
inside each group agree (one vectorised query), so that a request only asks about the
spellings it brings.

For the attributes the split of over-merged clusters compares (``splitting:``), it keeps
every record's name key by customer, so that a record whose identifiers point at several
customers can be told which of them the split would cut it away from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from customer360.core.names import NameAgreement, name_key
from customer360.core.spec import Splitting
from customer360.core.stable_ids import ID_REGISTRY_STATE
from customer360.core.storage import ArtifactStore

GRAPH_TABLES = ("membership", "identifiers", "golden_profiles")
LINEAGE_TABLE = "cluster_lineage"

Fingerprint = tuple[tuple[int, int] | None, ...]


def graph_fingerprint(store: ArtifactStore) -> Fingerprint:
    """(size, modification time) of every file the index is built from: a cheap stat
    that changes whenever a materialization publishes a new graph."""
    paths = [store.path(table) for table in GRAPH_TABLES] + [store.state_path(ID_REGISTRY_STATE)]
    return tuple(file_stamp(path) for path in paths)


def file_stamp(path: Any) -> tuple[int, int] | None:
    """(size, modification time) of a file; None when it does not exist."""
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

    def find_all(self, keys: pl.Series) -> np.ndarray:
        """Row numbers of those of ``keys`` that are present."""
        wanted = keys.to_numpy()
        rows = np.searchsorted(self._keys, wanted)
        inside = rows < len(self._keys)
        found = np.zeros(len(wanted), dtype=bool)
        found[inside] = self._keys[rows[inside]] == wanted[inside]
        return rows[found]

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


@dataclass(frozen=True)
class GroupMember:
    """A record sharing a guarded identifier value, with what the guard compares."""

    entity_key: str
    resolved_id: str
    name: str | None  # the name key of the corroborating attribute


class GraphIndex:
    """One published graph, read-only once built; a reload builds a new one."""

    def __init__(
        self,
        store: ArtifactStore,
        fingerprint: Fingerprint,
        corroboration: dict[str, str] | None = None,
        splitting: Splitting | None = None,
    ) -> None:
        """``corroboration``: guarded identifier type → its corroborating attribute;
        ``splitting``: the spec's split of over-merged clusters, whose attributes are kept."""
        self.fingerprint = fingerprint
        self._corroboration = corroboration or {}
        self.loaded_at = datetime.now(UTC)
        self._lineage_path = store.path(LINEAGE_TABLE)
        membership = store.read("membership", ["entity_key", "source", "record_key", "resolved_id"])
        self.record_count = membership.height
        # membership is in canonical order (most trusted, earliest first), so a group's
        # anchor — the record its identity edges start from — is its lowest position
        self._entity_keys = membership.get_column("entity_key")
        self._resolved_ids = membership.get_column("resolved_id")
        self._values, self._group_sizes, self._oversize, shared = _value_index(
            store, membership, list(self._corroboration)
        )
        self._shared = {
            name: _as_dict(frame, "value", "positions") for name, frame in shared.items()
        }
        split_attributes = splitting.attributes if splitting and splitting.conflicts else []
        self._names = _name_keys(
            store, membership, set(self._corroboration.values()) | set(split_attributes)
        )
        self._split_attributes = list(split_attributes)
        self.names = NameAgreement()
        self.names.learn(self._spellings_in_groups(shared))

        by_entity = membership.select("entity_key", "resolved_id").sort("entity_key")
        self._entity_index = SortedKeys(by_entity.get_column("entity_key"))
        self._entity_resolved_ids = by_entity.get_column("resolved_id")

        # each customer's records side by side, with the name keys the split compares
        self._members = (
            membership.select("resolved_id", "entity_key", "source", "record_key")
            .with_columns(self._names[a].alias(a) for a in self._split_attributes)
            .sort("resolved_id", "entity_key")
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

    def group(self, identifier_type: str, value: str) -> list[GroupMember]:
        """The records sharing a value of a guarded type, in canonical order (the
        anchor first); empty when the graph does not link on the value."""
        anchor = self._values.get(identifier_type, {}).get(value)
        if anchor is None:
            return []
        names = self._names[self._corroboration[identifier_type]]
        positions = self._shared[identifier_type].get(value, [anchor])
        return [
            GroupMember(self._entity_keys[p], self._resolved_ids[p], names[p]) for p in positions
        ]

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

    def resolved_ids_of(self, entity_keys: pl.Series) -> set[str]:
        """The customers of those of the records that the graph holds."""
        rows = self._entity_index.find_all(entity_keys)
        return set(self._entity_resolved_ids.gather(rows).to_list())

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
            self._members.slice(rows.start, len(rows))
            .select("entity_key", "source", "record_key")
            .to_dicts()
            if rows
            else []
        )

    def split_keys(self, resolved_ids: list[str]) -> pl.DataFrame:
        """``resolved_id`` and the name key of every attribute the split compares, one
        row per record of these customers."""
        keys = self._members.select("resolved_id", *self._split_attributes)
        spans = [self._member_index.span(resolved_id) for resolved_id in resolved_ids]
        return pl.concat([keys.clear(), *(keys.slice(s.start, len(s)) for s in spans)])

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

    def _spellings_in_groups(self, shared: dict[str, pl.DataFrame]) -> pl.DataFrame:
        """(left, right): the pairs of different name keys that share a guarded value."""
        pairs = [pl.DataFrame(schema={"left": pl.String, "right": pl.String})]
        for identifier_type, groups in shared.items():
            names = self._names[self._corroboration[identifier_type]]
            members = groups.select("value", "positions").explode("positions")
            spellings = (
                members.with_columns(names.gather(members.get_column("positions")).alias("name"))
                .drop_nulls("name")
                .unique(["value", "name"])
            )
            pairs.append(
                spellings.join(spellings, on="value", suffix="_other")
                .filter(pl.col("name") < pl.col("name_other"))
                .select(pl.col("name").alias("left"), pl.col("name_other").alias("right"))
            )
        return pl.concat(pairs).unique()


def _value_index(
    store: ArtifactStore, membership: pl.DataFrame, guarded: list[str]
) -> tuple[
    dict[str, dict[str, int]],
    dict[str, dict[str, int]],
    dict[str, set[str]],
    dict[str, pl.DataFrame],
]:
    """Per identifier type: linkable value → anchor position, group sizes of shared
    linkable values, the over-size values, and — for guarded types — the positions of
    every record of each shared value (``value``, ``positions``)."""
    positions = membership.select("entity_key").with_row_index("position").lazy()
    groups = (
        store.scan("identifiers")
        .filter(pl.col("status").is_in(["linkable", "oversize"]))
        .select("entity_key", "identifier_type", "value", "status", "group_size")
        .join(positions, on="entity_key")
        .group_by("identifier_type", "value", "status")
        .agg(
            pl.col("position").min().alias("anchor"),
            pl.col("group_size").max(),
            pl.col("position").sort().alias("positions"),
        )
        .collect()
    )
    values: dict[str, dict[str, int]] = {}
    sizes: dict[str, dict[str, int]] = {}
    oversize: dict[str, set[str]] = {}
    shared: dict[str, pl.DataFrame] = {}
    for (identifier_type,), part in groups.partition_by("identifier_type", as_dict=True).items():
        linkable = part.filter(pl.col("status") == "linkable")
        values[identifier_type] = _as_dict(linkable, "value", "anchor")
        sizes[identifier_type] = _as_dict(
            linkable.filter(pl.col("group_size") > 1), "value", "group_size"
        )
        over = part.filter(pl.col("status") == "oversize")
        oversize[identifier_type] = set(over.get_column("value").to_list())
        if identifier_type in guarded:
            shared[identifier_type] = linkable.filter(pl.col("group_size") > 1)
    return values, sizes, oversize, shared


def _name_keys(
    store: ArtifactStore, membership: pl.DataFrame, attributes: set[str]
) -> dict[str, pl.Series]:
    """Each attribute's name key per record, by membership position."""
    if not attributes:
        return {}
    records = store.read("records", ["entity_key", *sorted(attributes)])
    aligned = membership.select("entity_key").join(
        records, on="entity_key", how="left", maintain_order="left"
    )
    return {a: aligned.select(name_key(a)).to_series() for a in attributes}


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
