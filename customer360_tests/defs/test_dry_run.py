"""The dry run: it changes nothing published, and the next real run does what it said."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
from polars.testing import assert_frame_equal

from customer360.cli import main
from customer360.core.spec import load_spec
from customer360.definitions import build_definitions
from customer360.defs.preview import PREVIEW_JOB
from customer360_tests.conftest import run_job, sample_world

JOHNS_RECORDS = [
    "crm_customers:C001",
    "ecom_orders:O001",
    "ecom_orders:O002",
    "support_tickets:T001",
]


def snapshot(folder: Path) -> dict[str, pl.DataFrame]:
    """Every Parquet file under the artifacts folder (published tables and state)."""
    return {str(p.relative_to(folder)): pl.read_parquet(p) for p in folder.rglob("*.parquet")}


def test_dry_run_changes_nothing_and_predicts_the_next_run(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    spec, artifacts = walkthrough_dir / "customer360.yaml", tmp_path / "artifacts"
    run_job(spec, artifacts)
    with (walkthrough_dir / "support_tickets.csv").open("a") as tickets:
        tickets.write("T004,alice@new.com,5550001111,2024-03-04\n")  # bridges two clusters
    before = snapshot(artifacts)

    defs = build_definitions(load_spec(spec), artifacts)
    preview = defs.resolve_job_def(PREVIEW_JOB).execute_in_process(
        instance=dg.DagsterInstance.ephemeral()
    )
    assert preview.success
    after = snapshot(artifacts)
    for name, table in before.items():
        assert_frame_equal(after[name], table)
    assert set(after) - set(before) == {"dry_run_results.parquet", "dry_run_summary.parquet"}

    summary = dict(pl.read_parquet(artifacts / "dry_run_summary.parquet").iter_rows())
    proposed = pl.read_parquet(artifacts / "dry_run_results.parquet")
    assert summary["new_entities"] == 1 and summary["merged_entities"] == 3
    assert summary["largest_proposed_cluster"] == 4

    real = run_job(spec, artifacts)
    lineage = real.table("cluster_lineage").filter(pl.col("run_id") == real.result.run_id)
    counts = dict(lineage.group_by("change_type").len().iter_rows())
    for change, count in counts.items():
        assert summary[f"{change.lower()}_entities"] == count
    membership = real.table("membership").select("entity_key", "resolved_id")
    predicted = proposed.select("entity_key", pl.col("proposed_resolved_id").alias("resolved_id"))
    assert_frame_equal(membership.sort("entity_key"), predicted.sort("entity_key"))


def test_a_dry_run_after_forgetting_does_not_bring_the_person_back(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    spec, artifacts = walkthrough_dir / "customer360.yaml", tmp_path / "artifacts"
    assert main(["run", "--spec", str(spec), "--artifacts", str(artifacts)]) == 0
    forget_john = ["--resolved-id", "crm_customers:C001"]
    assert main(["forget", "--spec", str(spec), "--artifacts", str(artifacts), *forget_john]) == 0

    defs = build_definitions(load_spec(spec), artifacts)
    preview = defs.resolve_job_def(PREVIEW_JOB).execute_in_process(
        instance=dg.DagsterInstance.ephemeral()
    )
    assert preview.success
    summary = dict(pl.read_parquet(artifacts / "dry_run_summary.parquet").iter_rows())
    proposed = pl.read_parquet(artifacts / "dry_run_results.parquet")
    assert summary["new_entities"] == 0
    assert not proposed.get_column("entity_key").is_in(JOHNS_RECORDS).any()


def test_with_matching_on_a_dry_run_after_a_run_proposes_no_change(tmp_path: Path) -> None:
    """Probabilistic matches hold customers together too: a preview that left them out
    would propose splitting every customer they join."""
    spec = sample_world(tmp_path, records=2_000, seed=3)
    run = run_job(spec, tmp_path / "artifacts")
    assert run.result.success and run.table("match_edges").height > 0

    defs = build_definitions(load_spec(spec), tmp_path / "artifacts")
    preview = defs.resolve_job_def(PREVIEW_JOB).execute_in_process(
        instance=dg.DagsterInstance.ephemeral()
    )
    assert preview.success
    summary = dict(pl.read_parquet(tmp_path / "artifacts" / "dry_run_summary.parquet").iter_rows())
    records = run.table("membership").height
    assert summary["unchanged_entities"] == records
    assert summary["edges_to_create"] == 0 and summary["edges_to_remove"] == 0
