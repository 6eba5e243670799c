"""Linking and clustering only what a batch touched ends exactly where doing everything
again ends: the same edges, partition, cluster rows, cut links and resolved ids."""

from __future__ import annotations

from datetime import datetime

import polars as pl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from customer360.core.edges import build_edges
from customer360.core.identifiers import build_identifiers
from customer360.core.incremental_clusters import (
    CLUSTER_RECORDS_STATE,
    PreviousClusters,
    cluster_record_columns,
    keep_cluster_inputs,
    kept_clusters,
    resolve_clusters,
)
from customer360.core.incremental_links import PreviousLinks, update_edges
from customer360.core.records import build_records
from customer360.core.storage import ArtifactStore

from .conftest import make_spec

# one source; emails and phones shared between people, a household phone guarded by
# first name, emails held by more than three records link nothing, clusters with
# conflicting first names or more than four records are split
SPEC = make_spec(
    {
        "identifier_types": {
            "email": {"normalizer": "email", "max_group_size": 3},
            "phone": {"normalizer": "phone", "corroborate": "first_name"},
        },
        "sources": [
            {
                "name": "crm",
                "path": "crm",
                "format": "csv",
                "key": "id",
                "updated_at": "at",
                "trust": 1,
                "identifiers": {"email": "email", "phone": "phone"},
                "attributes": {"first_name": "name"},
            },
        ],
        "splitting": {"conflicts": {"first_name": "name"}, "max_cluster_size": 4},
    }
)
FINGERPRINT = "spec"
RUN = datetime(2025, 1, 1)
EVERY_SHARE = 1.0  # work on the change however much of the tiny world it touches
EMAILS = ["a@x.io", "b@x.io", "c@x.io", None]
PHONES = ["2125550101", "2125550102", "2125550103", None]
NAMES = ["Ann", "Anne", "Bob", None]
EXTRACT_SCHEMA = {
    "id": pl.String,
    "email": pl.String,
    "phone": pl.String,
    "name": pl.String,
    "at": pl.String,
    "_batch": pl.String,
    "_row": pl.Int64,
}

row = st.tuples(
    st.sampled_from("KLMNOPQ"),
    st.sampled_from(EMAILS),
    st.sampled_from(PHONES),
    st.sampled_from(NAMES),
    st.integers(1, 5),
)
operation = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(["b1", "b2", "b3"]), st.lists(row, max_size=6)),
    st.tuples(st.just("remove"), st.sampled_from(["b1", "b2", "b3"]), st.just([])),
)

KEPT_APART = [  # two people, each known by one email and one phone
    ("K", "a@x.io", "2125550101", "Ann", 1),
    ("L", "b@x.io", "2125550102", "Ann", 2),
]
BRIDGE = [("M", "a@x.io", "2125550102", "Ann", 3)]  # holds one's email and the other's phone
NAMESAKE = [("L", "b@x.io", "2125550102", "Bob", 2)]  # the second person is Bob after all
SHARED_MAILBOX = [  # Ann and Bob write from one mailbox: the split keeps them apart
    ("K", "a@x.io", None, "Ann", 1),
    ("L", "a@x.io", None, "Bob", 2),
]


def records_of(batches: dict[str, list[tuple]]) -> pl.DataFrame:
    rows = [
        {"id": key, "email": email, "phone": phone, "name": name, "at": f"2024-01-{day:02d}"}
        | {"_batch": batch, "_row": index + 1}
        for batch, batch_rows in sorted(batches.items())
        for index, (key, email, phone, name, day) in enumerate(batch_rows)
    ]
    records, _ = build_records(SPEC, {"crm": pl.DataFrame(rows, schema=EXTRACT_SCHEMA)})
    return records.select(
        *dict.fromkeys([*cluster_record_columns(SPEC.splitting), "first_name", "email", "phone"])
    )


