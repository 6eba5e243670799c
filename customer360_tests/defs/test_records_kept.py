"""The records stage maps only the batches that arrived since the last run, takes every
other row from the last run's tables, and ends exactly where a run from scratch ends —
rows, order and quarantine; anything else that changed maps the sources again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from customer360.core.forget import FORGOTTEN_STATE
from customer360.core.incremental_records import BASIS_STATE
from customer360.core.spec import load_spec
from customer360.core.storage import ArtifactStore
from customer360.definitions import JOB_NAME, build_definitions
from customer360.defs.automation import FULL_RUN_TAGS
from customer360_tests.conftest import CRM_BATCH_HEADER, add_batch

TABLES = ["records", "quarantine", "crm_customers", "ecom_orders", "support_tickets"]
ALL_ROWS = 10  # the walkthrough's rows: 3 CRM (in day1.csv), 4 orders, 3 tickets


def map_records(spec_path: Path, artifacts: Path, tags: dict | None = None) -> int:
    """Materialize records and quarantine only; the rows the run mapped."""
    defs = build_definitions(load_spec(spec_path), artifacts)
    result = defs.resolve_job_def(JOB_NAME).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        asset_selection=[dg.AssetKey("records"), dg.AssetKey("quarantine")],
        tags=tags,
    )
    (event,) = (
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "records"
    )
    return event.materialization.metadata["rows_mapped"].value


def assert_equal_to_a_fresh_run(spec_path: Path, artifacts: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    map_records(spec_path, fresh)
    mine, theirs = ArtifactStore(artifacts), ArtifactStore(fresh)
    for table in (table for table in TABLES if theirs.exists(table)):  # a source removed
        assert mine.read(table).equals(theirs.read(table)), table


def test_new_batches_map_only_their_rows_and_equal_a_fresh_run(
    folder_world: Path, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    assert map_records(folder_world, artifacts) == ALL_ROWS
    untouched = ArtifactStore(artifacts).path("ecom_orders").stat().st_mtime_ns
    assert map_records(folder_world, artifacts) == 0  # nothing new
    add_batch(folder_world, "day2.csv", ["C004,amy@new.example,,Amy,2024-05-01", "C005,,,,bad"])
    assert map_records(folder_world, artifacts) == 2
    assert_equal_to_a_fresh_run(folder_world, artifacts, tmp_path)
    assert ArtifactStore(artifacts).path("ecom_orders").stat().st_mtime_ns == untouched
    # earlier updates than the last run's rows: merged into their order, not appended
    add_batch(folder_world, "day0.csv", ["C000,old@new.example,,Olga,2023-12-31"])
    assert map_records(folder_world, artifacts) == 1
    records = ArtifactStore(artifacts).read("records")
    assert records.get_column("record_key").to_list()[:2] == ["C000", "C001"]
    assert_equal_to_a_fresh_run(folder_world, artifacts, tmp_path / "again")


def forget_john(spec_path: Path, artifacts: Path) -> None:
    ArtifactStore(artifacts).write_state(
        FORGOTTEN_STATE, pl.DataFrame({"entity_key": ["crm_customers:C001"]})
    )


def change_spec(spec_path: Path, artifacts: Path) -> None:
    spec_path.write_text(spec_path.read_text().replace("trust: 3", "trust: 4"))


def remove_a_source(spec_path: Path, artifacts: Path) -> None:
    text = spec_path.read_text()
    spec_path.write_text(text[: text.index("  - name: support_tickets")])


def lose_the_basis(spec_path: Path, artifacts: Path) -> None:
    (artifacts / "state" / f"{BASIS_STATE}.json").unlink()  # a run that stopped half-way


EVERY_SOURCE_AGAIN: dict[str, tuple[Callable[[Path, Path], None], int]] = {
    "spec changed": (change_spec, ALL_ROWS),
    "source removed": (remove_a_source, ALL_ROWS - 3),
    "person forgotten": (forget_john, ALL_ROWS - 1),
    "no basis kept": (lose_the_basis, ALL_ROWS),
}


@pytest.mark.parametrize("change", EVERY_SOURCE_AGAIN, ids=list(EVERY_SOURCE_AGAIN))
def test_what_changes_every_record_maps_every_source(
    folder_world: Path, tmp_path: Path, change: str
) -> None:
    artifacts = tmp_path / "artifacts"
    map_records(folder_world, artifacts)
    alter, rows = EVERY_SOURCE_AGAIN[change]
    alter(folder_world, artifacts)
    assert map_records(folder_world, artifacts) == rows
    if change == "person forgotten":
        forget_john(folder_world, tmp_path / "fresh")
    assert_equal_to_a_fresh_run(folder_world, artifacts, tmp_path)


def test_a_full_run_maps_every_source(folder_world: Path, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    map_records(folder_world, artifacts)
    assert map_records(folder_world, artifacts, tags=FULL_RUN_TAGS) == ALL_ROWS


def repeat_a_key(spec_path: Path, artifacts: Path) -> None:
    add_batch(spec_path, "day2.csv", ["C001,john@new.example,,John,2024-06-01"])


def modify_a_batch(spec_path: Path, artifacts: Path) -> None:
    day1 = spec_path.parent / "crm" / "day1.csv"
    day1.write_text(day1.read_text().replace("Jane", "Janet"))


def remove_a_batch(spec_path: Path, artifacts: Path) -> None:
    add_batch(spec_path, "day2.csv", ["C004,amy@new.example,,Amy,2024-05-01"])
    map_records(spec_path, artifacts)
    (spec_path.parent / "crm" / "day2.csv").unlink()


def add_a_column(spec_path: Path, artifacts: Path) -> None:
    add_batch(
        spec_path,
        "day2.csv",
        ["C004,amy@new.example,,Amy,2024-05-01,x"],
        CRM_BATCH_HEADER[:-1] + ",extra\n",
    )


CRM_AGAIN: dict[str, tuple[Callable[[Path, Path], None], int]] = {
    "a new batch repeats a key": (repeat_a_key, 4),
    "a batch modified": (modify_a_batch, 3),
    "a batch removed": (remove_a_batch, 3),
    "a new batch adds a column": (add_a_column, 4),
}


@pytest.mark.parametrize("change", CRM_AGAIN, ids=list(CRM_AGAIN))
def test_what_changes_a_source_s_old_rows_maps_that_source_whole(
    folder_world: Path, tmp_path: Path, change: str
) -> None:
    artifacts = tmp_path / "artifacts"
    map_records(folder_world, artifacts)
    alter, crm_rows = CRM_AGAIN[change]
    alter(folder_world, artifacts)
    assert map_records(folder_world, artifacts) == crm_rows  # CRM only, all its rows
    assert_equal_to_a_fresh_run(folder_world, artifacts, tmp_path)
