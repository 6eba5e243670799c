"""The forget job: a person asks to be forgotten. The job suppresses their records and
purges what runs cannot rebuild; a sensor then starts the main job, which rebuilds every
output without them. Personal values given as config are not logged, but Dagster keeps
every run's config: a resolved_id (or the `customer360 forget` command) leaves none."""

from typing import TYPE_CHECKING

import dagster as dg

from customer360.core.forget import forget, select_records
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore
from customer360.defs.concurrency import writes_tags

if TYPE_CHECKING:  # what define_asset_job returns; not exported by dagster itself
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

FORGET_JOB = "forget_customer"


class ForgetRequest(dg.Config):
    """Either a resolved_id, or an identifier type and value (e.g. email, a@b.com)."""

    resolved_id: str | None = None
    identifier_type: str | None = None
    value: str | None = None


def build_forget_job(
    spec: Spec, store: ArtifactStore, main_job: "UnresolvedAssetJobDefinition"
) -> tuple[dg.JobDefinition, dg.SensorDefinition]:
    """The forget job, and the sensor that runs ``main_job`` after it succeeds."""

    @dg.op(description="Suppress a person's records from now on and purge run-spanning tables.")
    def forget_person(context: dg.OpExecutionContext, config: ForgetRequest) -> None:
        selected = select_records(
            spec, store, config.resolved_id, config.identifier_type, config.value
        )
        selector = "resolved_id" if config.resolved_id else str(config.identifier_type)
        figures = forget(store, selected, selector)
        context.log.info(
            f"forgot {figures['records_forgotten']} record(s) of "
            f"{figures['customers_forgotten']} customer(s); the main job rebuilds the outputs"
        )

    @dg.job(
        name=FORGET_JOB,
        description="Forget a person (by resolved_id or identifier): every output is rebuilt "
        "without them by the run this job triggers, and later runs keep them out.",
        run_tags=writes_tags(store.root),
    )
    def forget_customer() -> None:
        forget_person()

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[forget_customer],
        request_job=main_job,
        name="rebuild_after_forget",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After a person is forgotten, rebuild every output without them.",
    )
    def rebuild_after_forget(context: dg.RunStatusSensorContext) -> dg.RunRequest:
        return dg.RunRequest(
            run_key=context.dagster_run.run_id,
            tags={"customer360/trigger": "rebuild_after_forget"},
        )

    return forget_customer, rebuild_after_forget
