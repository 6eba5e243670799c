"""The Dagster project as a person sees it in the UI: assets, groups, metadata, checks."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from customer360.core.spec import load_spec
from customer360.definitions import JOB_NAME, build_definitions

EXPECTED_GROUPS = {
    "crm_customers": "sources",
    "ecom_orders": "sources",
    "support_tickets": "sources",
    "records": "resolution",
    "quarantine": "resolution",
    "identifiers": "resolution",
    "identity_edges": "resolution",
    "skipped_groups": "resolution",
    "membership": "resolution",
    "clusters": "resolution",
    "cluster_lineage": "resolution",
    "traits": "profiles",
    "resolved_traits": "profiles",
    "golden_profiles": "profiles",
    "golden_profile_history": "analytics",
    "customer_360": "analytics",
    "resolution_metrics": "monitoring",
    "dry_run_results": "preview",
    "dry_run_summary": "preview",
}
PREVIEW_ASSETS = {"dry_run_results", "dry_run_summary"}
SOURCES = {"crm_customers", "ecom_orders", "support_tickets"}
EXPECTED_CHECKS = {
    ("membership", "keys_unique_not_null"),
    ("membership", "every_record_resolved"),
    ("records", "rows_reconcile"),
    ("clusters", "largest_cluster_within_limit"),
    ("cluster_lineage", "moved_share_within_limit"),
    ("golden_profiles", "one_profile_per_cluster"),
    ("identifiers", "identifiers_schema"),
    ("golden_profiles", "keys_unique_not_null"),
    ("customer_360", "keys_unique_not_null"),
    ("customer_360", "fresh_against_inputs"),
    ("golden_profile_history", "one_current_version"),
}


@pytest.fixture
def asset_graph(walkthrough_dir: Path, tmp_path: Path) -> dg.Definitions:
    return build_definitions(load_spec(walkthrough_dir / "customer360.yaml"), tmp_path)


def test_one_asset_per_source_and_stage_in_its_group(asset_graph: dg.Definitions) -> None:
    graph = asset_graph.resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == EXPECTED_GROUPS


def test_every_asset_has_description_kinds_and_owner(asset_graph: dg.Definitions) -> None:
    for spec in asset_graph.resolve_all_asset_specs():
        name = spec.key.to_user_string()
        assert spec.description and len(spec.description) > 40, name
        assert spec.kinds, name
        assert spec.owners == ["team:customer-data"], name


def test_the_quality_checks_are_defined_and_the_size_check_blocks(
    asset_graph: dg.Definitions,
) -> None:
    graph = asset_graph.resolve_asset_graph()
    check_specs = {
        (key.asset_key.to_user_string(), key.name): graph.get_check_spec(key)
        for key in graph.asset_check_keys
    }
    assert set(check_specs) == EXPECTED_CHECKS
    assert check_specs[("clusters", "largest_cluster_within_limit")].blocking
    assert check_specs[("cluster_lineage", "moved_share_within_limit")].blocking


def test_the_main_job_selects_every_asset_but_the_extracts_and_the_dry_run(
    asset_graph: dg.Definitions,
) -> None:
    job = asset_graph.resolve_job_def(JOB_NAME)
    selected = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
    assert selected == set(EXPECTED_GROUPS) - PREVIEW_ASSETS - SOURCES


def test_each_source_is_partitioned_by_its_own_batches_and_ingested_by_its_own_job(
    asset_graph: dg.Definitions,
) -> None:
    graph = asset_graph.resolve_asset_graph()
    for source in SOURCES:
        partitions = graph.get(dg.AssetKey(source)).partitions_def
        assert isinstance(partitions, dg.DynamicPartitionsDefinition)
        assert partitions.name == f"{source}_batches"
        job = asset_graph.resolve_job_def(f"ingest_{source}")
        assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {source}
    downstream = graph.get(dg.AssetKey("records"))
    assert downstream.partitions_def is None
    assert {k.to_user_string() for k in downstream.parent_keys} == SOURCES


def test_materialized_assets_carry_row_counts_and_column_schemas(walkthrough_run) -> None:
    materializations = {
        event.asset_key.to_user_string(): event.step_materialization_data.materialization.metadata
        for event in walkthrough_run.result.get_asset_materialization_events()
    }
    assert set(materializations) == set(EXPECTED_GROUPS) - PREVIEW_ASSETS - SOURCES
    membership = materializations["membership"]
    assert membership["dagster/row_count"].value == 10
    columns = [c.name for c in membership["dagster/column_schema"].schema.columns]
    assert columns == ["entity_key", "source", "record_key", "resolved_id"]
    assert materializations["clusters"]["largest_cluster"].value == 4
