"""Stable resolved ids across runs, lineage, and incremental = full recompute."""

from __future__ import annotations

from datetime import datetime

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer360.core.clusters import resolve_membership
from customer360.core.edges import build_edges
from customer360.core.golden import build_golden_profiles, update_golden_profiles
from customer360.core.identifiers import build_identifiers
from customer360.core.records import build_records
from customer360.core.spec import Splitting
from customer360.core.splitting import split_over_merged
from customer360.core.stable_ids import accumulate_lineage, cluster_lineage
from customer360.core.touched_clusters import KeptInputs, resolve_touched_traits
from customer360.core.traits import build_traits
from customer360.core.unchanged_batches import unchanged_batches

from .conftest import make_spec

RUN_1, RUN_2, RUN_3 = (datetime(2025, 1, day) for day in (1, 2, 3))
SPEC = make_spec(
    {
        "identifier_types": {"email": {"normalizer": "email"}},
        "sources": [
            {
                "name": "crm",
                "path": "crm",
                "format": "csv",
                "key": "id",
                "updated_at": "at",
                "trust": 1,
                "identifiers": {"email": "email"},
                "attributes": {"first_name": "name"},
            },
        ],
    }
)


def keys(*names: str) -> list[str]:
    return [f"crm:{name}" for name in names]


def resolve(links: list[tuple[str, str]], names: str, previous=None, registry=None, now=RUN_1):
    """Records named by single letters (canonical order = alphabetical) and their links."""
    records = pl.DataFrame({"entity_key": keys(*names), "source": "crm", "record_key": list(names)})
    edges = pl.DataFrame(
        {
            "entity_key_a": [f"crm:{a}" for a, _ in links],
            "entity_key_b": [f"crm:{b}" for _, b in links],
        },
        schema={"entity_key_a": pl.String, "entity_key_b": pl.String},
    )
    return resolve_membership(records, edges, previous, registry, now)


def ids(membership: pl.DataFrame) -> dict[str, str]:
    return {
        k.removeprefix("crm:"): v.removeprefix("crm:")
        for k, v in membership.select("entity_key", "resolved_id").iter_rows()
    }


def test_first_run_ids_are_first_records_and_all_are_registered():
    first = resolve([("A", "B"), ("C", "D")], "ABCDE")
    assert ids(first.membership) == {"A": "A", "B": "A", "C": "C", "D": "C", "E": "E"}
    assert sorted(first.registry.get_column("resolved_id")) == keys("A", "C", "E")


def test_chain_keeps_its_id_when_d_joins_it_through_c_and_f():
    chain = [("A", "B"), ("B", "C"), ("C", "E"), ("E", "F")]
    first = resolve(chain, "ABCEF")
    second = resolve(
        [*chain, ("C", "D"), ("D", "F")], "ABCDEF", first.membership, first.registry, RUN_2
    )
    assert set(ids(second.membership).values()) == {"A"}


def test_a_merge_keeps_the_id_of_the_oldest_cluster():
    first = resolve([], "BC")  # two clusters, B and C, issued in run 1
    second = resolve([], "ABC", first.membership, first.registry, RUN_2)  # A: new in run 2
    # A bridges everything; A comes first in canonical order but its cluster is youngest
    third = resolve([("A", "B"), ("A", "C")], "ABC", second.membership, second.registry, RUN_3)
    assert set(ids(third.membership).values()) == {"B"}
    lineage = cluster_lineage(second.membership, third.membership)
    assert dict(lineage.select("entity_key", "change_type").iter_rows()) == {
        "crm:A": "MERGED",
        "crm:B": "MERGED",
        "crm:C": "MERGED",
    }


def test_a_split_leaves_the_id_with_its_record_and_never_reuses_a_retired_id():
    first = resolve([("A", "B"), ("B", "C")], "ABC")
    # B is retracted: A and C fall apart; A holds the id record
    second = resolve([], "AC", first.membership, first.registry, RUN_2)
    assert ids(second.membership) == {"A": "A", "C": "C"}
    lineage = cluster_lineage(first.membership, second.membership)
    assert dict(lineage.select("entity_key", "change_type").iter_rows()) == {
        "crm:A": "SPLIT",
        "crm:B": "REMOVED",
        "crm:C": "SPLIT",
    }
    # C merges back into A, then splits off again: its old id C is retired, never reused
    third = resolve([("A", "C")], "AC", second.membership, second.registry, RUN_3)
    fourth = resolve([], "AC", third.membership, third.registry, RUN_3)
    assert ids(third.membership) == {"A": "A", "C": "A"}
    assert ids(fourth.membership) == {"A": "A", "C": "C#2"}


