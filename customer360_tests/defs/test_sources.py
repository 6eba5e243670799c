"""The source extract assets: one partition per batch file."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from customer360.core.spec import load_spec
from customer360.definitions import build_definitions


@pytest.mark.parametrize("name", ["day2.csv", "notes.md", "../crm_customers.csv"])
def test_a_partition_that_is_not_a_current_batch_file_fails_naming_it(
    walkthrough_dir: Path, tmp_path: Path, name: str
) -> None:
    spec = walkthrough_dir / "customer360.yaml"
    batches = walkthrough_dir / "crm"
    batches.mkdir()
    (walkthrough_dir / "crm_customers.csv").rename(batches / "day1.csv")
    (batches / "notes.md").write_text("customer_id,email\nC9,c9@example.com\n")
    spec.write_text(spec.read_text().replace("path: crm_customers.csv", "path: crm"))
    defs = build_definitions(load_spec(spec), tmp_path / "artifacts")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("crm_customers_batches", ["day1.csv", name])
        job = defs.resolve_job_def("ingest_crm_customers")
        assert job.execute_in_process(instance=instance, partition_key="day1.csv").success

        failed = job.execute_in_process(instance=instance, partition_key=name, raise_on_error=False)
    assert not failed.success
    (failure,) = [e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.error.message
    assert f"batch '{name}' of 'crm_customers' is not one of its batch files" in message
    assert f"a csv file in {batches}" in message
