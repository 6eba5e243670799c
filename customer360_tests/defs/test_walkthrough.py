"""The README walkthrough, through the real assets, IO manager and checks."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from customer360_tests.conftest import JobRun, run_job

EXPECTED_RESOLVED_IDS = {
    "crm_customers:C001": "crm_customers:C001",
    "ecom_orders:O001": "crm_customers:C001",
    "ecom_orders:O002": "crm_customers:C001",
    "support_tickets:T001": "crm_customers:C001",
    "crm_customers:C002": "crm_customers:C002",
    "ecom_orders:O003": "crm_customers:C002",
    "crm_customers:C003": "crm_customers:C003",
    "support_tickets:T002": "crm_customers:C003",
    "ecom_orders:O004": "ecom_orders:O004",
    "support_tickets:T003": "support_tickets:T003",
}


def test_walkthrough_gives_exactly_the_expected_clusters(walkthrough_run: JobRun) -> None:
    assert walkthrough_run.result.success
    membership = walkthrough_run.table("membership")
    assert dict(membership.select("entity_key", "resolved_id").iter_rows()) == EXPECTED_RESOLVED_IDS


def test_johns_golden_email_and_first_name_come_from_the_crm(walkthrough_run: JobRun) -> None:
    john = (
        walkthrough_run.table("golden_profiles")
        .filter(pl.col("resolved_id") == "crm_customers:C001")
        .row(0, named=True)
    )
    assert john["email_primary"] == "john@acme.com"
    assert john["email_primary_source"] == "crm_customers"
    assert john["first_name"] == "John"
    assert john["first_name_source"] == "crm_customers"
    assert john["loyalty_id_primary"] == "LY100"
    assert john["record_count"] == 4
    assert john["source_systems"] == ["crm_customers", "ecom_orders", "support_tickets"]


def test_every_check_passes_and_every_table_is_queryable_in_duckdb(
    walkthrough_run: JobRun,
) -> None:
    checks = walkthrough_run.checks()
    assert checks and all(checks.values()), checks
    with duckdb.connect(str(walkthrough_run.store.database), read_only=True) as con:
        profiles = con.execute("select count(*) from golden_profiles").fetchone()[0]
        metric = con.execute(
            "select value from resolution_metrics where metric = 'largest_cluster'"
        ).fetchone()[0]
    assert profiles == 5
    assert metric == 4


def test_a_malformed_row_is_quarantined_while_the_run_goes_on(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    with (walkthrough_dir / "ecom_orders.csv").open("a") as orders:
        orders.write(",nokey@example.com,LY300,2024-03-01\n")
        orders.write("O005,late@example.com,LY400,not a date\n")
    run = run_job(walkthrough_dir / "customer360.yaml", tmp_path / "artifacts")
    assert run.result.success
    reasons = dict(run.table("quarantine").select("row_number", "reason").iter_rows())
    assert reasons[5].startswith("missing record key in column 'order_id'")
    assert "unparseable timestamp 'not a date'" in reasons[6]
    assert run.table("records").height == 10
    assert run.checks()["rows_reconcile"]


def test_an_over_merged_graph_never_reaches_golden_profiles(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    spec = walkthrough_dir / "customer360.yaml"
    spec.write_text(spec.read_text() + "quality:\n  max_cluster_size: 3\n")
    run = run_job(spec, tmp_path / "artifacts")
    assert run.checks()["largest_cluster_within_limit"] is False
    assert not run.store.exists("golden_profiles")
    # judged before publishing: the over-merged clusters were never written
    assert not run.store.exists("clusters")
    assert not run.store.exists("membership")
