"""The profile steps of a run after a new batch build only what the batch changed and
end with the tables a build of everything on the same inputs gives."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from customer360.core.forget import FORGOTTEN_STATE
from customer360.core.golden import build_golden_profiles
from customer360.core.incremental_traits import BASIS_STATE as TRAITS_BASIS_STATE
from customer360.core.spec import load_spec
from customer360.core.storage import ArtifactStore
from customer360.definitions import JOB_NAME, build_definitions
from customer360.defs.automation import FULL_RUN_TAGS
from customer360_tests.conftest import CRM_BATCH_HEADER, add_batch, run_job


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


TRAITS_STEPS = ["records", "quarantine", "identifiers", "traits"]


def observe(spec_path: Path, artifacts: Path, tags: dict | None = None, steps=TRAITS_STEPS) -> int:
    """Materialize the traits and what they are made of; the records observed again."""
    defs = build_definitions(load_spec(spec_path), artifacts)
    result = defs.resolve_job_def(JOB_NAME).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        asset_selection=[dg.AssetKey(step) for step in steps],
        tags=tags,
    )
    return figure(result, "traits", "records_observed_again") if "traits" in steps else 0


def assert_traits_equal_a_fresh_build(spec_path: Path, artifacts: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    observe(spec_path, fresh)
    mine, theirs = ArtifactStore(artifacts).read("traits"), ArtifactStore(fresh).read("traits")
    assert mine.schema == theirs.schema
    assert sorted(mine.rows()) == sorted(theirs.rows())


def test_a_new_batch_observes_only_its_records_and_equals_a_fresh_build(
    folder_world: Path, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    assert observe(folder_world, artifacts) == ALL_RECORDS
    assert observe(folder_world, artifacts) == 0  # nothing new
    add_batch(folder_world, "day2.csv", ["C004,amy@new.example,,Amy,2024-05-01"])
    assert observe(folder_world, artifacts) == 1
    assert_traits_equal_a_fresh_build(folder_world, artifacts, tmp_path)


def records_changed_without_traits(spec_path: Path, artifacts: Path) -> None:
    """A run that stopped after the records and identifiers, before the traits."""
    add_batch(spec_path, "day2.csv", ["C004,amy@new.example,,Amy,2024-05-01"])
    observe(spec_path, artifacts, steps=TRAITS_STEPS[:-1])
    add_batch(spec_path, "day3.csv", ["C005,bo@new.example,,Bo,2024-06-01"])


def change_a_batch_without_traits(spec_path: Path, artifacts: Path) -> None:
    day1 = spec_path.parent / "crm" / "day1.csv"
    day1.write_text(day1.read_text().replace("Jane", "Janet"))
    observe(spec_path, artifacts, steps=TRAITS_STEPS[:-1])


def repeat_a_key(spec_path: Path, artifacts: Path) -> None:
    add_batch(spec_path, "day2.csv", ["C001,john@new.example,,John,2024-06-01"])


def remove_a_batch(spec_path: Path, artifacts: Path) -> None:
    add_batch(spec_path, "day2.csv", ["C004,amy@new.example,,Amy,2024-05-01"])
    observe(spec_path, artifacts)
    (spec_path.parent / "crm" / "day2.csv").unlink()


def add_a_column(spec_path: Path, artifacts: Path) -> None:
    header = CRM_BATCH_HEADER[:-1] + ",extra\n"
    add_batch(spec_path, "day2.csv", ["C004,amy@new.example,,Amy,2024-05-01,x"], header)


def forget_john(spec_path: Path, artifacts: Path) -> None:
    ArtifactStore(artifacts).write_state(
        FORGOTTEN_STATE, pl.DataFrame({"entity_key": ["crm_customers:C001"]})
    )


def change_an_exclusion(spec_path: Path, artifacts: Path) -> None:
    spec = yaml.safe_load(spec_path.read_text())
    jane = {"value": "jane@example.org", "reason": "shared inbox"}
    spec["identifier_types"]["email"]["exclusions"].append(jane)
    spec_path.write_text(yaml.safe_dump(spec))


def lose_the_basis(spec_path: Path, artifacts: Path) -> None:
    (artifacts / "state" / f"{TRAITS_BASIS_STATE}.json").unlink()  # stopped half-way


ALL_RECORDS = 10  # the walkthrough's records: 3 CRM (in day1.csv), 4 orders, 3 tickets
CRM_RECORDS = 3
# each change, and the records whose observations are made again after it
CHANGES: dict[str, tuple[Callable[[Path, Path], None], int]] = {
    "records written, traits not": (records_changed_without_traits, 2),
    "a batch changed, traits not rebuilt": (change_a_batch_without_traits, CRM_RECORDS),
    "a new batch repeats a key": (repeat_a_key, 1),  # its row replaces the old one
    "a batch removed": (remove_a_batch, CRM_RECORDS),
    "a new batch adds a column": (add_a_column, CRM_RECORDS + 1),
    "a person forgotten": (forget_john, ALL_RECORDS - 1),
    "an exclusion added": (change_an_exclusion, ALL_RECORDS),
    "no basis kept": (lose_the_basis, ALL_RECORDS),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_what_may_change_old_records_observations_observes_them_again(
    folder_world: Path, tmp_path: Path, change: str
) -> None:
    artifacts = tmp_path / "artifacts"
    observe(folder_world, artifacts)
    alter, observed = CHANGES[change]
    alter(folder_world, artifacts)
    if change == "a person forgotten":
        forget_john(folder_world, tmp_path / "fresh")
    assert observe(folder_world, artifacts) == observed
    assert_traits_equal_a_fresh_build(folder_world, artifacts, tmp_path)


def test_a_full_run_observes_every_record(folder_world: Path, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    observe(folder_world, artifacts)
    assert observe(folder_world, artifacts, tags=FULL_RUN_TAGS) == ALL_RECORDS
