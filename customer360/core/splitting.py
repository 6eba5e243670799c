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
odds), an identifier link's term-frequency weight log2(records / records the value
links in the component) — a value many records share says less than one only a single
person's records carry. Parallel links between two records add up. Apart from the
number of records, a component's cut depends on nothing outside it: an incremental run
re-splits only the components a batch touched (and all split ones when the number of
records changed).

Only the links of offending components are weighed and searched, all such components
at once: they share no link, so one maximum flow over all of them finds each one's
minimum cut. Round r cuts every component's r-th conflicting value (the most commonly
held first) from the values it conflicts with; then pieces still over
``max_cluster_size`` are cut between their first record and the record farthest from it,
for at most :data:`MAX_SIZE_CUTS` rounds. Cut links stay in the edge tables: an edge
whose ends are different customers is a link a split cut.
"""

from __future__ import annotations

from typing import NamedTuple

import duckdb
import numpy as np
import polars as pl
from scipy.sparse import csr_array
from scipy.sparse.csgraph import breadth_first_order, connected_components, maximum_flow

from customer360.core.clusters import component_labels, edge_ends
from customer360.core.names import compatible_sql, name_key, nickname_pairs
from customer360.core.spec import Splitting

SIZE_GUARD = "max_cluster_size"
CONFLICT_GUARD = "conflicting {attribute}"
STRENGTH_SCALE = 100
"""Flow capacities are integers: strengths are counted in hundredths of a bit."""
MAX_SIZE_CUTS = 1000
"""Rounds of cuts for size alone; a piece still too large then fails the size check."""
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
    records: pl.DataFrame,
    edges: pl.DataFrame,
    splitting: Splitting | None,
    record_count: int | None = None,
) -> ClusterSplit:
    """Split components that hold conflicting values or exceed the size limit: the
    edges of :func:`cut_guards`, kept or cut."""
    guard = cut_guards(records, edges, splitting, record_count)
    if guard is None:
        no_cut = edges.clear().with_columns(pl.lit(None, pl.String).alias("guard"))
        return ClusterSplit(edges, no_cut)
    cut = guard.is_not_null()
    return ClusterSplit(edges.filter(~cut), edges.with_columns(guard).filter(cut))


def cut_guards(
    records: pl.DataFrame,
    edges: pl.DataFrame,
    splitting: Splitting | None,
    record_count: int | None = None,
) -> pl.Series | None:
    """The ``guard`` that cuts each edge, row for row with ``edges`` (null for an edge
    kept), or None when nothing is cut.

    ``records`` are in canonical order and carry every conflict attribute; ``edges``
    carry ``match_weight`` (null for identifier links), ``identifier_type`` and ``value``.
    ``record_count`` is the number of records of the whole run, which link strengths are
    weighed against, when ``records`` are only some of its components (an incremental
    run re-splits only the components a batch touched); by default ``records.height``.
    A caller that keeps only some columns of the kept edges filters them itself rather
    than copying every column of them (at ten million edges, a gigabyte).
    """
    if splitting is None or edges.is_empty():
        return None
    links = _link_positions(records, edges)
    ends_a, ends_b = links.get_column("a").to_numpy(), links.get_column("b").to_numpy()
    labels = component_labels(records.height, ends_a, ends_b)
    values = _conflict_values(records, splitting.conflicts, splitting.swappable, labels)
    with conflict_connection() as con:
        pairs = _incompatible_pairs(values, splitting.conflicts, con)
    offending = pairs.get_column("component").unique().to_numpy()
    if splitting.max_cluster_size is not None:
        oversize = np.flatnonzero(np.bincount(labels) > splitting.max_cluster_size)
        offending = np.union1d(offending, oversize)
    if not offending.size:
        return None
    # only links of offending components are weighed and searched
    inside = np.isin(labels[ends_a], offending)
    rows = links.get_column("edge_index").to_numpy()[inside]
    nodes = np.unique(np.concatenate([ends_a[inside], ends_b[inside]]))
    graph = _Graph(
        a=np.searchsorted(nodes, ends_a[inside]),
        b=np.searchsorted(nodes, ends_b[inside]),
        capacity=_link_strength(
            edges[rows], labels[ends_a[inside]], record_count or records.height
        ).to_numpy(),
        component=labels[ends_a[inside]],
        nodes=nodes,
    )
    cut_by = np.full(len(rows), "", dtype=object)  # the guard that cut each link
    _cut_conflicts(graph, _terminals(values, pairs), cut_by)
    if splitting.max_cluster_size is not None:
        _cut_oversize(graph, splitting.max_cluster_size, cut_by)
    is_cut = cut_by != ""
    guards = pl.DataFrame(
        {"edge_index": rows[is_cut], "guard": cut_by[is_cut].tolist()},
        schema={"edge_index": pl.Int64, "guard": pl.String},
    )
    return (
        pl.DataFrame({"edge_index": np.arange(edges.height)})
        .join(guards, on="edge_index", how="left", maintain_order="left")
        .get_column("guard")
    )


class _Graph(NamedTuple):
    """The links of the offending components, over their records numbered 0..n-1 in
    canonical order (``nodes`` holds their positions among all records)."""

    a: np.ndarray
    b: np.ndarray
    capacity: np.ndarray
    component: np.ndarray
    nodes: np.ndarray


def _terminals(values: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """Per component and ``rank``, a conflicting value's holders (``sources``) and the
    holders of the values it conflicts with (``sinks``). Rank 0 is the most commonly
    held value; ties go by attribute and value, so cuts are repeatable."""
    keys = ["component", "attribute", "value"]
    holders = values.group_by(keys).agg(pl.col("position").sort().alias("sources"))
    opponents = (
        pairs.join(values.rename({"value": "other"}), on=["component", "attribute", "other"])
        .group_by(keys)
        .agg(pl.col("position").unique().sort().alias("sinks"))
    )
    return (
        holders.join(opponents, on=keys)
        .sort(
            [pl.col("component"), pl.col("sources").list.len(), "attribute", "value"],
            descending=[False, True, False, False],
        )
        .select(
            "component",
            pl.int_range(pl.len()).over("component").alias("rank"),
            pl.format(CONFLICT_GUARD.replace("{attribute}", "{}"), "attribute").alias("guard"),
            "sources",
            "sinks",
        )
    )


def _cut_conflicts(graph: _Graph, terminals: pl.DataFrame, cut_by: np.ndarray) -> None:
    """Cut every conflicting value from the values it conflicts with, in rounds.

    Round r cuts, in every component at once, its rank-r value from its opponents:
    components share no link, so one maximum flow over all of them finds each one's
    minimum cut. A cut only removes links, so values already apart are skipped; rounds
    are as many as the most values one component holds.
    """
    alive = np.ones(len(graph.a), dtype=bool)
    piece = _pieces(graph, alive)
    for todo in terminals.sort("rank", maintain_order=True).partition_by(
        "rank", maintain_order=True
    ):
        sides = []
        for side in ("sources", "sinks"):
            held = todo.select("component", pl.col(side).alias("position")).explode("position")
            node = np.searchsorted(graph.nodes, held.get_column("position").to_numpy())
            sides.append(
                held.with_columns(pl.Series("node", node), pl.Series("piece", piece[node]))
            )
        together = (
            sides[0].join(sides[1], on=["component", "piece"], how="semi").select("component")
        )
        sources, sinks = (
            side.join(together.unique(), on="component", how="semi").get_column("node").to_numpy()
            for side in sides
        )
        if not sources.size:
            continue
        cut = _min_cut(len(graph.nodes), graph.a, graph.b, graph.capacity, alive, sources, sinks)
        guard_of = dict(todo.select("component", "guard").iter_rows())
        cut_by[cut] = [guard_of[int(component)] for component in graph.component[cut]]
        alive &= ~cut
        piece = _pieces(graph, alive)


def _cut_oversize(graph: _Graph, max_size: int, cut_by: np.ndarray) -> None:
    """Cut pieces over ``max_size`` between their first record and the one farthest from
    it, all such pieces in one maximum flow per round, for at most MAX_SIZE_CUTS rounds."""
    alive = cut_by == ""
    for _ in range(MAX_SIZE_CUTS):
        adjacency = _adjacency(
            len(graph.nodes), graph.a[alive], graph.b[alive], graph.capacity[alive]
        )
        _, piece = connected_components(adjacency, directed=False)
        sizes = np.bincount(piece)
        oversize = np.flatnonzero(sizes > max_size)
        if not oversize.size:
            return
        # nodes are in canonical order: a piece's first node is its first record
        firsts = np.array([np.flatnonzero(piece == label)[0] for label in oversize])
        farthest = np.array(
            [
                breadth_first_order(adjacency, first, directed=False, return_predecessors=False)[-1]
                for first in firsts
            ]
        )
        cut = _min_cut(len(graph.nodes), graph.a, graph.b, graph.capacity, alive, firsts, farthest)
        cut_by[cut] = SIZE_GUARD
        alive &= ~cut


def _pieces(graph: _Graph, alive: np.ndarray) -> np.ndarray:
    """The connected piece of every node over the links still alive."""
    adjacency = _adjacency(len(graph.nodes), graph.a[alive], graph.b[alive], graph.capacity[alive])
    return connected_components(adjacency, directed=False)[1]


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


def _link_positions(records: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    """Record positions of both ends of every edge, with the edge's row number."""
    return (
        edge_ends(records, edges)
        .select(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("edge_index"),
            pl.col("a", "b").cast(pl.Int64),
        )
        .drop_nulls()  # an edge with an end that is not a record links nothing
    )


