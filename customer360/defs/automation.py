"""What starts runs without a person: a sensor that turns new, changed or removed batch
files into partitions of the sources' extracts and the runs that ingest them and bring
everything downstream up to date, and a nightly full reconciliation (off until someone
turns it on).

One look at the folders can find many files. Each new or changed batch gets its own
ingestion run (a run carries one partition of one source's partition set), and all of
them share one run of the main job: it reads the union of the current batches, kept by
content, so it sees the new ones whether or not their ingestion ran first, and a
removed file's records leave with it. Ten files landing together cost ten small
ingestion runs and one resolution, not ten resolutions.
"""

import hashlib
import json
from dataclasses import replace

import dagster as dg

from customer360.core.batches import (
    Batch,
    BatchChanges,
    Fingerprints,
    compare,
    fingerprint_batches,
)
from customer360.core.readers import unkeyable_name_problem
from customer360.core.spec import Spec
from customer360.defs.partitions import ingest_job_name, partitions_name

SENSOR_INTERVAL_SECONDS = 30
# A run with this tag recomputes everything: no kept batch, no carried-over winner.
MODE_TAG = "customer360/mode"
FULL_RUN_TAGS = {MODE_TAG: "full"}
TRIGGER_TAG = "customer360/trigger"
CHANGES_TAG = "customer360/changes"
BATCH_TAG = "customer360/batch"
CONTENT_HASH_TAG = "customer360/content_hash"


def is_full_run(context: dg.AssetExecutionContext) -> bool:
    """Whether the run was asked to ignore what earlier runs kept (the nightly schedule,
    or a launch from the UI with the tag ``customer360/mode: full``)."""
    return context.run.tags.get(MODE_TAG) == "full"


def build_batch_sensor(spec: Spec, main_job: str, jobs: list) -> dg.SensorDefinition:
    """The batch-file sensor; ``jobs`` are the definitions it may start (the main job
    and every source's ingestion job)."""
    folders = sorted({str(spec.resolve(source.path)) for source in spec.sources})

    @dg.sensor(
        name="batch_files_sensor",
        jobs=jobs,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        description=(
            "Watches the sources' files and folders for new, changed (by content hash) or "
            "removed batch files. Adds a partition of the source's extract for each new "
            "file, deletes the partition of a removed one, starts an ingestion run per new "
            "or changed batch and one run of resolve_customers that brings every asset up "
            "to date. The same content dropped again starts nothing. Watching: "
            + ", ".join(folders)
        ),
    )
    def batch_files_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        previous = _read_cursor(context.cursor)
        current = fingerprint_batches(spec, previous)
        changes = compare(previous, current)
        cursor = json.dumps(current, sort_keys=True) if current != previous else None
        if not changes:
            return dg.SensorResult(
                skip_reason=dg.SkipReason("no new, changed or removed batch files"),
                cursor=cursor,
            )
        transition = json.dumps([previous, current], sort_keys=True).encode()
        run_key = hashlib.blake2b(transition, digest_size=16).hexdigest()
        keyed = _keyed(changes, context)
        return dg.SensorResult(
            run_requests=[
                *_ingestion_requests(keyed, current, run_key),
                dg.RunRequest(
                    job_name=main_job,
                    run_key=run_key,
                    tags={TRIGGER_TAG: "batch_files_sensor", CHANGES_TAG: changes.describe()},
                ),
            ],
            dynamic_partitions_requests=_partition_requests(keyed),
            cursor=cursor,
        )

    return batch_files_sensor


def _read_cursor(cursor: str | None) -> Fingerprints:
    """The fingerprints of the last look; a cursor of another shape (an older version's)
    counts as none, so every batch is ingested once more."""
    previous = json.loads(cursor) if cursor else {}
    return previous if all(isinstance(batches, dict) for batches in previous.values()) else {}


def _keyed(changes: BatchChanges, context: dg.SensorEvaluationContext) -> BatchChanges:
    """The changes to batches whose names can be partition keys. A name that cannot gets
    no partition and no ingestion run, and the main run rejects its batch with the same
    reason (see :func:`customer360.core.readers.unkeyable_name_problem`)."""

    def keyable(batches: list[Batch]) -> list[Batch]:
        return [batch for batch in batches if unkeyable_name_problem(batch[1]) is None]

    for source, name in changes.added + changes.changed:
        problem = unkeyable_name_problem(name)
        if problem:
            context.log.warning(f"source '{source}': batch not ingested: {problem}")
    return replace(
        changes,
        added=keyable(changes.added),
        changed=keyable(changes.changed),
        removed=keyable(changes.removed),
    )


def _ingestion_requests(
    changes: BatchChanges, current: Fingerprints, run_key: str
) -> list[dg.RunRequest]:
    """One run per new or changed batch, ingesting its partition."""
    arrivals = [(batch, "new") for batch in changes.added] + [
        (batch, "changed") for batch in changes.changed
    ]
    return [
        dg.RunRequest(
            job_name=ingest_job_name(source),
            partition_key=name,
            run_key=f"{run_key}:{source}:{name}",
            tags={
                TRIGGER_TAG: "batch_files_sensor",
                CHANGES_TAG: f"1 {change}",
                BATCH_TAG: f"{source}/{name}",
                CONTENT_HASH_TAG: current[source][name][2],
            },
        )
        for (source, name), change in arrivals
    ]


def _partition_requests(
    changes: BatchChanges,
) -> list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest]:
    """A partition for each new batch (and each changed one, should it be missing), none
    for a removed one."""
    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    for request, batches in (
        (dg.AddDynamicPartitionsRequest, changes.added + changes.changed),
        (dg.DeleteDynamicPartitionsRequest, changes.removed),
    ):
        by_source: dict[str, list[str]] = {}
        for source, name in batches:
            by_source.setdefault(source, []).append(name)
        requests += [
            request(partitions_def_name=partitions_name(source), partition_keys=names)
            for source, names in sorted(by_source.items())
        ]
    return requests


def build_reconciliation_schedule(job_name: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="nightly_full_reconciliation",
        job_name=job_name,
        cron_schedule="0 3 * * *",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Recompute everything from all batch files every night at 03:00, "
        "ignoring every batch and winner kept by earlier runs (off by default: the sensor "
        "already reacts to every change).",
        tags={TRIGGER_TAG: "nightly_full_reconciliation", **FULL_RUN_TAGS},
    )
