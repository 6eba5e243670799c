"""membership and clusters again only for the components a batch touched.

A record's cluster depends on nothing but its *component* — the records linked to it
before the split: the split cuts one component without looking at another (see
:mod:`customer360.core.splitting`; only the number of records is shared), and ids are
handed down within the previous clusters of a component's records (see
:mod:`customer360.core.stable_ids`). So the records to resolve again are those of every
component a change reaches, before and after it:

- *seeds*: records that came, went, or changed what the clustering reads (order keys,
  source and record key, the split's attributes), and both ends of every edge found in
  one run only;
- every record of the previous components of the seeds' previous clusters (previous
  clusters joined by the links the split cut), plus the seeds still present;
- all components the split cut last run, when the number of records changed (it weighs
  every identifier link).

No current edge leaves that set: an edge out of it would be an unchanged edge between
two records of one previous component, or a changed one, whose ends are seeds. So the
set is resolved on its own — linked, split, given ids against the whole registry — and
every other record keeps its resolved_id, its cluster row and its cut links. What the
next run compares against is kept as *cluster inputs*: a hash of every record's key and
of its read columns, a hash of every edge and of its ends' keys — integers only, no
text — and the links the split cut.

Seeds are found by their keys' hashes: a published record whose key hash is a seed's
brings its whole previous component in, so a collision costs work, never a wrong
cluster. An end of a changed edge needs no text of its own: it is a published record
(its component comes in) or a new one (a seed by its record hash).
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import numpy as np
import polars as pl

from customer360.core.clusters import (
    CLUSTER_SCHEMA,
    ENDS,
    component_labels,
    resolve_membership,
    summarize_clusters,
    with_ends,
)
from customer360.core.incremental_links import fingerprint_column
from customer360.core.spec import Splitting
from customer360.core.splitting import ClusterSplit, cut_guards
from customer360.core.stable_ids import cluster_lineage, with_published_ids
from customer360.core.storage import ArtifactStore
from customer360.core.touched_clusters import kept_under

# The state files (under artifacts/state/) of the cluster inputs of the last run.
CLUSTER_RECORDS_STATE = "cluster_records"
CLUSTER_EDGES_STATE = "cluster_edges"
CUT_LINKS_STATE = "cut_links"
RESOLVE_SHARE = 0.5
"""Above this share of records to resolve again, resolving everything is cheaper."""


class ClusterInputs(NamedTuple):
    records: pl.DataFrame
    """key_hash (of entity_key), record_hash (of the columns clustering reads) and
    spec_fingerprint, per record in canonical order."""
    edges: pl.DataFrame
    """key_hash_a, key_hash_b (of the ends' entity_keys) and edge_hash (of the whole
    edge), per edge."""


class PreviousClusters(NamedTuple):
    inputs: ClusterInputs
    clusters: pl.DataFrame
    cut: pl.DataFrame


class Clustering(NamedTuple):
    membership: pl.DataFrame
    registry: pl.DataFrame
    clusters: pl.DataFrame
    cut: pl.DataFrame
    """The links the split cut, with the ``guard`` that cut each."""
    lineage: pl.DataFrame | pl.LazyFrame
    """How each record's resolved_id changed since ``published`` (see core.stable_ids); a
    plan when the touched components' lineage is spliced into the unchanged rows."""
    inputs: ClusterInputs
    """What the next run compares against."""
    resolved_again: int | None
    """Records resolved again; None when all were (a full run)."""


def cluster_record_columns(splitting: Splitting | None) -> list[str]:
    """The columns of records that clustering reads."""
    guarded = splitting.attributes if splitting else []
    return ["entity_key", "source", "record_key", "trust", "updated_at", *guarded]


def cluster_inputs(
    records: pl.DataFrame, edges: pl.DataFrame, splitting: Splitting | None, fingerprint: str
) -> ClusterInputs:
    """The inputs of this run's clusters, to tell the next run what changed."""
    content = pl.struct(cluster_record_columns(splitting))
    return ClusterInputs(
        records.select(
            pl.col("entity_key").hash().alias("key_hash"),
            content.hash().alias("record_hash"),
            fingerprint_column(fingerprint),
        ),
        edges.select(
            pl.col("entity_key_a").hash().alias("key_hash_a"),
            pl.col("entity_key_b").hash().alias("key_hash_b"),
            pl.struct(edges.columns).hash().alias("edge_hash"),
        ),
    )


