"""The batch-file sensor, evaluated the way the daemon does, on a test instance."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from customer360.core.spec import load_spec
from customer360.definitions import build_definitions


@pytest.fixture
def sensor_and_folder(walkthrough_dir: Path, tmp_path: Path):
    spec = walkthrough_dir / "customer360.yaml"
    # make the CRM source a folder of batch files
    batches = walkthrough_dir / "crm"
    batches.mkdir()
    (walkthrough_dir / "crm_customers.csv").rename(batches / "day1.csv")
    spec.write_text(spec.read_text().replace("path: crm_customers.csv", "path: crm"))
    defs = build_definitions(load_spec(spec), tmp_path / "artifacts")
    return defs.resolve_sensor_def("batch_files_sensor"), batches


def evaluate(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    result = sensor.evaluate_tick(context)
    return result.run_requests, result.cursor


def test_new_file_runs_same_file_again_does_nothing_changed_content_runs(
    sensor_and_folder,
) -> None:
    sensor, batches = sensor_and_folder
    instance = dg.DagsterInstance.ephemeral()

    requests, cursor = evaluate(sensor, instance, None)  # first look: everything is new
    assert len(requests) == 1
    assert requests[0].tags["customer360/changes"] == "3 new"

    requests, cursor = evaluate(sensor, instance, cursor)
    assert requests == []

    day2 = batches / "day2.csv"
    day2.write_text((batches / "day1.csv").read_text().replace("C00", "D00"))
    requests, cursor = evaluate(sensor, instance, cursor)
    assert [r.tags["customer360/changes"] for r in requests] == ["1 new"]

    # the same content written again (new modification time) starts nothing
    day2.write_text(day2.read_text())
    os.utime(day2, ns=(day2.stat().st_atime_ns, day2.stat().st_mtime_ns + 10**9))
    requests, cursor = evaluate(sensor, instance, cursor)
    assert requests == []

    day2.write_text(day2.read_text().replace("Bob", "Robert"))
    requests, cursor = evaluate(sensor, instance, cursor)
    assert [r.tags["customer360/changes"] for r in requests] == ["1 changed"]

    day2.unlink()
    requests, cursor = evaluate(sensor, instance, cursor)
    assert [r.tags["customer360/changes"] for r in requests] == ["1 removed"]

    # the file back with content seen before is a new arrival again, and runs
    day2.write_text((batches / "day1.csv").read_text().replace("C00", "D00"))
    requests, _ = evaluate(sensor, instance, cursor)
    assert [r.tags["customer360/changes"] for r in requests] == ["1 new"]


def test_the_sensor_runs_by_default_and_the_reconciliation_schedule_does_not(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    defs = build_definitions(load_spec(walkthrough_dir / "customer360.yaml"), tmp_path)
    sensor = defs.resolve_sensor_def("batch_files_sensor")
    schedule = defs.resolve_schedule_def("nightly_full_reconciliation")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_the_forget_job_forgets_and_its_success_requests_a_rebuild(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    from customer360_tests.conftest import run_job

    spec = walkthrough_dir / "customer360.yaml"
    run_job(spec, tmp_path / "artifacts")
    defs = build_definitions(load_spec(spec), tmp_path / "artifacts")
    instance = dg.DagsterInstance.ephemeral()
    config = {"ops": {"forget_person": {"config": {"resolved_id": "crm_customers:C002"}}}}
    result = defs.resolve_job_def("forget_customer").execute_in_process(
        run_config=config, instance=instance
    )
    assert result.success
    assert (tmp_path / "artifacts" / "forget_audit.parquet").is_file()
    sensor = defs.resolve_sensor_def("rebuild_after_forget")
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_success_event(),
    )
    request = sensor(context)
    assert request.tags["customer360/trigger"] == "rebuild_after_forget"
