"""Why records belong to one customer: the chain of edges that joins them, with evidence.

A cluster is a connected component of ``identity_edges``, possibly split afterwards at
its weakest links. So two records of one cluster are always joined by a path of edges,
and each edge carries its own evidence: the shared identifier value of a deterministic
rule, or the match probability, weight and per-field weights of the probabilistic
model. This module finds that path for two records (:func:`explain_pair`), the tree of
such paths from one record to the rest of its cluster (:func:`explain_record`), the
edges whose loss would split the largest clusters (:func:`weakest_links`), and writes
explanations as text a person can read (:func:`format_explanation`).

Every search is confined to the clusters involved — a few hundred records at most —
which Polars filters out of the full tables first; the small graph that is left is
searched with scipy's compiled shortest paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from customer360.core.edges import EDGE_SCHEMA

MASK = "***"
_PHONE_SHAPE = re.compile(r"^\+?[\d\s().-]{7,}$")


class UnknownRecordError(LookupError):
    """A key that names no record of the published membership."""


@dataclass(frozen=True)
class FieldEvidence:
    """One field's contribution to a probabilistic match (weight in log2 units)."""

    field: str
    level: str
    weight: float


@dataclass(frozen=True)
class EdgeStep:
    """One edge of a path, oriented the way the path walks it, with its evidence.

    A deterministic edge names the identifier type and the value both records share; a
    probabilistic edge has a match probability, a match weight (log2 Bayes factor) and
    the per-field evidence that adds up to that weight.
    """

    from_key: str
    to_key: str
    from_resolved_id: str
    to_resolved_id: str
    rule: str
    identifier_type: str | None
    value: str | None
    match_probability: float | None
    match_weight: float | None
    evidence: tuple[FieldEvidence, ...]

    @property
    def crosses_clusters(self) -> bool:
        """True for an edge the published result cut: its ends are different customers."""
        return self.from_resolved_id != self.to_resolved_id


@dataclass(frozen=True)
class PairExplanation:
    """Whether two records are one customer, and the chain of edges between them.

    ``path`` walks from ``key_a`` to ``key_b``. For linked records it stays inside their
    cluster. For records of different clusters it is empty, unless a cluster was split
    after linking: then it is the chain that joined them before the split, and the
    steps that cross clusters are the links the split cut.
    """

    key_a: str
    key_b: str
    resolved_id_a: str
    resolved_id_b: str
    size_a: int
    size_b: int
    linked: bool
    path: list[EdgeStep]
    guards: tuple[str, ...] = ()
    """The guards that split the clusters involved (``clusters.split_by``), when known."""

    @property
    def split(self) -> bool:
        """The records are joined by edges, but were put in different clusters."""
        return not self.linked and bool(self.path)


@dataclass(frozen=True)
class RecordExplanation:
    """A record's cluster and the tree of edges from the record to every other member.

    ``paths`` maps each member reached through edges inside the cluster to the path
    from ``key`` (the record itself maps to an empty path). ``cut_links`` are edges from
    the cluster to records of other clusters: links a split of the cluster cut.
    """

    key: str
    resolved_id: str
    members: list[str]
    paths: dict[str, list[EdgeStep]]
    cut_links: list[EdgeStep]
    guards: tuple[str, ...] = ()
    """The guards that split the cluster (``clusters.split_by``), when known."""


def explain_pair(
    edges: pl.DataFrame,
    membership: pl.DataFrame,
    key_a: str,
    key_b: str,
    clusters: pl.DataFrame | None = None,
) -> PairExplanation:
    """The chain of edges that makes two records one customer, or shows they are not.

    Linked records are explained by edges inside their cluster only, since those are
    what the published result rests on. Records of different clusters are searched for
    in the component their clusters came from, so a split cluster's cut links show up,
    with the guards that cut them when ``clusters`` (with ``split_by``) is given.
    The path is the cheapest one under :func:`_link_cost`: the fewest links, and among
    as many links the strongest ones.
    """
    edges = _with_probabilistic_columns(edges)
    resolved_a = _resolved_id(membership, key_a)
    resolved_b = _resolved_id(membership, key_b)
    linked = resolved_a == resolved_b
    members = (
        _cluster_members(membership, resolved_a)
        if linked
        else _original_component(edges, membership, resolved_a)
    )
    paths = _LinkGraph(_edges_among(edges, members)).paths_from(key_a)
    sizes = _cluster_sizes(membership, [resolved_a, resolved_b])
    return PairExplanation(
        key_a=key_a,
        key_b=key_b,
        resolved_id_a=resolved_a,
        resolved_id_b=resolved_b,
        size_a=sizes[resolved_a],
        size_b=sizes[resolved_b],
        linked=linked,
        path=paths.get(key_b, []),
        guards=_split_guards(clusters, [resolved_a, resolved_b]),
    )


