"""What starts runs without a person: a sensor that turns new, changed or removed batch
files into a run, and a nightly full reconciliation (off until someone turns it on)."""

import hashlib
import json

import dagster as dg

from customer360.core.batches import compare, fingerprint_batches
from customer360.core.spec import Spec

SENSOR_INTERVAL_SECONDS = 30
# A run with this tag recomputes everything: no kept batch, no carried-over winner.
MODE_TAG = "customer360/mode"
FULL_RUN_TAGS = {MODE_TAG: "full"}


def is_full_run(context: dg.AssetExecutionContext) -> bool:
    """Whether the run was asked to ignore what earlier runs kept (the nightly schedule,
    or a launch from the UI with the tag ``customer360/mode: full``)."""
    return context.run.tags.get(MODE_TAG) == "full"


def build_batch_sensor(spec: Spec, job_name: str) -> dg.SensorDefinition:
    folders = sorted({str(spec.resolve(source.path)) for source in spec.sources})

    @dg.sensor(
        job_name=job_name,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        description=(
            "Watches the sources' files and folders for new, changed (by content hash) or "
            "removed batch files and requests a run that brings every asset up to date. "
            "The same content dropped again starts nothing. Watching: " + ", ".join(folders)
        ),
    )
    def batch_files_sensor(context: dg.SensorEvaluationContext):
        previous = json.loads(context.cursor) if context.cursor else {}
        current = fingerprint_batches(spec, previous)
        changes = compare(previous, current)
        if current != previous:
            context.update_cursor(json.dumps(current, sort_keys=True))
        if not changes:
            return dg.SkipReason("no new, changed or removed batch files")
        transition = json.dumps([previous, current], sort_keys=True).encode()
        return dg.RunRequest(
            run_key=hashlib.blake2b(transition, digest_size=16).hexdigest(),
            tags={
                "customer360/trigger": "batch_files_sensor",
                "customer360/changes": changes.describe(),
            },
        )

    return batch_files_sensor


def build_reconciliation_schedule(job_name: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="nightly_full_reconciliation",
        job_name=job_name,
        cron_schedule="0 3 * * *",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Recompute everything from all batch files every night at 03:00, "
        "ignoring every batch and winner kept by earlier runs (off by default: the sensor "
        "already reacts to every change).",
        tags={"customer360/trigger": "nightly_full_reconciliation", **FULL_RUN_TAGS},
    )
