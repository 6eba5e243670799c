"""Runs that write the same outputs take turns in Dagster's run queue: the instance that
`make dev` installs, with the tags the project's jobs give their runs, dequeues one."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.utils import make_new_run_id
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)

from customer360.core.spec import load_spec
from customer360.definitions import JOB_NAME, build_definitions
from customer360.defs.concurrency import WRITES_TAG
from customer360.defs.forgetting import FORGET_JOB
from customer360.defs.preview import PREVIEW_JOB

REPO_ROOT = Path(__file__).resolve().parents[2]
CODE_LOCATION_TAG = "dagster/code_location"
LOCATION = "customer360.definitions"  # what `dagster dev -w workspace.yaml` names it


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """An instance configured by the committed file, as `make dev` installs it."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_instance.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as loaded:
        yield loaded


@pytest.fixture
def defs(walkthrough_dir: Path, tmp_path: Path) -> dg.Definitions:
    return build_definitions(load_spec(walkthrough_dir / "customer360.yaml"), tmp_path / "out")


def add_run(
    instance: dg.DagsterInstance, job: str, tags: dict[str, str], status: dg.DagsterRunStatus
) -> str:
    origin = RemoteJobOrigin(
        RemoteRepositoryOrigin(RegisteredCodeLocationOrigin(LOCATION), "__repository__"), job
    )
    run = dg.DagsterRun(
        job_name=job,
        run_id=make_new_run_id(),
        status=status,
        tags=tags,
        remote_job_origin=origin,
    )
    instance.add_run(run)
    return run.run_id


def dequeued(instance: dg.DagsterInstance) -> list[str]:
    """The runs the queue daemon would launch now (its own decision, nothing launched)."""
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    runs = daemon._get_runs_to_dequeue(instance, instance.get_concurrency_config(), None)
    return [run.run_id for run in runs]


def test_every_writing_job_tags_its_runs_with_the_artifacts_folder(
    defs: dg.Definitions, tmp_path: Path
) -> None:
    folder = str((tmp_path / "out").resolve())
    ingest_jobs = ("ingest_crm_customers", "ingest_ecom_orders", "ingest_support_tickets")
    for name in (JOB_NAME, PREVIEW_JOB, FORGET_JOB, *ingest_jobs):
        job = defs.resolve_job_def(name)
        assert job.tags[WRITES_TAG] == folder, name  # what a launch from the UI copies
        assert job.run_tags[WRITES_TAG] == folder, name  # what sensors and schedules copy


def test_two_runs_of_one_folder_queue_and_only_one_starts(
    instance: dg.DagsterInstance, defs: dg.Definitions
) -> None:
    ui_run = add_run(
        instance,
        JOB_NAME,
        dict(defs.resolve_job_def(JOB_NAME).run_tags),
        dg.DagsterRunStatus.QUEUED,
    )
    forget_run = add_run(
        instance,
        FORGET_JOB,
        dict(defs.resolve_job_def(FORGET_JOB).run_tags),
        dg.DagsterRunStatus.QUEUED,
    )
    assert dequeued(instance) == [ui_run]
    instance.report_run_failed(instance.get_run_by_id(ui_run))  # the first run ends
    assert dequeued(instance) == [forget_run]


def test_a_command_run_in_progress_keeps_ui_runs_of_its_folder_queued(
    instance: dg.DagsterInstance, defs: dg.Definitions, tmp_path: Path
) -> None:
    tags = dict(defs.resolve_job_def(JOB_NAME).run_tags)
    add_run(instance, JOB_NAME, tags, dg.DagsterRunStatus.STARTED)  # `customer360 run`
    add_run(instance, JOB_NAME, tags, dg.DagsterRunStatus.QUEUED)
    assert dequeued(instance) == []
    other_folder = {WRITES_TAG: str(tmp_path / "elsewhere")}
    elsewhere = add_run(instance, JOB_NAME, other_folder, dg.DagsterRunStatus.QUEUED)
    assert dequeued(instance) == [elsewhere]  # another project's outputs do not wait


def test_asset_graph_runs_without_job_tags_take_turns_per_code_location(
    instance: dg.DagsterInstance,
) -> None:
    location = {CODE_LOCATION_TAG: LOCATION}
    first = add_run(instance, "__ASSET_JOB", location, dg.DagsterRunStatus.QUEUED)
    add_run(instance, "__ASSET_JOB", location, dg.DagsterRunStatus.QUEUED)
    assert dequeued(instance) == [first]


def test_the_readme_gives_users_the_limits_make_dev_installs() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"```yaml\n(concurrency:.*?)```", readme, flags=re.DOTALL)
    assert block, "README shows the run queue limits"
    installed = yaml.safe_load((REPO_ROOT / "dagster_instance.yaml").read_text())
    assert yaml.safe_load(block.group(1)) == {"concurrency": installed["concurrency"]}
