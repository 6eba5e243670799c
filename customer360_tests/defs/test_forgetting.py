"""The forget job keeps no personal value in Dagster: not in the run's config, tags or
events, which the instance keeps for as long as it keeps the run."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from customer360.core.spec import load_spec
from customer360.definitions import build_definitions
from customer360.defs.forgetting import FORGET_JOB
from customer360_tests.conftest import run_job

JOHN = "crm_customers:C001"
JOHNS_VALUES = ["john@acme.com", "5551234567", "+15551234567", "John", "LY100"]


def everything_stored(instance: dg.DagsterInstance, run_id: str) -> str:
    """The run as the instance keeps it — config, tags — and every event of it."""
    run = instance.get_run_by_id(run_id)
    kept = [json.dumps(run.run_config), json.dumps(dict(run.tags))]
    kept += [dg.serialize_value(entry) for entry in instance.all_logs(run_id)]
    return "\n".join(kept)


@pytest.fixture
def forget_job(walkthrough_dir: Path, tmp_path: Path) -> dg.JobDefinition:
    spec = walkthrough_dir / "customer360.yaml"
    run_job(spec, tmp_path / "artifacts")
    return build_definitions(load_spec(spec), tmp_path / "artifacts").resolve_job_def(FORGET_JOB)


def test_forgetting_in_dagster_leaves_no_personal_value_in_the_instance(
    forget_job: dg.JobDefinition, tmp_path: Path
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = forget_job.execute_in_process(
        run_config={"ops": {"forget_person": {"config": {"resolved_id": JOHN}}}},
        instance=instance,
    )
    assert result.success
    forgotten = pl.read_parquet(tmp_path / "artifacts" / "state" / "forgotten_records.parquet")
    assert forgotten.height == 4  # John's CRM, two e-commerce and support records
    stored = everything_stored(instance, result.run_id)
    assert JOHN in stored  # the search does look at the config
    assert not [value for value in JOHNS_VALUES if value in stored]


def test_the_forget_job_takes_no_identifier_value(forget_job: dg.JobDefinition) -> None:
    instance = dg.DagsterInstance.ephemeral()
    by_email = {"identifier_type": "email", "value": "john@acme.com"}
    with pytest.raises(dg.DagsterInvalidConfigError):
        forget_job.execute_in_process(
            run_config={"ops": {"forget_person": {"config": by_email}}}, instance=instance
        )
    assert instance.get_runs() == []  # refused before any run was recorded
