"""Wires the spec into a Dagster project: assets, checks, jobs, sensors, the schedule and
the IO manager.

The definitions are built lazily, when Dagster loads the code location, from the spec
named by ``$CUSTOMER360_SPEC`` (default ``./customer360.yaml``). An invalid spec stops
loading with a message naming the file, the key and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from customer360.core.spec import Spec, load_spec
from customer360.core.storage import ARTIFACTS_ENV_VAR, ArtifactStore
from customer360.defs.analytics import build_analytics_assets
from customer360.defs.automation import build_batch_sensor, build_reconciliation_schedule
from customer360.defs.checks import build_checks
from customer360.defs.concurrency import writes_tags
from customer360.defs.forgetting import build_forget_job
from customer360.defs.io_manager import ParquetDuckDBIOManager, RunLock
from customer360.defs.matching import build_matching_assets
from customer360.defs.monitoring import build_accuracy_checks, build_monitoring_assets
from customer360.defs.output_checks import build_output_checks
from customer360.defs.preview import GROUP as PREVIEW_GROUP
from customer360.defs.preview import PREVIEW_JOB, build_preview_assets
from customer360.defs.profiles import build_profile_assets
from customer360.defs.resolution import build_resolution_assets
from customer360.defs.run_history import build_run_history_sensors
from customer360.defs.sources import build_ingest_jobs, build_source_assets

JOB_NAME = "resolve_customers"


def artifacts_dir(spec: Spec) -> Path:
    """``$CUSTOMER360_ARTIFACTS`` if set, else ``artifacts/`` beside the spec file."""
    configured = os.environ.get(ARTIFACTS_ENV_VAR)
    return Path(configured).expanduser().resolve() if configured else spec.base_dir / "artifacts"


def build_definitions(spec: Spec, artifacts: Path) -> dg.Definitions:
    store = ArtifactStore(artifacts)
    assets = [
        *build_source_assets(spec, store),
        *build_resolution_assets(spec, store),
        *build_matching_assets(spec, store),
        *build_profile_assets(spec, store),
        *build_analytics_assets(spec, store),
        *build_monitoring_assets(spec, store),
        *build_preview_assets(spec, store),
    ]
    preview = dg.AssetSelection.groups(PREVIEW_GROUP)
    extracts = dg.AssetSelection.assets(*(source.name for source in spec.sources))
    job = dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.all() - preview - extracts,
        description="Materialize the whole graph from the sources' current batch files to "
        "golden profiles and metrics (the extracts' per-batch partitions are ingested by "
        "the ingest_<source> jobs). Reuses the persisted match model (materialize "
        "match_model to retrain it).",
        config=match_model_config(spec) or None,
        tags=writes_tags(artifacts),
    )
    preview_job = dg.define_asset_job(
        PREVIEW_JOB,
        selection=preview,
        description="Dry run: what the next run would change. Writes only the dry_run tables.",
        tags=writes_tags(artifacts),
    )
    ingest_jobs = build_ingest_jobs(spec, store)
    forget_job, rebuild_after_forget = build_forget_job(spec, store, job)
    return dg.Definitions(
        assets=assets,
        asset_checks=[
            *build_checks(spec, store),
            *build_output_checks(spec, store),
            *build_accuracy_checks(spec),
        ],
        jobs=[job, preview_job, forget_job, *ingest_jobs],
        sensors=[
            build_batch_sensor(spec, JOB_NAME, [job, *ingest_jobs]),
            *build_run_history_sensors(spec, store),
            rebuild_after_forget,
        ],
        schedules=[build_reconciliation_schedule(JOB_NAME)],
        resources={
            "io_manager": ParquetDuckDBIOManager(
                artifacts_dir=str(artifacts), run_lock=RunLock(artifacts_dir=str(artifacts))
            )
        },
        # One process for the whole run: the steps pass large frames through Parquet
        # and gain nothing from a process each, and one writer never fights the lock.
        executor=dg.in_process_executor,
    )


def match_model_config(spec: Spec) -> dict:
    """The main job's run config: match_model reuses the persisted model rather than
    retraining (empty without matching)."""
    if spec.matching is None or not spec.matching.enabled:
        return {}
    return {"ops": {"match_model": {"config": {"retrain": False}}}}


@dg.definitions
def defs() -> dg.Definitions:
    spec = load_spec()
    return build_definitions(spec, artifacts_dir(spec))
