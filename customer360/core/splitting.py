"""Over-merged clusters, split at their weakest links.

Linking is transitive: one wrong link — a household landline on a nameless till record,
two relatives scored alike by name and street — joins two people's whole clusters. Such
a cluster gives itself away: it holds two values of an attribute a person has only one
of (first names that are neither equal, a nickname nor a typo of each other; dates of
birth that are neither equal, one typo apart nor day and month swapped), or it outgrows
any plausible customer. This guard finds those components after linking and cuts them
apart at a minimum cut: the links of least total strength whose removal separates the
conflicting records (scipy's maximum flow; by max-flow/min-cut, the links from the
records the source still reaches in the residual graph to the rest are such a cut).

A link's strength is its evidence in bits: a probabilistic link's match weight (log2
odds), an identifier link's term-frequency weight log2(records / records sharing the
value) — a value many records share says less than one only a single person's records
carry. Parallel links between two records add up.

Only the few offending components are cut, one at a time: within one, each conflicting
value in turn (the most common first) is cut from the values it conflicts with, then
pieces still over ``max_cluster_size`` are cut between two of their most distant
records, at most :data:`MAX_SIZE_CUTS` times. Cut links stay in the edge tables: an
edge whose ends are different customers is a link a split cut.
"""

from __future__ import annotations

from typing import NamedTuple

import duckdb
import numpy as np
import polars as pl
from scipy.sparse import csr_array
from scipy.sparse.csgraph import breadth_first_order, connected_components, maximum_flow

from customer360.core.clusters import component_labels
from customer360.core.names import compatible_sql, name_key, nickname_pairs
from customer360.core.spec import Splitting

SIZE_GUARD = "max_cluster_size"
CONFLICT_GUARD = "conflicting {attribute}"
STRENGTH_SCALE = 100
"""Flow capacities are integers: strengths are counted in hundredths of a bit."""
MAX_SIZE_CUTS = 1000
"""Cuts per component for size alone; a piece still too large then fails the size check."""
_MAX_CAPACITY = 2**30

_COMPATIBLE_SQL = {
    "name": compatible_sql,
    "date": lambda a, b: (
        f"({a} = {b} OR damerau_levenshtein({a}, {b}) <= 1 OR ("
        f"left({a}, 4) = left({b}, 4) AND substr({a}, 6, 2) = substr({b}, 9, 2) "
        f"AND substr({a}, 9, 2) = substr({b}, 6, 2)))"
    ),
    "exact": lambda a, b: f"({a} = {b})",
}
"""DuckDB conditions under which two values of a conflict attribute may be one person's."""


class ClusterSplit(NamedTuple):
    kept: pl.DataFrame
    """The edges that hold the clusters together (the input's columns)."""
    cut: pl.DataFrame
    """The edges the split removed, with the ``guard`` that cut each."""


def split_over_merged(
    records: pl.DataFrame, edges: pl.DataFrame, splitting: Splitting | None
) -> ClusterSplit:
    """Split components that hold conflicting values or exceed the size limit.

    ``records`` are in canonical order and carry every conflict attribute; ``edges``
    carry ``match_weight`` (null for identifier links), ``identifier_type`` and ``value``.
    """
    no_cut = edges.clear().with_columns(pl.lit(None, pl.String).alias("guard"))
    if splitting is None or edges.is_empty():
        return ClusterSplit(edges, no_cut)
    positions = records.select("entity_key").with_row_index("position")
    links = _link_positions(edges, positions).with_columns(
        _link_strength(edges, records.height).alias("capacity")
    )
    ends_a = links.get_column("a").to_numpy()
    ends_b = links.get_column("b").to_numpy()
    labels = component_labels(records.height, ends_a, ends_b)
    values = _conflict_values(records, splitting.conflicts, splitting.swappable, labels)
    pairs = _incompatible_pairs(values, splitting.conflicts)
    offending = set(pairs.get_column("component").unique().to_list())
    if splitting.max_cluster_size is not None:
        sizes = np.bincount(labels)
        offending |= set(np.flatnonzero(sizes > splitting.max_cluster_size).tolist())
    if not offending:
        return ClusterSplit(edges, no_cut)
    chosen = pl.Series(sorted(offending), dtype=pl.Int64).implode()
    in_chosen = pl.col("component").is_in(chosen)
    links = links.with_columns(pl.Series("component", labels[ends_a], dtype=pl.Int64))
    parts = [frame.filter(in_chosen) for frame in (links, values, pairs)]
    links_of, values_of, pairs_of = (
        frame.partition_by("component", as_dict=True) for frame in parts
    )
    cuts = [
        cut
        for key in sorted(links_of)  # only the offending components
        for cut in _cut_component(
            links_of[key],
            values_of.get(key, parts[1].clear()),
            pairs_of.get(key, parts[2].clear()),
            splitting.max_cluster_size,
        )
    ]
    guards = pl.DataFrame(cuts, schema={"edge_index": pl.Int64, "guard": pl.String}, orient="row")
    guard = (
        pl.DataFrame({"edge_index": np.arange(edges.height)})
        .join(guards, on="edge_index", how="left", maintain_order="left")
        .get_column("guard")
    )
    is_cut = guard.is_not_null()
    return ClusterSplit(edges.filter(~is_cut), edges.with_columns(guard).filter(is_cut))