class Chain:
    """Runs one after another, each building on the last (``incremental``) or not."""

    def __init__(self, incremental: bool) -> None:
        self.incremental = incremental
        self.links: PreviousLinks | None = None
        self.clusters: PreviousClusters | None = None
        self.membership = self.registry = None
        self.relinked = self.resolved_again = None

    def run(self, records: pl.DataFrame, now: datetime):
        identifiers = build_identifiers(SPEC, records)
        if self.incremental:
            update = update_edges(  # handed a scan of the identifiers, as the step does
                records,
                identifiers.lazy(),
                SPEC.corroboration,
                FINGERPRINT,
                self.links,
                EVERY_SHARE,
            )
            # spliced edges come as a plan over the last run's, as the step streams them
            edges = update.links.edges.lazy().collect()
            links, self.relinked = update.links._replace(edges=edges), update.relinked_groups
            self.links = PreviousLinks(update.inputs, edges.lazy(), links.guarded_groups)
        else:
            links = build_edges(records, identifiers, SPEC.corroboration)
        clustering = resolve_clusters(
            records,
            links.edges,
            SPEC.splitting,
            None if self.membership is None else self.membership.lazy(),  # as the step does
            self.registry,
            now,
            FINGERPRINT,
            self.clusters if self.incremental else None,
            EVERY_SHARE,
        )
        # a spliced lineage comes as a plan over the kept rows, as the step streams it
        clustering = clustering._replace(lineage=clustering.lineage.lazy().collect())
        self.membership, self.registry = clustering.membership, clustering.registry
        self.resolved_again = clustering.resolved_again
        self.clusters = PreviousClusters(clustering.inputs, clustering.clusters, clustering.cut)
        return links, clustering


def rows(frame: pl.DataFrame, *columns: str) -> list[tuple]:
    return sorted(frame.select(columns or frame.columns).rows(), key=repr)


def partition(membership: pl.DataFrame) -> set[frozenset[str]]:
    parts = membership.group_by("resolved_id").agg("entity_key")
    return {frozenset(keys) for keys in parts.get_column("entity_key").to_list()}


EDGE = ("entity_key_a", "entity_key_b", "rule", "identifier_type", "value")
CUT = (*EDGE, "guard")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=8))
@example(  # a bridge merges two people, is retracted: they split again
    [("put", "b1", KEPT_APART), ("put", "b2", BRIDGE), ("remove", "b2", [])]
)
@example(  # the merged cluster turns out to name two people: the split cuts it apart
    [("put", "b1", KEPT_APART), ("put", "b2", BRIDGE), ("put", "b3", NAMESAKE)]
)
@example(  # one more of Ann's records joins the mailbox: the cut is made again
    [("put", "b1", SHARED_MAILBOX), ("put", "b2", BRIDGE)]
)
def test_incremental_runs_equal_running_everything_again(operations):
    batches: dict[str, list[tuple]] = {}
    incremental, full = Chain(incremental=True), Chain(incremental=False)
    for step, (kind, batch, batch_rows) in enumerate(operations):
        if kind == "put":
            batches[batch] = batch_rows  # arrival or replacement
        else:
            batches.pop(batch, None)  # retraction
        records = records_of(batches)
        now = datetime(2025, 1, 1 + step)
        built_on = (
            incremental.clusters is not None and not incremental.clusters.inputs[0].is_empty()
        )
        links, clustering = incremental.run(records, now)
        if built_on:  # the last run's inputs were kept: this one worked on the change
            assert incremental.relinked is not None
            assert incremental.resolved_again is not None
        scratch_links, scratch = full.run(records, now)
        assert rows(links.edges, *EDGE) == rows(scratch_links.edges, *EDGE)
        assert rows(links.guarded_groups) == rows(scratch_links.guarded_groups)
        assert partition(clustering.membership) == partition(scratch.membership)
        assert clustering.membership.equals(scratch.membership)  # same ids, records' order
        assert rows(clustering.clusters) == rows(scratch.clusters)
        assert rows(clustering.cut, *CUT) == rows(scratch.cut, *CUT)
        assert rows(clustering.registry) == rows(scratch.registry)
        assert rows(clustering.lineage) == rows(scratch.lineage)
        assert rows(clustering.inputs.records) == rows(scratch.inputs.records)


