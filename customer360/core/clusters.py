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


ENDS = ["position_a", "position_b"]
"""Columns an edge may carry with the positions of its ends (see :func:`with_ends`)."""


def with_ends(records: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    """``edges`` with the positions among ``records`` of their two ends (:data:`ENDS`,
    null for an end that is not a record).

    The split, the components and the cluster summary all walk the graph by record
    position: looked up once here, in one join that hashes the records once, the ends
    spare each of them a join on the text keys. The edges of a split keep them.
    """
    positions = records.select("entity_key").with_row_index("position")
    ends = pl.concat([edges.get_column("entity_key_a"), edges.get_column("entity_key_b")])
    found = (
        ends.to_frame("entity_key")
        .join(positions, on="entity_key", how="left", maintain_order="left")
        .get_column("position")
    )
    return edges.with_columns(
        found.head(edges.height).alias(ENDS[0]), found.tail(edges.height).alias(ENDS[1])
    )


def edge_ends(records: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    """``a`` and ``b``, the positions among ``records`` of each edge's ends, row for row
    with ``edges`` (null for an end that is not a record): the edges' :data:`ENDS` when
    they carry them (looked up against these very records), else looked up here."""
    if not set(ENDS) <= set(edges.columns):
        edges = with_ends(records, edges)
    return edges.select(pl.col(ENDS[0]).alias("a"), pl.col(ENDS[1]).alias("b"))


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
    ends = edge_ends(records, edges).drop_nulls()  # an end that is not a record links nothing
    labels = component_labels(
        records.height, ends.get_column("a").to_numpy(), ends.get_column("b").to_numpy()
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
    the guards that split it off (``cut``: links cut, with the ``guard`` that cut each).

    ``membership`` is row for row with the records that the edges' :data:`ENDS` point
    at, when they carry them.
    """
    # the few sources and rules are compared as the codes of a sorted Enum, not as text
    sources = _sorted_enum(membership.get_column("source"))
    sizes = membership.group_by("resolved_id").agg(
        pl.len().alias("size"),
        pl.col("source").n_unique().alias("source_count"),
        pl.col("source").cast(sources).unique().sort().alias("sources"),
    )
    edge_clusters = _end_clusters(membership, edges, ["b"], "rule")
    rules = _sorted_enum(edge_clusters.get_column("rule"))
    links = edge_clusters.group_by("resolved_id").agg(
        pl.col("rule").cast(rules).unique().sort().alias("linked_by"),
        pl.len().alias("edge_count"),
    )
    cut_ends = (
        _end_clusters(membership, cut, ["a", "b"], "guard")
        if cut is not None
        else pl.DataFrame(schema={"resolved_id": pl.String, "guard": pl.String})
    )
    guards = cut_ends.group_by("resolved_id").agg(pl.col("guard").unique().sort().alias("split_by"))
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


def _end_clusters(
    membership: pl.DataFrame, edges: pl.DataFrame, ends: list[str], column: str
) -> pl.DataFrame:
    """resolved_id of the given ends (``a``, ``b``) of every edge, with the edge's
    ``column``; ends that are not records are left out."""
    positions = edge_ends(membership, edges)
    resolved_ids = membership.get_column("resolved_id")
    return pl.concat(
        [
            pl.DataFrame(
                {
                    "resolved_id": resolved_ids.gather(positions.get_column(end)),
                    column: edges.get_column(column),
                }
            )
            for end in ends
        ]
    ).drop_nulls("resolved_id")


def _sorted_enum(values: pl.Series) -> pl.Enum:
    """An Enum of the distinct values in text order: its codes sort as the text does."""
    return pl.Enum(values.drop_nulls().unique().sort())