def _cut_component(
    links: pl.DataFrame, values: pl.DataFrame, pairs: pl.DataFrame, max_size: int | None
) -> list[tuple[int, str]]:
    """(edge row, guard) of every link cut inside one component.

    First each conflicting value, most common first, is cut from the values it cannot
    share a person with; a cut only removes links, so a pair once apart stays apart.
    Then pieces over ``max_size`` are cut between their first record and the record
    farthest from it.
    """
    nodes = np.unique(np.concatenate([links["a"].to_numpy(), links["b"].to_numpy()]))
    a = np.searchsorted(nodes, links["a"].to_numpy())
    b = np.searchsorted(nodes, links["b"].to_numpy())
    capacity = links["capacity"].to_numpy()
    edge_rows = links["edge_index"].to_numpy()
    alive = np.ones(len(a), dtype=bool)
    cuts: list[tuple[int, str]] = []
    holders = values.with_columns(
        pl.Series("node", np.searchsorted(nodes, values["position"].to_numpy()))
    )
    ordered = (
        holders.group_by("attribute", "value")
        .agg(pl.col("node"), pl.len().alias("records"))
        .join(pairs.select("attribute", "value").unique(), on=["attribute", "value"], how="semi")
        .sort(["records", "attribute", "value"], descending=[True, False, False])
    )
    for attribute, value, sources, _ in ordered.iter_rows():
        others = pairs.filter((pl.col("attribute") == attribute) & (pl.col("value") == value))
        sinks = holders.join(
            others.select("attribute", pl.col("other").alias("value")), on=["attribute", "value"]
        ).get_column("node")
        cut = _min_cut(len(nodes), a, b, capacity, alive, np.array(sources), sinks.to_numpy())
        cuts += [(int(row), CONFLICT_GUARD.format(attribute=attribute)) for row in edge_rows[cut]]
        alive &= ~cut
    for _ in range(MAX_SIZE_CUTS if max_size is not None else 0):
        graph = _adjacency(len(nodes), a[alive], b[alive], capacity[alive])
        _, piece = connected_components(graph, directed=False)
        sizes = np.bincount(piece)
        if sizes.max() <= max_size:
            break
        first = int(np.flatnonzero(piece == np.argmax(sizes))[0])
        farthest = breadth_first_order(graph, first, directed=False, return_predecessors=False)[-1]
        cut = _min_cut(len(nodes), a, b, capacity, alive, np.array([first]), np.array([farthest]))
        cuts += [(int(row), SIZE_GUARD) for row in edge_rows[cut]]
        alive &= ~cut
    return cuts


def _adjacency(node_count: int, a: np.ndarray, b: np.ndarray, capacity: np.ndarray) -> csr_array:
    """Symmetric integer capacities; parallel links between two records add up."""
    graph = csr_array(
        (np.concatenate([capacity, capacity]), (np.concatenate([a, b]), np.concatenate([b, a]))),
        shape=(node_count, node_count),
    )
    graph.sum_duplicates()
    return graph


def _min_cut(
    node_count: int,
    a: np.ndarray,
    b: np.ndarray,
    capacity: np.ndarray,
    alive: np.ndarray,
    sources: np.ndarray,
    sinks: np.ndarray,
) -> np.ndarray:
    """Mask of the live links in a minimum cut between ``sources`` and ``sinks``."""
    source, sink = node_count, node_count + 1
    unbounded = min(int(capacity[alive].sum()) + 1, _MAX_CAPACITY)
    rows = np.concatenate([a[alive], b[alive], np.full(len(sources), source), sinks])
    cols = np.concatenate([b[alive], a[alive], sources, np.full(len(sinks), sink)])
    caps = np.concatenate(
        [capacity[alive], capacity[alive], np.full(len(sources) + len(sinks), unbounded)]
    )
    graph = csr_array(
        (np.minimum(caps, _MAX_CAPACITY).astype(np.int32), (rows, cols)),
        shape=(node_count + 2, node_count + 2),
    )
    graph.sum_duplicates()
    residual = graph - maximum_flow(graph, source, sink).flow
    residual.data[residual.data < 0] = 0
    residual.eliminate_zeros()
    reached = breadth_first_order(residual, source, directed=True, return_predecessors=False)
    on_source_side = np.zeros(node_count + 2, dtype=bool)
    on_source_side[reached] = True
    return alive & (on_source_side[a] != on_source_side[b])