def explain_record(
    edges: pl.DataFrame,
    membership: pl.DataFrame,
    key: str,
    clusters: pl.DataFrame | None = None,
) -> RecordExplanation:
    """The record's cluster, its members, and the edges that tie each member to it.

    The tree is the union of the cheapest paths from the record (the same choice as
    :func:`explain_pair`), so each member's branch reads as that pair's explanation.
    """
    edges = _with_probabilistic_columns(edges)
    resolved_id = _resolved_id(membership, key)
    members = _cluster_members(membership, resolved_id)
    paths = _LinkGraph(_edges_among(edges, members)).paths_from(key)
    by_distance = sorted(paths, key=lambda member: (len(paths[member]), member))
    unreached = sorted(set(members.get_column("entity_key")) - set(paths))
    return RecordExplanation(
        key=key,
        resolved_id=resolved_id,
        members=[*by_distance, *unreached],
        paths=paths,
        cut_links=_cut_links(edges, membership, members),
        guards=_split_guards(clusters, [resolved_id]),
    )


def weakest_links(
    edges: pl.DataFrame,
    membership: pl.DataFrame,
    clusters: pl.DataFrame,
    top_clusters: int = 5,
    per_cluster: int = 3,
    reveal: bool = False,
) -> pl.DataFrame:
    """The edges that alone hold the largest clusters together, weakest first.

    An over-merge usually hangs on one bad link, and such a link is a bridge: an edge
    whose removal splits the cluster. For each of the ``top_clusters`` largest clusters
    this lists up to ``per_cluster`` bridges, weakest first: probabilistic ones by match
    weight ascending, then deterministic ones by how many records share the value (a
    value shared by many records — a household phone, a family email — is more likely
    not one person's). Values are masked unless ``reveal`` is set, since the table is
    meant for metadata that everyone with access to the UI sees.
    """
    edges = _with_probabilistic_columns(edges)
    largest = clusters.sort(["size", "resolved_id"], descending=[True, False]).head(top_clusters)
    members = membership.join(largest.select("resolved_id"), on="resolved_id", how="semi")
    inside = _edges_among(edges, members).filter(pl.col("resolved_id_a") == pl.col("resolved_id_b"))
    bridges = _bridges(inside)
    # only the bridges' values are counted, not every value of the run: the edges
    # holding one of those few values are found first, so that no join is built over
    # all of them (a gigabyte at ten million edges)
    values = bridges.select("identifier_type", "value").unique()
    value_group_sizes = (
        edges.filter(pl.col("value").is_in(values.get_column("value").implode()))
        .join(values, on=["identifier_type", "value"], how="semi")
        .group_by("identifier_type", "value")
        .agg((pl.len() + 1).alias("value_group_size"))  # a star of n records has n - 1 edges
    )
    weakest = (
        bridges.join(value_group_sizes, on=["identifier_type", "value"], how="left")
        .join(
            largest.select("resolved_id", pl.col("size").alias("cluster_size")),
            left_on="resolved_id_a",
            right_on="resolved_id",
        )
        .rename({"resolved_id_a": "resolved_id"})
        .sort(
            [
                "cluster_size",
                "resolved_id",
                "match_weight",
                "value_group_size",
                "entity_key_a",
                "entity_key_b",
            ],
            descending=[True, False, False, True, False, False],
            nulls_last=True,
        )
        .group_by("resolved_id", maintain_order=True)
        .head(per_cluster)
    )
    return weakest.select(
        "resolved_id",
        "cluster_size",
        "entity_key_a",
        "entity_key_b",
        "rule",
        "identifier_type",
        pl.col("value")
        if reveal
        else pl.col("value").map_elements(mask_value, return_dtype=pl.String),
        "value_group_size",
        "match_weight",
        "match_probability",
    )


def format_explanation(
    explanation: PairExplanation | RecordExplanation, reveal: bool = False
) -> str:
    """Readable multi-line text; personal values are masked unless ``reveal`` is set."""
    if isinstance(explanation, PairExplanation):
        return "\n".join(_pair_lines(explanation, reveal))
    return "\n".join(_record_lines(explanation, reveal))


