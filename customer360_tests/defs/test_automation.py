"""The batch-file sensor, evaluated the way the daemon does, on a test instance."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from customer360.core.batches import content_hash
from customer360.core.spec import load_spec
from customer360.core.storage import ArtifactStore
from customer360.definitions import build_definitions


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A persistent test instance: the sensor's run requests name dynamic partitions, which
    only an instance with a reference can look up."""
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def crm_folder(walkthrough_dir: Path, tmp_path: Path) -> tuple[dg.Definitions, Path]:
    """The walkthrough with its CRM source turned into a folder of batch files."""
    spec = walkthrough_dir / "customer360.yaml"
    batches = walkthrough_dir / "crm"
    batches.mkdir()
    (walkthrough_dir / "crm_customers.csv").rename(batches / "day1.csv")
    spec.write_text(spec.read_text().replace("path: crm_customers.csv", "path: crm"))
    return build_definitions(load_spec(spec), tmp_path / "artifacts"), batches


def look(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    """One tick of the batch-file sensor, as the daemon evaluates it."""
    context = dg.build_sensor_context(
        instance=instance, instance_ref=instance.get_ref(), cursor=cursor, definitions=defs
    )
    return defs.resolve_sensor_def("batch_files_sensor").evaluate_tick(context)


def apply(result, instance: dg.DagsterInstance) -> None:
    """What the daemon does with a tick's partition requests (a test tick does not)."""
    for request in result.dynamic_partitions_requests:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)


def requested(result) -> list[tuple[str, str | None, str]]:
    return [
        (r.job_name, r.partition_key, r.tags["customer360/changes"]) for r in result.run_requests
    ]


def test_new_file_adds_a_partition_same_file_again_does_nothing_changed_content_runs(
    crm_folder, instance: dg.DagsterInstance
) -> None:
    defs, batches = crm_folder
    first = look(defs, instance, None)  # first look: every batch of every source is new
    apply(first, instance)
    assert requested(first) == [
        ("ingest_crm_customers", "day1.csv", "1 new"),
        ("ingest_ecom_orders", "ecom_orders.csv", "1 new"),
        ("ingest_support_tickets", "support_tickets.csv", "1 new"),
        ("resolve_customers", None, "3 new"),
    ]
    assert instance.get_dynamic_partitions("crm_customers_batches") == ["day1.csv"]

    assert look(defs, instance, first.cursor).run_requests == []

    day2 = batches / "day2.csv"
    day2.write_text((batches / "day1.csv").read_text().replace("C00", "D00"))
    new_file = look(defs, instance, first.cursor)
    apply(new_file, instance)
    assert requested(new_file) == [
        ("ingest_crm_customers", "day2.csv", "1 new"),
        ("resolve_customers", None, "1 new"),
    ]
    assert new_file.run_requests[0].tags["customer360/content_hash"] == content_hash(day2)
    assert instance.get_dynamic_partitions("crm_customers_batches") == ["day1.csv", "day2.csv"]

    # the same content written again (new modification time) starts nothing
    day2.write_text(day2.read_text())
    os.utime(day2, ns=(day2.stat().st_atime_ns, day2.stat().st_mtime_ns + 10**9))
    same = look(defs, instance, new_file.cursor)
    assert same.run_requests == [] and same.dynamic_partitions_requests == []

    day2.write_text(day2.read_text().replace("Bob", "Robert"))
    changed = look(defs, instance, same.cursor)
    assert requested(changed) == [
        ("ingest_crm_customers", "day2.csv", "1 changed"),
        ("resolve_customers", None, "1 changed"),
    ]
    assert changed.run_requests[0].run_key != new_file.run_requests[0].run_key