def _link_positions(edges: pl.DataFrame, positions: pl.DataFrame) -> pl.DataFrame:
    """Record positions of both ends of every edge, with the edge's row number."""
    ends = pl.concat([edges.get_column("entity_key_a"), edges.get_column("entity_key_b")])
    found = (
        ends.to_frame("entity_key")
        .join(positions, on="entity_key", how="left", maintain_order="left")
        .get_column("position")
        .cast(pl.Int64)
    )
    return pl.DataFrame(
        {
            "edge_index": np.arange(edges.height),
            "a": found.head(edges.height),
            "b": found.tail(edges.height),
        }
    )


def _link_strength(edges: pl.DataFrame, record_count: int) -> pl.Series:
    """Each edge's strength in hundredths of a bit (see the module docstring)."""
    members = pl.concat(
        [
            edges.select("identifier_type", "value", pl.col(end).alias("entity_key"))
            for end in ("entity_key_a", "entity_key_b")
        ]
    ).filter(pl.col("identifier_type").is_not_null())
    group_sizes = members.group_by("identifier_type", "value").agg(
        pl.col("entity_key").n_unique().alias("group_size")
    )
    strength = (
        edges.select("identifier_type", "value", "match_weight")
        .join(group_sizes, on=["identifier_type", "value"], how="left", maintain_order="left")
        .select(
            pl.coalesce(
                "match_weight", (record_count / pl.col("group_size").cast(pl.Float64)).log(2)
            )
        )
        .to_series()
    )
    return (strength * STRENGTH_SCALE).round().clip(1, _MAX_CAPACITY // 4).cast(pl.Int64)


def _conflict_values(
    records: pl.DataFrame,
    conflicts: dict[str, str],
    swappable: dict[str, str],
    labels: np.ndarray,
) -> pl.DataFrame:
    """(component, position, attribute, value) of every record's conflict attributes,
    for components that hold more than one value of the attribute."""
    component = pl.Series("component", labels, dtype=pl.Int64)
    frames = [
        records.select(name_key(attribute).alias("value"))
        .with_row_index("position")
        .with_columns(component, pl.lit(attribute).alias("attribute"))
        for attribute in conflicts
    ]
    schema = {
        "component": pl.Int64,
        "position": pl.Int64,
        "attribute": pl.String,
        "value": pl.String,
    }
    if not frames:
        return pl.DataFrame(schema=schema)
    held = pl.concat(frames).filter(pl.col("value").is_not_null())
    swapped = [
        records.select(name_key(partner).alias("value"))
        .with_columns(component, pl.lit(attribute).alias("attribute"))
        .filter(pl.col("value").is_not_null())
        for attribute, partner in swappable.items()
    ]
    if swapped:
        # a value the component also holds under the paired attribute may be a swapped
        # field ("Gomez Hiroshi"), so it cannot show a conflict
        held = held.join(pl.concat(swapped), on=["component", "attribute", "value"], how="anti")
    return (
        held.filter(pl.col("value").n_unique().over("component", "attribute") > 1)
        .select(list(schema))
        .cast(schema)
    )


def _incompatible_pairs(values: pl.DataFrame, conflicts: dict[str, str]) -> pl.DataFrame:
    """(component, attribute, value, other) for each ordered pair of distinct values of
    one attribute in one component that cannot belong to one person."""
    schema = {"component": pl.Int64, "attribute": pl.String, "value": pl.String, "other": pl.String}
    frames = [pl.DataFrame(schema=schema)]
    with duckdb.connect() as con:
        con.register("nickname_pairs", nickname_pairs().to_arrow())
        for attribute, method in conflicts.items():
            distinct = (
                values.filter(pl.col("attribute") == attribute)
                .select("component", "value")
                .unique()
            )
            con.register("held", distinct.to_arrow())
            pairs = con.sql(
                f"""
                SELECT a.component, a.value, b.value AS other
                FROM held a JOIN held b ON a.component = b.component AND a.value <> b.value
                WHERE NOT {_COMPATIBLE_SQL[method]("a.value", "b.value")}
                """
            ).pl()
            frames.append(
                pairs.with_columns(pl.lit(attribute).alias("attribute"))
                .select(list(schema))
                .cast(schema)
            )
    return pl.concat(frames)
