"""Checks on hand-written tables: each one fails when its guarantee is broken."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from customer360.core.spec import load_spec
from customer360.core.storage import ArtifactStore
from customer360.defs.checks import build_checks, key_check
from customer360.defs.output_checks import build_output_checks

WALKTHROUGH = Path(__file__).parents[1] / "fixtures" / "walkthrough" / "customer360.yaml"
RECORDS = pl.DataFrame({"entity_key": ["crm:1", "crm:2", "shop:3"]})


def named_check(store: ArtifactStore, name: str) -> dg.AssetCheckResult:
    spec = load_spec(WALKTHROUGH, check_files=False)
    (check,) = [
        c
        for c in build_checks(spec, store) + build_output_checks(spec, store)
        if c.check_specs and next(iter(c.check_specs)).name == name
    ]
    return check()


def every_record_resolved(store: ArtifactStore) -> dg.AssetCheckResult:
    return named_check(store, "every_record_resolved")


def figures_of(result: dg.AssetCheckResult) -> dict[str, int]:
    return {name: value.value for name, value in result.metadata.items()}


def test_every_record_resolved_passes_whatever_the_row_order(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("records", RECORDS)
    members = RECORDS.with_columns(resolved_id=pl.lit("crm:1"))
    for membership in (members, members.reverse()):
        store.write("membership", membership)
        result = every_record_resolved(store)
        assert result.passed, result.metadata


def test_every_record_resolved_fails_on_a_missing_or_unknown_record(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("records", RECORDS)
    members = pl.DataFrame(
        {"entity_key": ["crm:1", "crm:2", "web:9"], "resolved_id": ["crm:1", "crm:1", None]}
    )
    store.write("membership", members)
    result = every_record_resolved(store)
    assert not result.passed
    figures = {name: value.value for name, value in result.metadata.items()}
    assert figures == {
        "records_without_resolved_id": 1,
        "members_not_in_records": 1,
        "null_resolved_ids": 1,
    }


def ids(*values: str | None) -> pl.DataFrame:
    return pl.DataFrame({"resolved_id": list(values)}, schema={"resolved_id": pl.String})


def test_one_profile_per_cluster_passes_whatever_the_row_order(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("golden_profiles", ids("a", "b", "c"))
    store.write("clusters", ids("c", "a", "b"))
    result = named_check(store, "one_profile_per_cluster")
    assert result.passed
    assert figures_of(result) == {
        "profiles": 3,
        "clusters": 3,
        "duplicate_profiles": 0,
        "clusters_without_profile": 0,
    }


def test_one_profile_per_cluster_counts_repeated_profiles_and_clusters_without_one(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("golden_profiles", ids("a", "b", "b", "z"))
    store.write("clusters", ids("a", "b", "c", None))
    result = named_check(store, "one_profile_per_cluster")
    assert not result.passed
    assert figures_of(result) == {
        "profiles": 4,
        "clusters": 4,
        "duplicate_profiles": 1,
        "clusters_without_profile": 2,  # c, and the cluster without an id
    }


def history(*current: tuple[str, bool]) -> pl.DataFrame:
    return pl.DataFrame(
        {"resolved_id": [rid for rid, _ in current], "is_current": [now for _, now in current]}
    )


def test_one_current_version_counts_each_way_a_profile_and_its_history_disagree(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("golden_profiles", ids("a", "b", "c"))
    store.write("golden_profile_history", history(("a", False), ("a", True), ("b", True)))
    assert named_check(store, "one_current_version").passed is False  # c has none
    rows = (("a", True), ("a", True), ("b", True), ("c", True), ("x", True), ("x", True))
    store.write("golden_profile_history", history(("c", False), *rows))
    store.write("golden_profiles", ids("a", "b", "c", "d"))
    result = named_check(store, "one_current_version")
    assert figures_of(result) == {
        "customers_with_several_current_versions": 2,  # a and x
        "customers_without_current_version": 1,  # d
        "current_versions_of_unknown_customers": 2,  # both of x
    }
    store.write("golden_profile_history", history(("a", True), ("b", False), ("b", True)))
    store.write("golden_profiles", ids("a", "b"))
    assert named_check(store, "one_current_version").passed


def test_keys_unique_not_null_counts_nulls_and_repeated_keys(tmp_path):
    store = ArtifactStore(tmp_path)
    check = key_check(store, "memberships", ["resolved_id", "organization_id"])
    # the same values in other columns, (p1, o2) and (o2, p1), are two keys
    unique = pl.DataFrame(
        {
            "resolved_id": ["p1", "p1", "p2", "o2"],
            "organization_id": ["o1", "o2", "o1", "p1"],
        }
    )
    store.write("memberships", unique)
    assert check().passed
    without_person = pl.DataFrame({"resolved_id": [None], "organization_id": ["o1"]})
    store.write("memberships", pl.concat([unique, unique.slice(1, 1), without_person]))
    result = check()
    figures = {name: value.value for name, value in result.metadata.items()}
    assert figures == {"rows_with_null_key": 1, "duplicate_keys": 1}
    assert not result.passed


def identifiers_schema(store: ArtifactStore, instance: dg.DagsterInstance) -> dg.AssetCheckResult:
    (check,) = [
        c
        for c in build_checks(load_spec(WALKTHROUGH, check_files=False), store)
        if c.check_specs and next(iter(c.check_specs)).name == "identifiers_schema"
    ]
    return check(dg.build_asset_check_context(instance=instance))


BAD_IDENTIFIERS = pl.DataFrame(
    {
        "entity_key": ["crm:1"],
        "identifier_type": ["email"],
        "value_raw": ["a@b.com"],
        "value": [None],  # linkable without a value: the schema fails
        "status": ["linkable"],
        "reason": [None],
        "group_size": [1],
    },
    schema_overrides={"value": pl.String, "reason": pl.String, "group_size": pl.UInt32},
)


def test_identifiers_schema_validates_a_table_no_run_of_its_own_wrote(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("identifiers", BAD_IDENTIFIERS)
    instance = dg.DagsterInstance.ephemeral()
    assert not identifiers_schema(store, instance).passed
    # written by another run (here: one reported outside any run): validated all the same
    instance.report_runless_asset_event(dg.AssetMaterialization("identifiers"))
    assert not identifiers_schema(store, instance).passed
    store.write("identifiers", BAD_IDENTIFIERS.with_columns(value=pl.lit("a@b.com")))
    assert identifiers_schema(store, instance).passed


def test_identifiers_schema_trusts_the_type_check_of_its_own_run(walkthrough_run):
    (evaluation,) = [
        c
        for c in walkthrough_run.result.get_asset_check_evaluations()
        if c.check_name == "identifiers_schema"
    ]
    assert evaluation.passed
    assert evaluation.metadata["validated"].value == "as the asset's Dagster type, in this run"