def test_a_removed_file_deletes_its_partition_and_runs_and_its_return_runs_again(
    crm_folder, instance: dg.DagsterInstance
) -> None:
    defs, batches = crm_folder
    day2 = batches / "day2.csv"
    day2.write_text((batches / "day1.csv").read_text().replace("C00", "D00"))
    before = look(defs, instance, None)
    apply(before, instance)

    day2.unlink()
    removed = look(defs, instance, before.cursor)
    apply(removed, instance)
    assert requested(removed) == [("resolve_customers", None, "1 removed")]
    assert removed.dynamic_partitions_requests == [
        dg.DeleteDynamicPartitionsRequest("crm_customers_batches", ["day2.csv"])
    ]
    assert instance.get_dynamic_partitions("crm_customers_batches") == ["day1.csv"]

    # the file back with content seen before is a new arrival again, and runs
    day2.write_text((batches / "day1.csv").read_text().replace("C00", "D00"))
    back = look(defs, instance, removed.cursor)
    assert requested(back) == [
        ("ingest_crm_customers", "day2.csv", "1 new"),
        ("resolve_customers", None, "1 new"),
    ]
    assert {r.run_key for r in back.run_requests}.isdisjoint(r.run_key for r in before.run_requests)


def test_a_batch_name_that_cannot_be_a_partition_key_gets_no_partition_but_a_resolution(
    crm_folder, instance: dg.DagsterInstance
) -> None:
    defs, batches = crm_folder
    first = look(defs, instance, None)
    apply(first, instance)

    (batches / "day...2.csv").write_text((batches / "day1.csv").read_text())
    unkeyable = look(defs, instance, first.cursor)
    apply(unkeyable, instance)
    # the main run reads the folder and rejects the batch, naming the file and the fix
    assert requested(unkeyable) == [("resolve_customers", None, "1 new")]
    assert unkeyable.dynamic_partitions_requests == []
    assert instance.get_dynamic_partitions("crm_customers_batches") == ["day1.csv"]

    (batches / "day...2.csv").rename(batches / "day2.csv")
    renamed = look(defs, instance, unkeyable.cursor)
    assert requested(renamed) == [
        ("ingest_crm_customers", "day2.csv", "1 new"),
        ("resolve_customers", None, "1 new, 1 removed"),
    ]


def test_a_cursor_of_the_older_shape_counts_as_none_and_every_batch_is_ingested_again(
    crm_folder, instance: dg.DagsterInstance
) -> None:
    defs, batches = crm_folder
    day1 = batches / "day1.csv"
    older = json.dumps({str(day1): [day1.stat().st_size, day1.stat().st_mtime_ns, "x"]})
    result = look(defs, instance, older)
    assert [job for job, _, _ in requested(result)] == [
        "ingest_crm_customers",
        "ingest_ecom_orders",
        "ingest_support_tickets",
        "resolve_customers",
    ]
    assert set(json.loads(result.cursor)) == {"crm_customers", "ecom_orders", "support_tickets"}


def test_the_requested_runs_ingest_each_batch_and_a_removed_batch_leaves_the_records(
    crm_folder, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    defs, batches = crm_folder
    (batches / "day2.csv").write_text((batches / "day1.csv").read_text().replace("C00", "D00"))
    (batches / "broken.csv").write_text('customer_id,email\n"C9,never closed\n')

    def tick(cursor: str | None):
        result = look(defs, instance, cursor)
        apply(result, instance)
        for request in result.run_requests:
            run = defs.resolve_job_def(request.job_name).execute_in_process(
                instance=instance, partition_key=request.partition_key, tags=request.tags
            )
            assert run.success
        return result.cursor

    cursor = tick(None)
    for name, rows, rejected in (("day1.csv", 3, 0), ("day2.csv", 3, 0), ("broken.csv", 1, 1)):
        batch = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("crm_customers"), asset_partitions=[name]),
            limit=1,
        ).records[0]
        figures = {k: v.value for k, v in batch.asset_materialization.metadata.items()}
        assert figures["content_hash"] == content_hash(batches / name)
        assert (figures["rows_read"], figures["rows_rejected"]) == (rows, rejected)
    store = ArtifactStore(tmp_path / "artifacts")
    keys = store.read("records").get_column("entity_key").to_list()
    assert {"crm_customers:C001", "crm_customers:D001"} <= set(keys)

    (batches / "day2.csv").unlink()
    tick(cursor)
    keys = store.read("records").get_column("entity_key").to_list()
    assert "crm_customers:C001" in keys and not any(k.startswith("crm_customers:D") for k in keys)
    assert set(store.read("crm_customers").get_column("_batch")) == {"day1.csv", "broken.csv"}


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
