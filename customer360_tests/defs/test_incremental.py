"""A run after a new batch resolves only the clusters it touched, and ends where a run
from scratch on the same files ends."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl

from customer360_tests.conftest import run_job

# Columns that name ids or depend on when a run happened, not on the data.
RUN_DEPENDENT = ["resolved_id", "quality_score"]


def comparable(profiles: pl.DataFrame) -> list[tuple]:
    return sorted(profiles.drop(RUN_DEPENDENT).rows())


def carried_over(run) -> int:
    event = next(
        e
        for e in run.result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "resolved_traits"
    )
    return event.materialization.metadata["clusters_carried_over"].value


def test_a_second_run_carries_untouched_clusters_over_and_equals_a_fresh_run(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    spec = walkthrough_dir / "customer360.yaml"
    first = run_job(spec, tmp_path / "incremental")
    assert carried_over(first) == 0
    with (walkthrough_dir / "support_tickets.csv").open("a") as tickets:
        tickets.write("T004,alice@new.com,5550001111,2024-03-04\n")  # bridges two clusters
    second = run_job(spec, tmp_path / "incremental")
    assert second.result.success
    clusters = second.table("clusters").height
    assert 0 < carried_over(second) < clusters

    fresh = run_job(spec, tmp_path / "fresh")
    assert comparable(second.table("golden_profiles")) == comparable(fresh.table("golden_profiles"))


def test_without_kept_inputs_every_cluster_is_resolved_again(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    spec, artifacts = walkthrough_dir / "customer360.yaml", tmp_path / "artifacts"
    run_job(spec, artifacts)
    shutil.rmtree(artifacts / "state")
    assert carried_over(run_job(spec, artifacts)) == 0