def test_a_cluster_whose_id_record_is_gone_keeps_its_id_through_its_oldest_member():
    first = resolve([("A", "B"), ("B", "C")], "ABC")
    second = resolve([("B", "C")], "BC", first.membership, first.registry, RUN_2)
    assert ids(second.membership) == {"B": "A", "C": "A"}


def test_lineage_names_new_moved_and_unchanged_records():
    first = resolve([("A", "B")], "ABCD")
    # B leaves A for D's cluster (its identifier changed); E is new
    second = resolve([("B", "D")], "ABCDE", first.membership, first.registry, RUN_2)
    changes = dict(
        cluster_lineage(first.membership, second.membership)
        .select("entity_key", "change_type")
        .iter_rows()
    )
    assert changes == {
        "crm:A": "SPLIT",
        "crm:B": "SPLIT",
        "crm:C": "UNCHANGED",
        "crm:D": "MERGED",
        "crm:E": "NEW",
    }
    third = resolve([("B", "D")], "ABCDE", second.membership, second.registry, RUN_3)
    assert set(cluster_lineage(second.membership, third.membership).get_column("change_type")) == {
        "UNCHANGED"
    }


def test_lineage_does_not_depend_on_the_order_of_the_previous_membership():
    first = resolve([("A", "B")], "ABCD")
    second = resolve([("B", "D")], "ABCD", first.membership, first.registry, RUN_2)
    side_by_side = cluster_lineage(first.membership, second.membership)
    joined = cluster_lineage(first.membership.reverse(), second.membership)
    assert side_by_side.equals(joined)
    assert set(side_by_side.get_column("change_type")) == {"SPLIT", "MERGED", "UNCHANGED"}


def test_accumulated_lineage_reads_a_scan_of_the_table_as_the_table():
    first = resolve([("A", "B")], "ABC")
    unchanged = cluster_lineage(first.membership, first.membership)
    earlier = accumulate_lineage(None, cluster_lineage(None, first.membership), "run-1", RUN_1)
    earlier = accumulate_lineage(earlier, unchanged, "run-2", RUN_2).collect()
    from_table = accumulate_lineage(earlier, unchanged, "run-3", RUN_3).collect()
    assert from_table.equals(
        accumulate_lineage(earlier.lazy(), unchanged, "run-3", RUN_3).collect()
    )
    # the first run's NEW rows stay, the second run's UNCHANGED ones go
    assert from_table.get_column("run_id").to_list() == ["run-1"] * 3 + ["run-3"] * 3


# --- incremental = full recompute, over random batch histories -------------------------

EMAILS = ["a@x.io", "b@x.io", "c@x.io", "d@x.io", None]
NAMES = ["Ann", "Bob", "Cy"]
row_strategy = st.tuples(
    st.sampled_from("KLMNOPQR"), st.sampled_from(EMAILS), st.sampled_from(NAMES), st.integers(1, 28)
)
batch_strategy = st.lists(row_strategy, min_size=1, max_size=5)
operation = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(["b1", "b2", "b3"]), batch_strategy),
    st.tuples(st.just("remove"), st.sampled_from(["b1", "b2", "b3"]), st.just([])),
)


def extract(batches: dict[str, list[tuple]]) -> pl.DataFrame:
    rows = [
        {
            "id": key,
            "email": email,
            "name": name,
            "at": f"2024-01-{day:02d}",
            "_batch": batch,
            "_row": index + 1,
        }
        for batch, batch_rows in sorted(batches.items())
        for index, (key, email, name, day) in enumerate(batch_rows)
    ]
    schema = {
        "id": pl.String,
        "email": pl.String,
        "name": pl.String,
        "at": pl.String,
        "_batch": pl.String,
        "_row": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)


# over-merges split too: people who share an email are cut apart, big clusters cut down
SPLITTING = Splitting(conflicts={"first_name": "name"}, max_cluster_size=3)