def _link_strength(edges: pl.DataFrame, components: np.ndarray, record_count: int) -> pl.Series:
    """Each edge's strength in hundredths of a bit (see the module docstring).

    A value's records are counted inside the edge's component (``components``, aligned
    with ``edges``): a guarded value's agreeing pairs may link records of several
    components, and a component's cut must not depend on any other component.
    """
    keyed = edges.with_columns(pl.Series("component", components, dtype=pl.Int64))
    members = pl.concat(
        [
            keyed.select("component", "identifier_type", "value", pl.col(end).alias("entity_key"))
            for end in ("entity_key_a", "entity_key_b")
        ]
    ).filter(pl.col("identifier_type").is_not_null())
    group = ["component", "identifier_type", "value"]
    group_sizes = members.group_by(group).agg(pl.col("entity_key").n_unique().alias("group_size"))
    return (
        keyed.select(*group, "match_weight")
        .join(group_sizes, on=group, how="left", maintain_order="left")
        .select(link_strength(pl.col("match_weight"), pl.col("group_size"), record_count))
        .to_series()
    )


def link_strength(match_weight: pl.Expr, group_size: pl.Expr, record_count: int) -> pl.Expr:
    """A link's strength in hundredths of a bit, as the minimum cut weighs it: its match
    weight, else log2(``record_count`` / ``group_size``, the records its value links) —
    rounded and bounded like the flow's integer capacities. Public so that the resolve
    service weighs a record's links to customers the split will divide exactly so."""
    bits = pl.coalesce(match_weight, (record_count / group_size.cast(pl.Float64)).log(2))
    return (bits * STRENGTH_SCALE).round().clip(1, _MAX_CAPACITY // 4).cast(pl.Int64)


def _conflict_values(
    records: pl.DataFrame,
    conflicts: dict[str, str],
    swappable: dict[str, str],
    labels: np.ndarray,
) -> pl.DataFrame:
    """(component, position, attribute, value) of every record's conflict attributes,
    for components that hold more than one value of the attribute."""
    linked = np.bincount(labels)[labels] > 1  # a record alone has nothing to conflict with
    attributes = list(dict.fromkeys([*conflicts, *swappable.values()]))
    # the attributes are taken before the linked records are: the filter then copies
    # only them, not every column of the records
    keys = (
        records.with_row_index("position")
        .select("position", *attributes)
        .with_columns(pl.Series("component", labels, dtype=pl.Int64))
        .filter(pl.Series(linked))
        .select("position", "component", *[name_key(a) for a in attributes])
    )
    return _held_values(keys, conflicts, swappable)


def _held_values(
    keys: pl.DataFrame, conflicts: dict[str, str], swappable: dict[str, str]
) -> pl.DataFrame:
    """(component, position, attribute, value) from ``keys`` — ``component``,
    ``position`` and the name key of every attribute the guard reads — for components
    that hold more than one value of an attribute, swapped fields set aside."""
    schema = {
        "component": pl.Int64,
        "position": pl.Int64,
        "attribute": pl.String,
        "value": pl.String,
    }
    if not conflicts:
        return pl.DataFrame(schema=schema)
    # setting swapped values aside leaves a component fewer values, never more: only the
    # components that hold several values of an attribute before are looked at for swaps
    # (found attribute by attribute: windows over the component number alone)
    held = pl.concat(
        [
            keys.lazy()
            .select(
                "position",
                "component",
                pl.col(attribute).alias("value"),
                pl.lit(attribute).alias("attribute"),
            )
            .filter(pl.col("value").is_not_null())
            .filter(pl.col("value").n_unique().over("component") > 1)
            .collect()
            for attribute in conflicts
        ]
    )
    several = pl.col("value").n_unique().over("component", "attribute") > 1
    candidates = keys.filter(pl.col("component").is_in(held.get_column("component").implode()))
    swapped = [
        _swapped_records(candidates, attribute, partner) for attribute, partner in swappable.items()
    ]
    if swapped:
        held = held.join(pl.concat(swapped), on=["component", "position", "attribute"], how="anti")
    return held.filter(several).select(list(schema)).cast(schema)


def _swapped_records(keys: pl.DataFrame, attribute: str, partner: str) -> pl.DataFrame:
    """(component, position, attribute) of records that look swapped ("Gomez Hiroshi"): their
    ``partner`` value is held in the component at least as often as an ``attribute``
    value, or their ``attribute`` value at least as often as a ``partner`` value. Such a
    record's ``attribute`` value cannot show a conflict. The test is per record, not per
    value: a relative's swapped "Garcia Karen" must not excuse every Karen beside a
    Lawrence, while a swapped record with a slip ("Smxth Sean") is still set aside."""

    def held_as(column: str, name: str) -> pl.DataFrame:
        return keys.group_by("component", pl.col(column).alias("value")).agg(pl.len().alias(name))

    counts = held_as(attribute, "as_attribute").join(
        held_as(partner, "as_partner"), on=["component", "value"], how="full", coalesce=True
    )
    own = (
        keys.select("component", "position", attribute, partner)
        .join(counts.rename({"value": attribute}), on=["component", attribute], how="left")
        .join(
            counts.rename(
                {
                    "value": partner,
                    "as_attribute": "its_partner_as_attribute",
                    "as_partner": "its_partner_as_partner",
                }
            ),
            on=["component", partner],
            how="left",
        )
    )
    # a null value counts nowhere: the comparison is null, and not taken as a swap
    value_is_a_partner = pl.col("as_partner").fill_null(0) >= pl.col("as_attribute")
    partner_is_an_attribute = pl.col("its_partner_as_attribute").fill_null(0) >= pl.col(
        "its_partner_as_partner"
    )
    return own.filter(
        value_is_a_partner.fill_null(False) | partner_is_an_attribute.fill_null(False)
    ).select("component", "position", pl.lit(attribute).alias("attribute"))


class SplitVerdict(NamedTuple):
    """What the next run's split makes of a record that links several customers."""

    conflicting: set[str]
    """The customers it could not join without the split cutting it off again."""
    kept_apart: bool
    """Whether the others, merged through it, would be cut apart again."""


def split_verdict(
    record: dict[str, str | None],
    customers: pl.DataFrame,
    splitting: Splitting | None,
    con: duckdb.DuckDBPyConnection,
) -> SplitVerdict:
    """The split's verdict on a record linking ``customers``, by the batch's own rule
    (``swappable`` honoured), so that a real-time answer picks among customers the way
    the next run's split will leave them.

    ``record`` holds the record's name key (:func:`name_key`) of every attribute the
    guard reads (``splitting.attributes``); ``customers`` holds ``resolved_id`` and the
    same keys of each of the customers' records. A customer conflicts when the record
    and its records, taken as one cluster, hold two values of a conflict attribute that
    cannot be one person's. The others are kept apart when all of them and the record,
    taken as one cluster — what the next run's merge makes of them — hold such values
    in two of the others' records (a conflict inside one customer says nothing about
    keeping them together). One query answers both: it is most of the cost.
    ``con`` comes from :func:`conflict_connection`.
    """
    if splitting is None or not splitting.conflicts or customers.is_empty():
        return SplitVerdict(set(), False)
    attributes = splitting.attributes
    ids = customers.get_column("resolved_id").unique(maintain_order=True)
    merged = len(ids)  # components 0..merged-1: one customer and the record; merged: all
    theirs = customers.select(
        "resolved_id",
        pl.col("resolved_id")
        .replace_strict(ids, range(merged), return_dtype=pl.Int64)
        .alias("component"),
        *[pl.col(a).cast(pl.String) for a in attributes],
    )
    mine = pl.DataFrame(
        {"resolved_id": [None] * (merged + 1)}
        | {a: [record.get(a)] * (merged + 1) for a in attributes},
        schema=dict.fromkeys(["resolved_id", *attributes], pl.String),
    ).select("resolved_id", pl.int_range(pl.len(), dtype=pl.Int64).alias("component"), *attributes)
    keys = pl.concat(
        [mine, theirs, theirs.with_columns(pl.lit(merged, pl.Int64).alias("component"))]
    ).with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("position"))
    values = _held_values(keys, splitting.conflicts, splitting.swappable).join(
        keys.select("position", "resolved_id"), on="position"
    )
    pairs = _incompatible_pairs(values, splitting.conflicts, con)
    on = ["component", "attribute", "value"]
    own = values.filter(pl.col("resolved_id").is_null()).select(on)
    against = pairs.filter(pl.col("component") < merged).join(own, on=on, how="semi")
    conflicting = set(ids.gather(against.get_column("component").unique().to_list()).to_list())
    others = ~pl.col("resolved_id").is_in(list(conflicting))  # the record's values: null
    owners = (
        values.filter(pl.col("component") == merged, others).select(*on, "resolved_id").unique()
    )
    across = pairs.join(owners, on=on).join(
        owners.rename({"value": "other", "resolved_id": "other_id"}),
        on=["component", "attribute", "other"],
    )
    kept_apart = not across.filter(pl.col("resolved_id") != pl.col("other_id")).is_empty()
    return SplitVerdict(conflicting, kept_apart)