def test_a_record_joining_elsewhere_moves_a_cut_that_weighs_links_by_the_record_count():
    # Ann (K) and Bob (L) hang together through M: one link of a value two records hold,
    # or two links of values three records hold. With 4 records the pair is the cheaper
    # cut, with 5 the single link is: Z, linked to no one, moves the cut.
    names = {"K": "Ann", "M": None, "L": "Bob", "X": None, "Z": None}
    links = [("K", "M", "email", "v1"), ("M", "L", "email", "v2"), ("M", "X", "email", "v2")]
    links += [("M", "L", "phone", "v3"), ("M", "X", "phone", "v3")]
    edges = pl.DataFrame(
        {
            "entity_key_a": [f"crm:{a}" for a, *_ in links],
            "entity_key_b": [f"crm:{b}" for _, b, *_ in links],
            "rule": [f"{kind}_exact" for _, _, kind, _ in links],
            "identifier_type": [kind for _, _, kind, _ in links],
            "value": [value for *_, value in links],
            "match_probability": [None] * len(links),
            "match_weight": [None] * len(links),
        },
        schema_overrides={"match_probability": pl.Float64, "match_weight": pl.Float64},
    )

    def records(keys: str) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "entity_key": [f"crm:{key}" for key in keys],
                "source": "crm",
                "record_key": list(keys),
                "trust": 1,
                "updated_at": [datetime(2024, 1, day + 1) for day in range(len(keys))],
                "first_name": [names[key] for key in keys],
            }
        )

    def run(keys: str, previous: PreviousClusters | None, published=None, registry=None):
        return resolve_clusters(
            records(keys),
            edges,
            SPEC.splitting,
            published,
            registry,
            RUN,
            FINGERPRINT,
            previous,
            EVERY_SHARE,
        )

    first = run("KMLX", None)
    assert rows(first.cut, "entity_key_b", "value") == [("crm:L", "v2"), ("crm:L", "v3")]
    kept = PreviousClusters(first.inputs, first.clusters, first.cut)
    second = run("KMLXZ", kept, first.membership, first.registry)
    assert second.resolved_again == 5  # Z, and the component the split cut
    assert rows(second.cut, "entity_key_b", "value") == [("crm:M", "v1")]


MAILBOX_SHARER = [("P", "a@x.io", None, "Bob", 3)]  # shares Ann's email: the split cuts
LONER = [("Q", "d@x.io", "2125550103", "Dee", 5)]


def test_a_published_membership_out_of_order_hands_down_the_same_ids():
    # the untouched records' ids are put in place when the published rows come in their
    # order, and joined when they do not: both give the same membership
    first = Chain(incremental=True)
    first.run(records_of({"b1": KEPT_APART + MAILBOX_SHARER + LONER}), RUN)
    shuffled = Chain(incremental=True)
    shuffled.links, shuffled.clusters = first.links, first.clusters
    shuffled.registry = first.registry
    shuffled.membership = first.membership.reverse()
    second = records_of(
        {"b1": KEPT_APART + MAILBOX_SHARER + LONER, "b2": [("N", "c@x.io", None, "Cy", 4)]}
    )
    _, in_order = first.run(second, datetime(2025, 1, 2))
    _, out_of_order = shuffled.run(second, datetime(2025, 1, 2))
    # the new record and the cut component (the record count changed); L and Q keep theirs
    assert in_order.resolved_again == out_of_order.resolved_again < second.height
    assert out_of_order.membership.equals(in_order.membership)
    assert rows(out_of_order.lineage) == rows(in_order.lineage)


def test_cluster_inputs_kept_with_text_keys_are_not_compared_with(tmp_path):
    store = ArtifactStore(tmp_path)
    clustering = Chain(incremental=True).run(records_of({"b1": KEPT_APART}), RUN)[1]
    store.write("clusters", clustering.clusters)
    keep_cluster_inputs(store, clustering.inputs, clustering.cut)
    assert kept_clusters(store) is not None
    text_keys = clustering.inputs.records.select(
        pl.lit("crm:K").alias("entity_key"), "record_hash", "spec_fingerprint"
    )
    store.write_state(CLUSTER_RECORDS_STATE, text_keys)  # the layout kept before
    assert kept_clusters(store) is None  # everything is resolved again