def run_once(batches, previous=None, registry=None, now=RUN_1, last_profiles=None):
    """One run; ``last_profiles`` (the last run's batches, membership, winners and golden
    profiles) make survivorship resolve only the clusters touched since, and the golden
    profiles build only theirs."""
    records, _ = build_records(SPEC, {"crm": extract(batches)})
    identifiers = build_identifiers(SPEC, records)
    edges = build_edges(records, identifiers).edges
    kept = split_over_merged(records, edges, SPLITTING).kept
    result = resolve_membership(records, kept, previous, registry, now)
    traits = build_traits(SPEC, records, identifiers)
    members = result.membership.select("entity_key", "resolved_id")
    if last_profiles is None:
        survivorship = resolve_touched_traits(SPEC, traits, records, members)
    else:
        last_batches, last_members, last_resolved, _ = last_profiles
        unchanged = unchanged_batches(basis(last_batches), basis(batches))
        inputs = KeptInputs(last_members, unchanged)
        survivorship = resolve_touched_traits(
            SPEC, traits, records, members, inputs, last_resolved.collect()
        )
    if survivorship.touched is None:
        golden = build_golden_profiles(SPEC, survivorship.resolved, records, members)
    else:
        golden = update_golden_profiles(
            SPEC, last_profiles[3], survivorship.resolved, records, members, survivorship.touched
        )
    return result, golden, survivorship


def basis(batches: dict[str, list[tuple]]) -> dict:
    """The records basis of the CRM source made of ``batches``: each batch's content hash."""
    content = {name: ["", "", str(hash(tuple(rows)))] for name, rows in batches.items()}
    return {"fingerprint": "", "sources": {"crm": {"batches": content, "columns": []}}}


def clustering(membership: pl.DataFrame, golden: pl.DataFrame) -> set:
    """The partition of records with each part's golden values — ids left out."""
    parts = membership.group_by("resolved_id").agg(pl.col("entity_key").sort())
    values = parts.join(
        golden.select("resolved_id", "email_primary", "first_name"), on="resolved_id"
    )
    return {
        (tuple(r["entity_key"]), r["email_primary"], r["first_name"])
        for r in values.iter_rows(named=True)
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=8))
def test_incremental_runs_equal_a_full_recompute(operations):
    batches: dict[str, list[tuple]] = {}
    previous = registry = last_profiles = None
    for step, (kind, batch, rows) in enumerate(operations):
        if kind == "put":
            batches[batch] = rows  # arrival or replacement
        else:
            batches.pop(batch, None)  # retraction
        if not batches:
            continue
        result, golden, survivorship = run_once(
            batches, previous, registry, datetime(2025, 1, 1 + step), last_profiles
        )
        previous, registry = result.membership, result.registry
        members = result.membership.select("entity_key", "resolved_id")
        last_profiles = (dict(batches), members, survivorship.resolved.collect().lazy(), golden)
        scratch, scratch_golden, scratch_survivorship = run_once(batches)
        assert clustering(result.membership, golden) == clustering(
            scratch.membership, scratch_golden
        )
        # the profiles built from this run's clusters from scratch, row for row
        records, _ = build_records(SPEC, {"crm": extract(batches)})
        traits = build_traits(SPEC, records, build_identifiers(SPEC, records))
        everything = resolve_touched_traits(SPEC, traits, records, members).resolved
        assert golden.equals(build_golden_profiles(SPEC, everything, records, members))
        assert winners(survivorship.resolved) == winners(scratch_survivorship.resolved)
        assert result.membership.get_column("resolved_id").n_unique() == golden.height


def winners(resolved: pl.LazyFrame) -> list[tuple]:
    """Each winning observation (record, attribute, value, conflict) — ids left out."""
    chosen = resolved.select("entity_key", "attribute", "value", "conflict").collect()
    return sorted(chosen.iter_rows())


def test_published_ids_missing_from_the_registry_are_registered_and_never_reissued():
    first = resolve([("A", "B")], "ABC")
    # a run stopped after publishing membership but before saving its registry
    second = resolve([], "ABC", first.membership, registry=None, now=RUN_2)
    assert sorted(second.registry.get_column("resolved_id")) == keys("A", "B", "C")
    assert ids(second.membership) == {"A": "A", "B": "B", "C": "C"}
    third = resolve([("A", "B")], "ABC", second.membership, second.registry, RUN_3)
    fourth = resolve([], "ABC", third.membership, third.registry, RUN_3)
    assert ids(fourth.membership)["B"] == "B#2"
