"""``run_history``: one row per run of the project's jobs — mode (full; incremental when
it built on what earlier runs kept; ingest for a run that read one batch; preview),
trigger, start and end, seconds per step, rows in and out, and the error of a failed run.
Written by the `customer360` command after its runs and by run-status sensors for runs
started in the UI, by a sensor or by a schedule."""

import json
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore
from customer360.defs.automation import TRIGGER_TAG
from customer360.defs.partitions import INGEST_JOB_PREFIX

MODES = {"resolve_customers": "full", "preview_changes": "preview"}
HISTORY_TABLE = "run_history"
HISTORY_SCHEMA = {
    "run_id": pl.String,
    "job": pl.String,
    "mode": pl.String,
    "trigger": pl.String,
    "changes": pl.String,
    "status": pl.String,
    "started_at": pl.Datetime("us"),
    "ended_at": pl.Datetime("us"),
    "stage_seconds": pl.String,
    "rows_in": pl.Int64,
    "records": pl.Int64,
    "quarantined": pl.Int64,
    "error": pl.String,
}


def record_run(instance: dg.DagsterInstance, run_id: str, spec: Spec, store: ArtifactStore) -> None:
    """Append the run's row to run_history."""
    run = instance.get_run_by_id(run_id)
    starts: dict[str, float] = {}
    seconds: dict[str, float] = {}
    error = None
    reused = False
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "ASSET_MATERIALIZATION":
            reused = reused or _reused_kept_state(event.event_specific_data.materialization)
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            seconds[event.step_key] = round(
                entry.timestamp - starts.get(event.step_key, entry.timestamp), 3
            )
        if event.event_type_value in ("STEP_FAILURE", "RUN_FAILURE") and error is None:
            error = f"{event.step_key or 'run'}: {_failure_message(event)}"[:2000]
    stats = instance.get_run_stats(run_id)
    row = {
        "run_id": run_id,
        "job": run.job_name,
        "mode": "incremental" if reused else _mode(run, {source.name for source in spec.sources}),
        "trigger": run.tags.get(TRIGGER_TAG, run.tags.get("dagster/sensor_name", "manual")),
        "changes": run.tags.get("customer360/changes"),
        "status": "FAILED" if run.status == dg.DagsterRunStatus.FAILURE else run.status.value,
        "started_at": _moment(stats.start_time),
        "ended_at": _moment(stats.end_time),
        "stage_seconds": json.dumps(seconds, sort_keys=True),
        "rows_in": _rows(store, [source.name for source in spec.sources]),
        "records": _rows(store, ["records"]),
        "quarantined": _rows(store, ["quarantine"]),
        "error": error,
    }
    frame = pl.DataFrame([row], schema=HISTORY_SCHEMA)
    store.append(HISTORY_TABLE, frame)


def _mode(run: dg.DagsterRun, sources: set[str]) -> str:
    """What kind of run it was; a run that materialized only extract partitions is an
    ingestion, whether the sensor started its ``ingest_<source>`` job or a person
    materialized the partition from the asset graph."""
    selected = {key.to_user_string() for key in run.asset_selection or ()}
    if run.job_name.startswith(INGEST_JOB_PREFIX) or (selected and selected <= sources):
        return "ingest"  # batch files read into their partitions
    return MODES.get(run.job_name, "other")


def _moment(epoch_seconds: float | None) -> datetime | None:
    return (
        None
        if epoch_seconds is None
        else datetime.fromtimestamp(epoch_seconds, UTC).replace(tzinfo=None)
    )


def _rows(store: ArtifactStore, tables: list[str]) -> int | None:
    present = [table for table in tables if store.exists(table)]
    return sum(store.row_count(table) for table in present) if present else None


def build_run_history_sensors(spec: Spec, store: ArtifactStore) -> list[dg.SensorDefinition]:
    """Record runs that finish outside the `customer360` command (UI, sensor, schedule)."""

    def record(context: dg.RunStatusSensorContext) -> None:
        if context.dagster_run.tags.get("customer360/recorded_by") == "cli":
            return  # the command records its own runs
        record_run(context.instance, context.dagster_run.run_id, spec, store)

    finished = dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name="record_successful_runs",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Adds each successful run to run_history.",
    )(record)
    failed = dg.run_failure_sensor(
        name="record_failed_runs",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Adds each failed run, with its error, to run_history.",
    )(record)
    return [finished, failed]


def _failure_message(event: dg.DagsterEvent) -> str:
    """Dagster's summary of a failure, with the description of a deliberate ``Failure``
    (a failed gate says which and why). Other exceptions' texts are left out: they may
    quote the data."""
    error = getattr(event.event_specific_data, "error", None)
    if error is not None and error.cls_name == "Failure":
        return f"{event.message} {error.message.strip()}"
    return event.message or ""


def _reused_kept_state(materialization: dg.AssetMaterialization) -> bool:
    """Whether a step built on what earlier runs kept: batches read from the cache rather
    than their files, or survivorship winners carried over. A run that did is
    incremental; one that recomputed everything is full."""
    figures = {
        key: getattr(value, "value", value) for key, value in materialization.metadata.items()
    }
    from_files, batches = figures.get("batches_read_from_files"), figures.get("batches")
    return bool(figures.get("clusters_carried_over")) or (
        from_files is not None and batches is not None and from_files < batches
    )