def resolve_clusters(
    records: pl.DataFrame,
    edges: pl.DataFrame,
    splitting: Splitting | None,
    published: pl.DataFrame | pl.LazyFrame | None,
    registry: pl.DataFrame | None,
    now: datetime,
    fingerprint: str,
    previous: PreviousClusters | None = None,
    full_above: float = RESOLVE_SHARE,
) -> Clustering:
    """Membership, clusters and cut links of every record — equal, as sets of rows, to
    splitting and resolving everything — resolving again only the components touched
    since ``previous`` (none, or another spec: everything). ``published`` is the last
    published membership, with the ids the resolve service assigned since, and
    ``registry`` every id issued (see :mod:`customer360.core.stable_ids`). It may be a
    scan: resolving everything reads it only once the split is done, so that the split
    runs without it (0.8 GB at ten million records).

    ``records`` are in canonical order with :func:`cluster_record_columns`; ``edges``
    are every edge set with the columns the split reads. Above ``full_above`` of the
    records touched, everything is resolved again.
    """
    inputs = cluster_inputs(records, edges, splitting, fingerprint)
    if (
        published is None
        or previous is None
        or not kept_under(previous.inputs.records, fingerprint)
    ):
        return _resolve_all(records, edges, splitting, published, registry, now, inputs)
    published = published.lazy().collect()
    before, keys = _touched(previous, inputs, records, published)
    last_clusters, last_cut = previous.clusters, previous.cut
    del previous  # its kept inputs, once compared (0.4 GB at ten million records)
    in_touched = records.select(pl.col("entity_key").is_in(keys.implode())).to_series()
    touched = records.filter(in_touched)
    if touched.height > full_above * records.height:
        return _resolve_all(records, edges, splitting, published, registry, now, inputs)
    registry = with_published_ids(registry, published, now)
    earlier = published.filter(pl.col("resolved_id").is_in(before.implode()))
    if touched.is_empty():  # only removals, or nothing changed
        membership = touched.select(
            "entity_key", "source", "record_key", pl.lit(None, pl.String).alias("resolved_id")
        )
        clusters, cut = last_clusters.clear(), last_cut.clear()
    else:
        theirs = edges.filter(pl.col("entity_key_a").is_in(keys.implode()))
        kept, cut = _split(touched, theirs, splitting, records.height)
        membership, registry, numbers = resolve_membership(touched, kept, earlier, registry, now)
        clusters = summarize_clusters(membership, kept, cut, numbers)
        cut = cut.drop(ENDS)
    # the records of the touched components then, removed ones included, and now
    lineage = cluster_lineage(earlier, membership)
    fresh = Clustering(membership, registry, clusters, cut, lineage, inputs, touched.height)
    return _spliced(records, in_touched, last_clusters, last_cut, published, before, fresh)


def _resolve_all(
    records: pl.DataFrame,
    edges: pl.DataFrame,
    splitting: Splitting | None,
    published: pl.DataFrame | pl.LazyFrame | None,
    registry: pl.DataFrame | None,
    now: datetime,
    inputs: ClusterInputs,
) -> Clustering:
    kept, cut = _split(records, edges, splitting, records.height)
    published = published.lazy().collect() if published is not None else None
    membership, registry, numbers = resolve_membership(records, kept, published, registry, now)
    clusters = summarize_clusters(membership, kept, cut, numbers)
    cut = cut.drop(ENDS)
    lineage = cluster_lineage(published, membership)
    return Clustering(membership, registry, clusters, cut, lineage, inputs, None)


def _split(
    records: pl.DataFrame, edges: pl.DataFrame, splitting: Splitting | None, record_count: int
) -> ClusterSplit:
    """The split of ``edges`` among ``records``: the kept edges with only what
    membership and the cluster summary read of them (their ends' positions and rule),
    not a second copy of every column; the cut ones whole, with their ends' positions."""
    located = with_ends(records, edges)
    guard = cut_guards(records, located, splitting, record_count)
    kept = located.select(*ENDS, "rule")
    if guard is None:
        return ClusterSplit(kept, located.clear().with_columns(guard=pl.lit(None, pl.String)))
    is_cut = guard.is_not_null()
    return ClusterSplit(kept.filter(~is_cut), located.with_columns(guard).filter(is_cut))


