"""A run after a change scores against the truth file from the last run's cells, and
its figures equal those of a run from scratch on the same files."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import yaml

from customer360_tests.conftest import JobRun, run_job, sample_world


def updated_from_last_run(run: JobRun) -> bool:
    event = next(
        e
        for e in run.result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("resolution_metrics")
    )
    return event.materialization.metadata["pairwise_scores_updated_from_last_run"].value


def pairwise(run: JobRun) -> list[tuple]:
    metrics = run.table("resolution_metrics")
    return metrics.filter(pl.col("metric").str.starts_with("pairwise_")).rows()


def test_scores_after_moves_arrivals_and_removals_equal_a_run_from_scratch(
    tmp_path: Path,
) -> None:
    spec = sample_world(tmp_path, records=2_000, seed=3)
    # by the rules alone: the run from scratch would train a model on the changed data
    parsed = yaml.safe_load(spec.read_text())
    parsed.pop("matching")
    spec.write_text(yaml.safe_dump(parsed))
    first = run_job(spec, tmp_path / "incremental")
    assert not updated_from_last_run(first)  # nothing kept yet
    before = pairwise(first)  # read now: the next run replaces the table
    crm = spec.parent / "data_sources" / "crm" / "customers.csv"
    header, *rows = crm.read_text().splitlines()
    # the last 40 customers leave; 40 others come back under new keys, joining the
    # clusters of the records they copy
    arrivals = ["N" + row[1:] for row in rows[:40]]
    crm.write_text("\n".join([header, *rows[:-40], *arrivals]) + "\n")
    second = run_job(spec, tmp_path / "incremental")
    assert second.result.success
    assert updated_from_last_run(second)

    fresh = run_job(spec, tmp_path / "fresh")
    assert not updated_from_last_run(fresh)
    assert pairwise(second) == pairwise(fresh)
    assert pairwise(second) != before  # the change moved the figures
