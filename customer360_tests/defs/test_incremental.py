"""A run after a new batch resolves only the clusters it touched, and ends where a run
from scratch on the same files ends."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import polars as pl

from customer360.core.spec import load_spec
from customer360.definitions import JOB_NAME, build_definitions
from customer360.defs.automation import FULL_RUN_TAGS
from customer360_tests.conftest import run_job

# Columns that name ids or depend on when a run happened, not on the data.
RUN_DEPENDENT = ["resolved_id", "quality_score"]


def comparable(profiles: pl.DataFrame) -> list[tuple]:
    return sorted(profiles.drop(RUN_DEPENDENT).rows())


def figure(result: dg.ExecuteInProcessResult, asset: str, name: str) -> int:
    event = next(
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == asset
    )
    return event.materialization.metadata[name].value


def carried_over(run) -> int:
    return figure(run.result, "resolved_traits", "clusters_carried_over")


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


def test_a_full_run_ignores_kept_batches_and_winners_and_the_schedule_asks_for_one(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    spec, artifacts = walkthrough_dir / "customer360.yaml", tmp_path / "artifacts"
    run_job(spec, artifacts)
    defs = build_definitions(load_spec(spec), artifacts)
    schedule = defs.resolve_schedule_def("nightly_full_reconciliation")
    assert FULL_RUN_TAGS.items() <= schedule.tags.items()

    result = defs.resolve_job_def(JOB_NAME).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), tags=FULL_RUN_TAGS
    )
    assert figure(result, "resolved_traits", "clusters_carried_over") == 0
    assert figure(result, "membership", "records_resolved_again") == -1  # all of them
    assert figure(result, "identity_edges", "groups_linked_again") == -1
    assert figure(result, "records", "batches_read_from_files") == 3  # one per source
    again = run_job(spec, artifacts)  # and the next ordinary run builds on it again
    assert figure(again.result, "records", "batches_read_from_files") == 0
    assert carried_over(again) > 0


def test_a_new_record_links_and_resolves_only_its_components_and_equals_a_fresh_run(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    spec = walkthrough_dir / "customer360.yaml"
    first = run_job(spec, tmp_path / "incremental")
    assert figure(first.result, "membership", "records_resolved_again") == -1  # nothing kept
    with (walkthrough_dir / "support_tickets.csv").open("a") as tickets:
        tickets.write("T004,alice@new.com,5550001111,2024-03-04\n")  # bridges two clusters
    second = run_job(spec, tmp_path / "incremental")
    records = second.table("membership").height
    assert 0 < figure(second.result, "membership", "records_resolved_again") < records
    assert figure(second.result, "identity_edges", "groups_linked_again") > 0

    fresh = run_job(spec, tmp_path / "fresh")  # ids may be other, the rest is the same
    for table in ("membership", "identity_edges", "clusters"):
        ours, theirs = second.table(table), fresh.table(table)
        assert sorted(ours.drop("resolved_id", strict=False).rows()) == sorted(
            theirs.drop("resolved_id", strict=False).rows()
        )
