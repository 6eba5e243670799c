"""The identifiers asset normalizes only values no earlier run has, ends where a run from
scratch ends, and a full run trusts nothing kept."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from customer360.core.forget import forget, select_records
from customer360.core.normalized_values import STATE_FOLDER
from customer360.core.spec import load_spec
from customer360.core.storage import ArtifactStore
from customer360.definitions import JOB_NAME, build_definitions
from customer360.defs.automation import FULL_RUN_TAGS
from customer360_tests.conftest import add_batch, run_job


def values_normalized(result: dg.ExecuteInProcessResult) -> int:
    event = next(
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "identifiers"
    )
    return event.materialization.metadata["values_normalized"].value


def sorted_identifiers(artifacts: Path) -> pl.DataFrame:
    return pl.read_parquet(artifacts / "identifiers.parquet").sort("identifier_type", "entity_key")


def test_a_new_batch_normalizes_only_its_new_values_and_equals_a_fresh_run(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    spec, artifacts = walkthrough_dir / "customer360.yaml", tmp_path / "incremental"
    first = run_job(spec, artifacts)
    assert values_normalized(first.result) > 2
    assert values_normalized(run_job(spec, artifacts).result) == 0
    with (walkthrough_dir / "support_tickets.csv").open("a") as tickets:
        tickets.write("T004,zed@new.example,5559998888,2024-03-04\n")
    third = run_job(spec, artifacts)
    assert third.result.success
    assert values_normalized(third.result) == 2  # the new email and the new phone
    run_job(spec, tmp_path / "fresh")
    assert sorted_identifiers(artifacts).equals(sorted_identifiers(tmp_path / "fresh"))


def test_a_full_run_ignores_the_kept_values(walkthrough_dir: Path, tmp_path: Path) -> None:
    spec, artifacts = walkthrough_dir / "customer360.yaml", tmp_path / "artifacts"
    first = run_job(spec, artifacts)
    expected = sorted_identifiers(artifacts)
    for segment in (artifacts / "state" / STATE_FOLDER).glob("*.parquet"):  # kept but wrong
        pl.read_parquet(segment).with_columns(pl.lit("wrong").alias("value")).write_parquet(segment)
    defs = build_definitions(load_spec(spec), artifacts)
    result = defs.resolve_job_def(JOB_NAME).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), tags=FULL_RUN_TAGS
    )
    assert values_normalized(result) == values_normalized(first.result)
    assert sorted_identifiers(artifacts).equals(expected)
    run_job(spec, artifacts)  # and what it kept is right again
    assert sorted_identifiers(artifacts).equals(expected)


def test_forgetting_a_person_drops_the_kept_values(walkthrough_dir: Path, tmp_path: Path) -> None:
    spec_path, artifacts = walkthrough_dir / "customer360.yaml", tmp_path / "artifacts"
    run_job(spec_path, artifacts)
    folder = artifacts / "state" / STATE_FOLDER
    assert any(folder.glob("*.parquet"))
    spec, store = load_spec(spec_path), ArtifactStore(artifacts)
    selected = select_records(spec, store, identifier_type="email", value="john@acme.com")
    forget(spec, store, selected, "identifier")
    assert not folder.exists()  # raw values, the person's among them


def records_classified(result: dg.ExecuteInProcessResult) -> int:
    (event,) = (
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "identifiers"
    )
    return event.materialization.metadata["records_classified"].value


def test_a_run_classifies_only_the_records_it_mapped_and_equals_a_fresh_run(
    folder_world: Path, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    assert records_classified(run_job(folder_world, artifacts).result) == 10
    add_batch(folder_world, "day2.csv", ["C004,JOHN@acme.com,,John,2024-05-01"])
    second = run_job(folder_world, artifacts)
    assert second.result.success
    assert records_classified(second.result) == 1
    run_job(folder_world, tmp_path / "fresh")
    fresh = pl.read_parquet(tmp_path / "fresh" / "identifiers.parquet")
    assert pl.read_parquet(artifacts / "identifiers.parquet").equals(fresh)
    # a changed batch maps its source again, so its old records' rows are gone
    day1 = folder_world.parent / "crm" / "day1.csv"
    day1.write_text(day1.read_text().replace("Jane", "Janet"))
    assert records_classified(run_job(folder_world, artifacts).result) == 11