def mask_value(value: str) -> str:
    """Enough of a value to recognise it, not enough to misuse it.

    Emails keep the first letter of the mailbox and the domain (``j***@gmail.com``),
    phones their last four digits (``***4567``), anything else its last two characters
    when it is long enough that this gives little away.
    """
    mailbox, at, domain = value.partition("@")
    if at:
        return f"{mailbox[:1]}{MASK}@{domain}"
    if _PHONE_SHAPE.match(value):
        return MASK + re.sub(r"\D", "", value)[-4:]
    return MASK + value[-2:] if len(value) >= 6 else MASK


# --- the graph of a few clusters ---------------------------------------------------


def _link_cost() -> pl.Expr:
    """What one edge adds to a path: 1, plus the chance a probabilistic link is wrong.

    That chance, at even prior odds, is 1 / (1 + 2^match_weight): 0.001 at weight +10,
    0.11 at +3, 0.5 at 0; deterministic edges carry no weight and add nothing. Paths
    with fewer links always win unless their links are doubtful (two links near weight
    0 cost as much as three certain ones), and among paths of as many links the one
    with deterministic and heavier probabilistic links wins — the explanation a person
    finds most convincing.
    """
    doubt = 1.0 / (1.0 + pl.lit(2.0).pow(pl.col("match_weight")))
    return 1.0 + doubt.fill_null(0.0)


class _LinkGraph:
    """The edges among a few hundred records as a weighted graph, one edge per pair.

    Two records may be joined by several edges (the same email and the same phone);
    only the strongest one is kept — it is the one an explanation names, and scipy
    would otherwise add the parallel edges' costs together.
    """

    def __init__(self, edges: pl.DataFrame) -> None:
        low = pl.min_horizontal("entity_key_a", "entity_key_b")
        high = pl.max_horizontal("entity_key_a", "entity_key_b")
        strongest = (
            edges.with_columns(low.alias("low"), high.alias("high"), _link_cost().alias("cost"))
            .sort("cost", "rule", "identifier_type", "value", "low", "high", nulls_last=True)
            .unique(["low", "high"], keep="first", maintain_order=True)
        )
        self.keys: list[str] = (
            pl.concat([strongest.get_column("low"), strongest.get_column("high")])
            .unique()
            .sort()
            .to_list()
        )
        self._index = {key: position for position, key in enumerate(self.keys)}
        self._edges = {
            (self._index[row["low"]], self._index[row["high"]]): row for row in strongest.to_dicts()
        }
        lows, highs = (
            np.array([pair[end] for pair in self._edges], dtype=np.int64) for end in (0, 1)
        )
        self._matrix = coo_matrix(
            (strongest.get_column("cost").to_numpy(), (lows, highs)),
            shape=(len(self.keys), len(self.keys)),
        ).tocsr()

    def paths_from(self, start: str) -> dict[str, list[EdgeStep]]:
        """The cheapest path from ``start`` to every record it reaches (itself: [])."""
        if start not in self._index:
            return {start: []}
        origin = self._index[start]
        distances, predecessors = dijkstra(
            self._matrix, directed=False, indices=origin, return_predecessors=True
        )
        reached = np.flatnonzero(np.isfinite(distances))
        paths: dict[str, list[EdgeStep]] = {start: []}
        # Every edge costs at least 1, so a record's predecessor is always nearer.
        for node in reached[np.argsort(distances[reached], kind="stable")]:
            if node == origin:
                continue
            parent = int(predecessors[node])
            paths[self.keys[node]] = [*paths[self.keys[parent]], self._step(parent, int(node))]
        return paths

    def _step(self, origin: int, target: int) -> EdgeStep:
        row = self._edges[(min(origin, target), max(origin, target))]
        return _edge_step(row, from_key=self.keys[origin])


def _edge_step(row: dict[str, Any], from_key: str) -> EdgeStep:
    """An edges row (with both ends' resolved ids) walked from ``from_key``."""
    forward = row["entity_key_a"] == from_key
    end = "a" if forward else "b"
    other = "b" if forward else "a"
    return EdgeStep(
        from_key=row[f"entity_key_{end}"],
        to_key=row[f"entity_key_{other}"],
        from_resolved_id=row[f"resolved_id_{end}"],
        to_resolved_id=row[f"resolved_id_{other}"],
        rule=row["rule"],
        identifier_type=row["identifier_type"],
        value=row["value"],
        match_probability=row["match_probability"],
        match_weight=row["match_weight"],
        evidence=tuple(FieldEvidence(**field) for field in row["evidence"] or []),
    )


