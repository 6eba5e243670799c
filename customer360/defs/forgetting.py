"""The forget job: a person asks to be forgotten. The job suppresses their records and
purges what runs cannot rebuild; a sensor then starts the main job, which rebuilds every
output without them.

Dagster keeps every run's config for as long as it keeps the run, and shows it to
everyone who can open the UI. So the job takes only a ``resolved_id`` — an id the
outputs already use, no personal value — and no identifier value at all: a person known
by an email or phone is forgotten with ``customer360 forget --identifier``, which runs
outside Dagster and records nothing but the audit row."""

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from customer360.core.forget import forget, select_records
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore
from customer360.defs.automation import TRIGGER_TAG
from customer360.defs.concurrency import writes_tags

if TYPE_CHECKING:  # what define_asset_job returns; not exported by dagster itself
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

FORGET_JOB = "forget_customer"


class ForgetRequest(dg.Config):
    """The customer to forget, by resolved_id (look it up in golden_profiles, or use
    ``customer360 forget --identifier`` to forget by an identifier value)."""

    resolved_id: str = Field(
        description="the customer's resolved_id, e.g. crm_customers:C0000017; identifier "
        "values are not accepted here, because Dagster keeps every run's config"
    )


def build_forget_job(
    spec: Spec, store: ArtifactStore, main_job: "UnresolvedAssetJobDefinition"
) -> tuple[dg.JobDefinition, dg.SensorDefinition]:
    """The forget job, and the sensor that runs ``main_job`` after it succeeds."""

    @dg.op(description="Suppress a person's records from now on and purge run-spanning tables.")
    def forget_person(context: dg.OpExecutionContext, config: ForgetRequest) -> None:
        # The job holds the run lock (its IO manager's), so no run rewrites membership
        # and state while they are purged.
        selected = select_records(spec, store, config.resolved_id)
        figures = forget(spec, store, selected, "resolved_id")
        context.log.info(
            f"forgot {figures['records_forgotten']} record(s) of "
            f"{figures['customers_forgotten']} customer(s); the main job rebuilds the outputs"
        )

    @dg.job(
        name=FORGET_JOB,
        description="Forget a customer by resolved_id: every output is rebuilt without them "
        "by the run this job triggers, and later runs keep them out.",
        tags=writes_tags(store.root),
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
            tags={TRIGGER_TAG: "rebuild_after_forget"},
        )

    return forget_customer, rebuild_after_forget
