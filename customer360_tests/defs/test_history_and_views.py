"""Customer outputs across runs, through the real assets: history versions, merges, and
the customer_360 view."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from customer360_tests.conftest import run_job


def test_history_versions_an_attribute_change_and_closes_a_merged_cluster(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    spec, artifacts = walkthrough_dir / "customer360.yaml", tmp_path / "artifacts"
    first = run_job(spec, artifacts)
    assert first.table("golden_profile_history").height == 5
    # the membership the history was updated with is kept as the table's file, not a copy
    kept = (artifacts / "state" / "history_membership.parquet").stat()
    assert kept.st_ino == (artifacts / "membership.parquet").stat().st_ino

    crm = walkthrough_dir / "crm_customers.csv"
    crm.write_text(crm.read_text().replace(",Jane,", ",Janet,"))
    with (walkthrough_dir / "support_tickets.csv").open("a") as tickets:
        # Alice's address with Bob's phone: her singleton cluster joins Bob's.
        tickets.write("T004,alice@new.com,5550001111,2024-03-04\n")
    second = run_job(spec, artifacts)

    assert second.result.success and all(second.checks().values())
    history = second.table("golden_profile_history")
    jane = history.filter(pl.col("resolved_id") == "crm_customers:C002").sort("version")
    assert jane.select("version", "first_name", "is_current", "closed_by").rows() == [
        (1, "Jane", False, "changed"),
        (2, "Janet", True, None),
    ]
    alice = history.filter(pl.col("resolved_id") == "ecom_orders:O004").row(0, named=True)
    assert alice["is_current"] is False
    assert alice["closed_by"] == "merged"
    assert alice["superseded_by"] == ["crm_customers:C003"]
    unchanged = history.filter(pl.col("resolved_id") == "crm_customers:C001")
    assert unchanged.height == 1
    latest_run = second.result.run_id
    lineage = second.table("cluster_lineage").filter(pl.col("run_id") == latest_run)
    changes = dict(lineage.select("entity_key", "change_type").iter_rows())
    assert changes["support_tickets:T004"] == "NEW"
    assert changes["ecom_orders:O004"] == "MERGED"
    assert changes["crm_customers:C003"] == "MERGED"
    assert changes["crm_customers:C002"] == "UNCHANGED"
    membership = dict(second.table("membership").select("entity_key", "resolved_id").iter_rows())
    assert membership["ecom_orders:O004"] == "crm_customers:C003"

    current = history.filter(pl.col("is_current"))
    assert current.get_column("resolved_id").is_unique().all()
    assert current.height == second.table("golden_profiles").height


def test_customer_360_counts_records_per_source_and_segments_customers(walkthrough_run) -> None:
    view = walkthrough_run.table("customer_360")
    john = view.filter(pl.col("resolved_id") == "crm_customers:C001").row(0, named=True)
    assert (john["crm_customers_records"], john["ecom_orders_records"]) == (1, 2)
    assert john["support_tickets_records"] == 1
    assert john["lifetime_value"] == 0.0  # the walkthrough configures no measure
    assert john["value_tier"] == "Bronze"
    # as_of defaults to the latest update (2024-03-03); John was last seen 2024-03-01
    assert john["days_since_last_activity"] == 2
    assert john["lifecycle_status"] == "Active"
    assert view.height == walkthrough_run.table("golden_profiles").height