def _bridges(inside: pl.DataFrame) -> pl.DataFrame:
    """The edges whose removal would split their cluster (``inside``: edges within clusters).

    A pair of records joined by more than one edge is never a bridge: losing one of the
    edges leaves the other.
    """
    pair = [
        pl.min_horizontal("entity_key_a", "entity_key_b").alias("low"),
        pl.max_horizontal("entity_key_a", "entity_key_b").alias("high"),
    ]
    pairs = inside.group_by(pair).len().sort("low", "high")
    keys = pl.concat([pairs.get_column("low"), pairs.get_column("high")]).unique().sort()
    index = {key: position for position, key in enumerate(keys)}
    ends = [(index[low], index[high]) for low, high in pairs.select("low", "high").iter_rows()]
    single_bridges = pairs.with_row_index("pair").filter(
        pl.col("pair").is_in(_bridge_positions(ends, len(index))) & (pl.col("len") == 1)
    )
    return (
        inside.with_columns(pair)
        .join(single_bridges.select("low", "high"), on=["low", "high"])
        .drop("low", "high")
    )


def _bridge_positions(ends: list[tuple[int, int]], node_count: int) -> list[int]:
    """Positions in ``ends`` of the bridges of a simple undirected graph (Tarjan).

    A depth-first walk numbers nodes in the order it discovers them; the edge to a
    child is a bridge when nothing in the child's subtree has an edge back to the
    parent or above. Iterative, so large clusters cannot exhaust Python's stack.
    """
    adjacency: list[list[tuple[int, int]]] = [[] for _ in range(node_count)]
    for position, (low, high) in enumerate(ends):
        adjacency[low].append((high, position))
        adjacency[high].append((low, position))
    discovered = [-1] * node_count  # discovery order in the walk
    lowest = [0] * node_count  # earliest discovery an edge from the subtree reaches
    bridges: list[int] = []
    clock = 0
    for root in range(node_count):
        if discovered[root] >= 0:
            continue
        discovered[root] = lowest[root] = clock
        clock += 1
        stack = [(root, -1, iter(adjacency[root]))]
        while stack:
            node, via, neighbours = stack[-1]
            for neighbour, position in neighbours:
                if position == via:
                    continue
                if discovered[neighbour] < 0:
                    discovered[neighbour] = lowest[neighbour] = clock
                    clock += 1
                    stack.append((neighbour, position, iter(adjacency[neighbour])))
                    break
                lowest[node] = min(lowest[node], discovered[neighbour])
            else:
                stack.pop()
                if stack:
                    parent = stack[-1][0]
                    lowest[parent] = min(lowest[parent], lowest[node])
                    if lowest[node] > discovered[parent]:
                        bridges.append(via)
    return bridges


# --- looking things up in the published tables -------------------------------------


def _with_probabilistic_columns(edges: pl.DataFrame) -> pl.DataFrame:
    """Edges written before probabilistic matching existed lack its columns: all of
    their edges are deterministic, so the columns are null."""
    return edges.with_columns(
        pl.lit(None, dtype).alias(name)
        for name, dtype in EDGE_SCHEMA.items()
        if name not in edges.columns
    )


def _resolved_id(membership: pl.DataFrame, key: str) -> str:
    found = membership.filter(pl.col("entity_key") == key).get_column("resolved_id")
    if found.len():
        return found.item(0)
    similar = (
        membership.filter(pl.col("entity_key").str.ends_with(f":{key}"))
        .get_column("entity_key")
        .head(3)
        .to_list()
    )
    example = membership.get_column("entity_key").head(1).to_list()
    if similar:
        hint = f"did you mean {' or '.join(repr(key) for key in similar)}?"
    elif example:
        hint = f"keys look like {example[0]!r}"
    else:
        hint = "the published membership is empty"
    raise UnknownRecordError(f"no record with key {key!r} in the published outputs; {hint}")


def _cluster_members(membership: pl.DataFrame, resolved_id: str) -> pl.DataFrame:
    return membership.filter(pl.col("resolved_id") == resolved_id).select(
        "entity_key", "resolved_id"
    )