def conflict_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection the conflict test runs on (the nickname table
    registered). Opening one costs about 10 ms: a caller that tests often keeps one."""
    con = duckdb.connect()
    con.register("nickname_pairs", nickname_pairs().to_arrow())
    return con


def _incompatible_pairs(
    values: pl.DataFrame, conflicts: dict[str, str], con: duckdb.DuckDBPyConnection
) -> pl.DataFrame:
    """(component, attribute, value, other) for each ordered pair of distinct values of
    one attribute in one component that cannot belong to one person."""
    schema = {"component": pl.Int64, "attribute": pl.String, "value": pl.String, "other": pl.String}
    if not conflicts:
        return pl.DataFrame(schema=schema)
    # one query for every attribute: its planning, not the few rows, is most of the cost
    branches = [
        f"""
        SELECT a.component, a.attribute, a.value, b.value AS other
        FROM held a JOIN held b
          ON a.component = b.component AND a.attribute = b.attribute AND a.value <> b.value
        WHERE a.attribute = ? AND NOT {_COMPATIBLE_SQL[method]("a.value", "b.value")}
        """
        for method in conflicts.values()
    ]
    held = values.select("component", "attribute", "value").unique()
    con.register("held", held.to_arrow())
    pairs = con.sql(" UNION ALL ".join(branches), params=list(conflicts)).pl()
    con.unregister("held")
    return pl.DataFrame(schema=schema).vstack(pairs.select(list(schema)).cast(schema))
