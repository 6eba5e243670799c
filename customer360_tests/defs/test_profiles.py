"""The profile steps of a run after a new batch build only what the batch changed and
end with the tables a build of everything on the same inputs gives."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import polars as pl

from customer360.core.golden import build_golden_profiles
from customer360.core.spec import load_spec
from customer360_tests.conftest import add_batch, run_job


def figure(result: dg.ExecuteInProcessResult, asset: str, name: str) -> int:
    event = next(
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == asset
    )
    return event.materialization.metadata[name].value


def golden_built_again(store) -> pl.DataFrame:
    spec = load_spec(store.root.parent / "walkthrough" / "customer360.yaml")
    return build_golden_profiles(
        spec, store.scan("resolved_traits"), store.scan("records"), store.scan("membership")
    )


def test_a_batch_rebuilds_only_its_customers_profiles_and_equals_building_all(
    folder_world: Path, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    first = run_job(folder_world, artifacts)
    profiles = first.table("golden_profiles").height
    assert figure(first.result, "golden_profiles", "customers_touched") == profiles
    add_batch(folder_world, "day2.csv", ["C004,amy@new.example,,Amy,2025-05-01"])
    second = run_job(folder_world, artifacts)
    assert second.result.success
    touched = figure(second.result, "golden_profiles", "customers_touched")
    assert 0 < touched < second.table("golden_profiles").height
    assert second.table("golden_profiles").equals(golden_built_again(second.store))


def test_profiles_that_missed_the_last_survivorship_are_all_built_again(
    folder_world: Path, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    run_job(folder_world, artifacts)
    before = artifacts.parent / "before"
    shutil.copytree(artifacts, before)
    add_batch(folder_world, "day2.csv", ["C004,amy@new.example,,Amy,2025-05-01"])
    run_job(folder_world, artifacts)
    # the golden profiles of the first run, as if the second had stopped before them
    shutil.copy(before / "golden_profiles.parquet", artifacts / "golden_profiles.parquet")
    shutil.copy(before / "state" / "golden_profiles_basis.json", artifacts / "state")
    add_batch(folder_world, "day3.csv", ["C005,bo@new.example,,Bo,2025-06-01"])
    third = run_job(folder_world, artifacts)
    profiles = third.table("golden_profiles")
    assert figure(third.result, "golden_profiles", "customers_touched") == profiles.height
    assert profiles.equals(golden_built_again(third.store))