def _split_guards(clusters: pl.DataFrame | None, resolved_ids: list[str]) -> tuple[str, ...]:
    if clusters is None or "split_by" not in clusters.columns:
        return ()
    chosen = clusters.filter(pl.col("resolved_id").is_in(resolved_ids))
    return tuple(sorted(set(chosen.get_column("split_by").explode().drop_nulls())))


def _cluster_sizes(membership: pl.DataFrame, resolved_ids: list[str]) -> dict[str, int]:
    sizes = (
        membership.filter(pl.col("resolved_id").is_in(resolved_ids)).group_by("resolved_id").len()
    )
    return dict(sizes.iter_rows())


def _original_component(
    edges: pl.DataFrame, membership: pl.DataFrame, resolved_id: str
) -> pl.DataFrame:
    """The members of a cluster and of every cluster edges reach from it.

    Unsplit clusters are whole components, so this is the cluster itself. A cluster
    split at its weakest links still has edges to its pieces; following them cluster by
    cluster recovers the component as it was before the split, without searching the
    whole graph.
    """
    clusters = {resolved_id}
    while True:
        members = membership.filter(pl.col("resolved_id").is_in(list(clusters)))
        keys = members.get_column("entity_key").implode()
        touching = edges.filter(
            pl.col("entity_key_a").is_in(keys) | pl.col("entity_key_b").is_in(keys)
        )
        ends = pl.concat([touching.get_column("entity_key_a"), touching.get_column("entity_key_b")])
        reached = set(
            membership.filter(pl.col("entity_key").is_in(ends.implode())).get_column("resolved_id")
        )
        if reached <= clusters:
            return members.select("entity_key", "resolved_id")
        clusters |= reached