def _touched(
    previous: PreviousClusters,
    current: ClusterInputs,
    records: pl.DataFrame,
    published: pl.DataFrame,
) -> tuple[pl.Series, pl.Series]:
    """(the previous ids of the touched components, the entity_keys to resolve again):
    the published components of every seed's key hash, and the records that came or
    changed (``current.records`` is row for row with ``records``)."""
    came, went = _differing(current.records, previous.inputs.records, "record_hash")
    edges_came, edges_went = _differing(current.edges, previous.inputs.edges, "edge_hash")
    seeds = pl.concat(
        [
            current.records.get_column("key_hash").filter(came),
            previous.inputs.records.get_column("key_hash").filter(went),
            *(
                edges.get_column(f"key_hash_{end}").filter(differing)
                for edges, differing in [
                    (current.edges, edges_came),
                    (previous.inputs.edges, edges_went),
                ]
                for end in "ab"
            ),
        ]
    ).unique()
    seeded = pl.col("entity_key").hash().is_in(seeds.implode())
    ids = published.filter(seeded).get_column("resolved_id")
    if records.height != previous.inputs.records.height:  # every identifier link weighs anew
        cut_ends = pl.concat([previous.cut.get_column(f"entity_key_{end}") for end in "ab"])
        split = published.filter(pl.col("entity_key").is_in(cut_ends.implode()))
        ids = pl.concat([ids, split.get_column("resolved_id")])
    before = _whole_components(ids.unique(), previous.cut, published)
    members = published.filter(pl.col("resolved_id").is_in(before.implode()))
    fresh = records.get_column("entity_key").filter(came)
    return before, pl.concat([members.get_column("entity_key"), fresh]).unique()


def _differing(
    current: pl.DataFrame, previous: pl.DataFrame, hash_column: str
) -> tuple[pl.Series, pl.Series]:
    """Masks of the rows of ``current``, and of ``previous``, whose hash is found in
    that frame only: what came, and what went."""
    now, before = current.get_column(hash_column), previous.get_column(hash_column)
    return ~now.is_in(before.implode()), ~before.is_in(now.implode())


def _whole_components(ids: pl.Series, cut: pl.DataFrame, membership: pl.DataFrame) -> pl.Series:
    """``ids`` with every previous cluster the split had cut from the same component."""
    if cut.is_empty():
        return ids
    owner = membership.select("entity_key", "resolved_id")
    pairs = (
        cut.select("entity_key_a", "entity_key_b")
        .join(owner.rename({"entity_key": "entity_key_a"}), on="entity_key_a")
        .join(owner.rename({"entity_key": "entity_key_b"}), on="entity_key_b", suffix="_b")
    )
    nodes = pl.concat([pairs.get_column("resolved_id"), pairs.get_column("resolved_id_b")])
    nodes = nodes.unique().sort()
    labels = component_labels(
        nodes.len(),
        np.searchsorted(nodes.to_numpy(), pairs.get_column("resolved_id").to_numpy()),
        np.searchsorted(nodes.to_numpy(), pairs.get_column("resolved_id_b").to_numpy()),
    )
    joined = pl.DataFrame({"resolved_id": nodes, "component": labels})
    reached = joined.filter(pl.col("resolved_id").is_in(ids.implode())).get_column("component")
    near = joined.filter(pl.col("component").is_in(reached.implode())).get_column("resolved_id")
    return pl.concat([ids, near]).unique()


