"""Connected components: every record gets exactly one ``resolved_id``.

Components are found with scipy's compiled ``connected_components`` over a sparse
adjacency matrix of integer record positions — one pass, no iterative SQL label
propagation. A cluster's ``resolved_id`` is the entity_key of its first record in the
canonical order of ``records`` (most trusted source, then earliest update) on a first
run, and is handed down from run to run after that (see :mod:`customer360.core.stable_ids`).
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from customer360.core.stable_ids import assign_resolved_ids

CLUSTER_SCHEMA = {
    "resolved_id": pl.String,
    "size": pl.UInt32,
    "source_count": pl.UInt32,
    "sources": pl.List(pl.String),
    "linked_by": pl.List(pl.String),
    "edge_count": pl.UInt32,
    "split_by": pl.List(pl.String),
}


def component_labels(node_count: int, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The component number of each node 0..node_count-1 of an undirected graph."""
    weights = np.ones(len(sources), dtype=np.int8)
    graph = coo_matrix((weights, (sources, targets)), shape=(node_count, node_count)).tocsr()
    _, labels = connected_components(graph, directed=False)
    return labels


class Resolution(NamedTuple):
    membership: pl.DataFrame
    registry: pl.DataFrame  # every resolved_id ever issued (see core.stable_ids)


def resolve_membership(
    records: pl.DataFrame,
    edges: pl.DataFrame,
    previous: pl.DataFrame | None = None,
    registry: pl.DataFrame | None = None,
    now: datetime | None = None,
) -> Resolution:
    """entity_key, source, record_key → resolved_id for every record, singletons included.

    ``previous`` (the last published membership) and ``registry`` make ids stable across
    runs; without them every cluster is new and takes its first record's entity_key.
    """
    positions = records.select("entity_key").with_row_index("position")
    # Both ends of every edge are looked up in one join, so the records are hashed once;
    # an edge with an end that is not a record links nothing.
    ends = pl.concat([edges.get_column("entity_key_a"), edges.get_column("entity_key_b")])
    found = (
        ends.to_frame("entity_key")
        .join(positions, on="entity_key", how="left", maintain_order="left")
        .get_column("position")
    )
    ab = pl.DataFrame(
        {"position": found.head(edges.height), "position_b": found.tail(edges.height)}
    ).drop_nulls()
    labels = component_labels(
        records.height,
        ab.get_column("position").to_numpy(),
        ab.get_column("position_b").to_numpy(),
    )
    resolved_ids, registry = assign_resolved_ids(
        records.get_column("entity_key"), labels, previous, registry, now or datetime.now()
    )
    membership = records.select("entity_key", "source", "record_key").with_columns(resolved_ids)
    return Resolution(membership, registry)


def summarize_clusters(
    membership: pl.DataFrame, edges: pl.DataFrame, cut: pl.DataFrame | None = None
) -> pl.DataFrame:
    """One row per cluster: size, sources, the rules whose edges hold it together and
    the guards that split it off (``cut``: links cut, with the ``guard`` that cut each)."""
    # the few sources and rules are compared as the codes of a sorted Enum, not as text
    sources = _sorted_enum(membership.get_column("source"))
    sizes = membership.group_by("resolved_id").agg(
        pl.len().alias("size"),
        pl.col("source").n_unique().alias("source_count"),
        pl.col("source").cast(sources).unique().sort().alias("sources"),
    )
    edge_clusters = edges.select("entity_key_b", "rule").join(
        membership.select("entity_key", "resolved_id"),
        left_on="entity_key_b",
        right_on="entity_key",
        how="inner",
    )
    rules = _sorted_enum(edge_clusters.get_column("rule"))
    links = edge_clusters.group_by("resolved_id").agg(
        pl.col("rule").cast(rules).unique().sort().alias("linked_by"),
        pl.len().alias("edge_count"),
    )
    no_guards = pl.DataFrame(schema={"entity_key": pl.String, "guard": pl.String})
    cut_ends = (
        pl.concat(
            [
                cut.select(pl.col(end).alias("entity_key"), "guard")
                for end in ("entity_key_a", "entity_key_b")
            ]
        )
        if cut is not None
        else no_guards
    )
    guards = (
        cut_ends.join(membership.select("entity_key", "resolved_id"), on="entity_key")
        .group_by("resolved_id")
        .agg(pl.col("guard").unique().sort().alias("split_by"))
    )
    empty = pl.lit([], dtype=pl.List(pl.String))
    return (
        sizes.join(links, on="resolved_id", how="left")
        .join(guards, on="resolved_id", how="left")
        .with_columns(
            pl.col("linked_by").fill_null(empty),
            pl.col("edge_count").fill_null(0),
            pl.col("split_by").fill_null(empty),
        )
        .sort("size", "resolved_id", descending=[True, False])
        .select(list(CLUSTER_SCHEMA))
        .cast(CLUSTER_SCHEMA)
    )


def _sorted_enum(values: pl.Series) -> pl.Enum:
    """An Enum of the distinct values in text order: its codes sort as the text does."""
    return pl.Enum(values.drop_nulls().unique().sort())