def _edges_among(edges: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
    """Edges with both ends among ``members``, with each end's resolved_id."""
    keys = members.get_column("entity_key").implode()
    inside = edges.filter(pl.col("entity_key_a").is_in(keys) & pl.col("entity_key_b").is_in(keys))
    return _with_resolved_ids(inside, members)


def _cut_links(
    edges: pl.DataFrame, membership: pl.DataFrame, members: pl.DataFrame
) -> list[EdgeStep]:
    """Edges from ``members`` to records outside them, walked outwards."""
    keys = members.get_column("entity_key").implode()
    leaving = edges.filter(pl.col("entity_key_a").is_in(keys) != pl.col("entity_key_b").is_in(keys))
    ends = pl.concat([leaving.get_column("entity_key_a"), leaving.get_column("entity_key_b")])
    neighbourhood = membership.filter(pl.col("entity_key").is_in(ends.implode()))
    inner_key = (
        pl.when(pl.col("entity_key_a").is_in(keys))
        .then(pl.col("entity_key_a"))
        .otherwise(pl.col("entity_key_b"))
    )
    rows = (
        _with_resolved_ids(leaving, neighbourhood)
        .with_columns(inner_key.alias("inner_key"))
        .sort("inner_key", "entity_key_a", "entity_key_b", "rule")
        .to_dicts()
    )
    return [_edge_step(row, from_key=row["inner_key"]) for row in rows]


def _with_resolved_ids(edges: pl.DataFrame, membership: pl.DataFrame) -> pl.DataFrame:
    lookup = membership.select("entity_key", "resolved_id")
    return edges.join(
        lookup.rename({"entity_key": "entity_key_a", "resolved_id": "resolved_id_a"}),
        on="entity_key_a",
        how="left",
    ).join(
        lookup.rename({"entity_key": "entity_key_b", "resolved_id": "resolved_id_b"}),
        on="entity_key_b",
        how="left",
    )


# --- text ----------------------------------------------------------------------------


def _pair_lines(pair: PairExplanation, reveal: bool) -> list[str]:
    a, b = pair.key_a, pair.key_b
    if a == b:
        return [f"{a} is one record (resolved_id {pair.resolved_id_a})."]
    if pair.linked and not pair.path:
        return [
            f"{a} and {b} are the same customer (resolved_id {pair.resolved_id_a}), but no "
            "chain of published links joins them: identity_edges and membership seem to "
            "come from different runs; run `customer360 run` again."
        ]
    if pair.linked:
        count = _plural(len(pair.path), "link")
        lines = [
            f"{a} and {b} are the same customer (resolved_id {pair.resolved_id_a}), "
            f"joined by {count}:"
        ]
        return lines + _numbered_steps(pair.path, reveal)
    customers = (
        f"{a} is customer {pair.resolved_id_a} ({_plural(pair.size_a, 'record')}), "
        f"{b} is customer {pair.resolved_id_b} ({_plural(pair.size_b, 'record')})."
    )
    if not pair.split:
        return [
            f"{a} and {b} are not linked: {customers} No chain of shared identifiers or "
            "probable matches joins them."
        ]
    cut = sum(step.crosses_clusters for step in pair.path)
    lines = [
        f"{a} and {b} are not linked in the published result: {customers}",
        f"These {_plural(len(pair.path), 'link')} would join them, but their cluster was split "
        f"at its weakest links{_by_guards(pair.guards)}, which cut the "
        f"{'link' if cut == 1 else 'links'} marked [cut]:",
    ]
    return lines + _numbered_steps(pair.path, reveal)


def _record_lines(record: RecordExplanation, reveal: bool) -> list[str]:
    key, size = record.key, len(record.members)
    if size == 1:
        lines = [
            f"{key} is customer {record.resolved_id} on its own (1 record): no shared "
            "identifier or probable match links it to another record."
        ]
    else:
        lines = [
            f"{key} is one of {size} records of customer {record.resolved_id}, held "
            f"together by {_plural(len(record.paths) - 1, 'link')}:",
            f"  {key}",
        ]
        lines += _tree_lines(record, reveal)
    if record.cut_links:
        count = len(record.cut_links)
        lines.append(
            f"{_plural(count, 'link')} to other customers {'was' if count == 1 else 'were'} cut "
            f"when the cluster was split at its weakest links{_by_guards(record.guards)}:"
        )
        lines += _numbered_steps(record.cut_links, reveal)
    return lines


def _tree_lines(record: RecordExplanation, reveal: bool) -> list[str]:
    """Each member under the member its path comes through, indented by depth."""
    children: dict[str, list[EdgeStep]] = {}
    for member in record.members:
        path = record.paths.get(member)
        if path:
            children.setdefault(path[-1].from_key, []).append(path[-1])
    lines: list[str] = []
    pending = [(step, 1) for step in reversed(children.get(record.key, []))]
    while pending:
        step, depth = pending.pop()
        indent = "  " * (depth + 1)
        lines.append(f"{indent}—{step.rule}— {step.to_key}   {_evidence_summary(step, reveal)}")
        lines += [indent + "     " + line for line in _field_lines(step)]
        pending += [(child, depth + 1) for child in reversed(children.get(step.to_key, []))]
    unreached = [member for member in record.members if member not in record.paths]
    if unreached:
        lines.append(
            f"  not reached by any published link ({', '.join(unreached)}): identity_edges "
            "and membership seem to come from different runs; run `customer360 run` again."
        )
    return lines


def _numbered_steps(steps: list[EdgeStep], reveal: bool) -> list[str]:
    lines = []
    for number, step in enumerate(steps, start=1):
        cut = "   [cut]" if step.crosses_clusters else ""
        lines.append(
            f"  {number}. {step.from_key} —{step.rule}— {step.to_key}   "
            f"{_evidence_summary(step, reveal)}{cut}"
        )
        lines += ["       " + line for line in _field_lines(step)]
    return lines


def _evidence_summary(step: EdgeStep, reveal: bool) -> str:
    if step.match_weight is not None or step.match_probability is not None:
        parts = []
        if step.match_probability is not None:
            parts.append(f"match probability {step.match_probability:.4f}")
        if step.match_weight is not None:
            parts.append(f"weight {_signed(step.match_weight)}")
        return ", ".join(parts)
    value = step.value if reveal or step.value is None else mask_value(step.value)
    kind = (step.identifier_type or "identifier").replace("_", " ")
    return f"shared {kind} {value}"


def _field_lines(step: EdgeStep) -> list[str]:
    """One line per field of a probabilistic match: field, comparison level, weight."""
    if not step.evidence:
        return []
    field_width = max(len(field.field) for field in step.evidence)
    level_width = max(len(field.level) for field in step.evidence)
    return [
        f"{field.field:<{field_width}}  {field.level:<{level_width}}  {_signed(field.weight):>6}"
        for field in step.evidence
    ]


def _signed(weight: float) -> str:
    return "0.0" if round(weight, 1) == 0 else f"{weight:+.1f}"


def _by_guards(guards: tuple[str, ...]) -> str:
    return f" ({', '.join(guards)})" if guards else ""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