def _spliced(
    records: pl.DataFrame,
    touched: pl.Series,
    last_clusters: pl.DataFrame,
    last_cut: pl.DataFrame,
    published: pl.DataFrame,
    before: pl.Series,
    fresh: Clustering,
) -> Clustering:
    """The touched components' results (``touched``: the records they hold) in place of
    theirs in the last run's clusters and cut links."""
    gone = pl.col("resolved_id").is_in(before.implode())
    resolved_again = published.select(gone).to_series()
    kept = published.filter(~resolved_again)
    membership = records.select("entity_key", "source", "record_key").with_columns(
        _spliced_ids(records, touched, kept, fresh.membership.get_column("resolved_id"))
    )
    clusters = pl.concat([last_clusters.filter(~gone), fresh.clusters])
    # ordered by their sort keys alone, then gathered once: the lists are not moved by
    # each sort; two stable one-key sorts are half the work of one sort on both keys
    order = (
        clusters.select("size", "resolved_id", pl.int_range(pl.len()).alias("row"))
        .sort("resolved_id")
        .sort("size", descending=True, maintain_order=True)
        .get_column("row")
    )
    clusters = clusters[order].select(list(CLUSTER_SCHEMA)).cast(CLUSTER_SCHEMA)
    earlier = published.get_column("entity_key").filter(resolved_again)
    cut = pl.concat([last_cut.filter(~pl.col("entity_key_a").is_in(earlier.implode())), fresh.cut])
    # every other record keeps its id: its lineage is UNCHANGED, a plan over the kept
    # rows rather than a copy of them (their keys and ids: 0.8 GB at ten million records)
    unchanged = kept.lazy().select(
        "entity_key",
        pl.col("resolved_id").alias("previous_resolved_id"),
        "resolved_id",
        pl.lit("UNCHANGED").alias("change_type"),
    )
    lineage = pl.concat([fresh.lineage.lazy(), unchanged])
    return fresh._replace(membership=membership, clusters=clusters, cut=cut, lineage=lineage)


def _spliced_ids(
    records: pl.DataFrame, touched: pl.Series, kept: pl.DataFrame, resolved: pl.Series
) -> pl.Series:
    """The resolved_id of every record: ``resolved``, in order, for the ``touched`` ones,
    and for the others their published id; ``kept`` are the published rows of the
    untouched components.

    They are the untouched records themselves: a record that came is touched, one that
    went had its component touched. Published in the last run's canonical order, which
    a record leaves only by changing (and then it is touched), they are usually in the
    order of the untouched records: both lists are then interleaved by one gather after
    one comparison of the keys, instead of joining every record's key."""
    keys = records.get_column("entity_key")
    if not keys.filter(~touched).equals(kept.get_column("entity_key")):
        untouched = records.select("entity_key").filter(~touched)
        kept = untouched.join(kept, on="entity_key", how="left", maintain_order="left")
    # a record's row in [kept ids …, resolved ids …]: its rank among its own kind
    is_touched = touched.to_numpy()
    rows = np.where(
        is_touched,
        len(kept) + np.cumsum(is_touched) - 1,
        np.cumsum(~is_touched) - 1,
    )
    both = pl.concat([kept.get_column("resolved_id"), resolved])
    return both.gather(rows).alias("resolved_id")


def kept_clusters(store: ArtifactStore) -> PreviousClusters | None:
    """The last run's cluster inputs, clusters and cut links, if all were kept in this
    layout."""
    keyed = store.read_state(CLUSTER_RECORDS_STATE)
    edges, cut = store.read_state(CLUSTER_EDGES_STATE), store.read_state(CUT_LINKS_STATE)
    if keyed is None or edges is None or cut is None or not store.exists("clusters"):
        return None
    if "key_hash" not in keyed.columns:  # kept in another layout (text keys)
        return None
    return PreviousClusters(ClusterInputs(keyed, edges), store.read("clusters"), cut)


def forget_cluster_inputs(store: ArtifactStore) -> None:
    """Drop the kept inputs (before the outputs they describe are replaced: a run that
    stops in between leaves none, and the next run resolves everything)."""
    for name in (CLUSTER_RECORDS_STATE, CLUSTER_EDGES_STATE, CUT_LINKS_STATE):
        store.state_path(name).unlink(missing_ok=True)


def keep_cluster_inputs(store: ArtifactStore, inputs: ClusterInputs, cut: pl.DataFrame) -> None:
    """Keep the inputs and the cut links (:class:`Clustering`) for the next run, once
    the outputs they describe are written."""
    store.write_state(CLUSTER_EDGES_STATE, inputs.edges)
    store.write_state(CUT_LINKS_STATE, cut)
    store.write_state(CLUSTER_RECORDS_STATE, inputs.records)  # last: marks all whole
