"""Crash safety with a real process: SIGKILL at any stage, run again, and the outputs are
whole and equal to a clean run's; the previous outputs stay readable meanwhile. Runs
started together — by the command, or through Dagster's queue — take turns."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from customer360_tests.conftest import sample_world

REPO_ROOT = Path(__file__).resolve().parents[1]
# Tables whose content a run determines completely (no run ids or wall-clock times).
DATA_TABLES = [
    "records",
    "quarantine",
    "identifiers",
    "identity_edges",
    "match_model",
    "match_edges",
    "membership",
    "clusters",
    "traits",
    "resolved_traits",
    "golden_profiles",
    "customer_360",
    "organizations",
    "memberships",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("world")
    sample_world(folder, records=3_000, seed=11)
    return folder


def start_run(world: Path, artifacts: Path, log: Path | None = None) -> subprocess.Popen:
    """`customer360 run` in a real child process (its log to ``log`` if given)."""
    spec = str(world / "customer360.yaml")
    command = [
        sys.executable,
        "-m",
        "customer360.cli",
        "run",
        "--spec",
        spec,
        "--artifacts",
        str(artifacts),
    ]
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w") if log else subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "HOME": str(world)},
    )


def tables(artifacts: Path) -> dict[str, pl.DataFrame]:
    return {name: pl.read_parquet(artifacts / f"{name}.parquet") for name in DATA_TABLES}


def written_since(pattern: str, started: float) -> Callable[[Path], bool]:
    """A kill point: some file matching ``pattern`` written since ``started``."""

    def reached(artifacts: Path) -> bool:
        return any(path.stat().st_mtime > started for path in artifacts.glob(pattern))

    return reached


# Where a run is killed: during start-up, then as soon as each stage has written.
KILL_POINTS = {
    "start-up": None,
    "sources read": "crm_customers.parquet",
    "records mapped": "records.parquet",
    "match model trained": "state/match_model.parquet",
    "match charts being written": "charts/.writing-*",
    "clusters written": "membership.parquet",
    "profiles written": "golden_profiles.parquet",
}


def test_a_killed_run_leaves_whole_outputs_and_the_next_run_equals_a_clean_one(
    world: Path, tmp_path: Path
) -> None:
    clean = tmp_path / "clean"
    assert start_run(world, clean).wait(timeout=300) == 0
    expected = tables(clean)

    crashed = tmp_path / "crashed"
    for point, pattern in KILL_POINTS.items():
        started = time.time()
        run = start_run(world, crashed)
        reached = written_since(pattern, started) if pattern else lambda _: True
        time.sleep(1.0)  # past Python's start-up, into Dagster's
        while run.poll() is None and not reached(crashed):
            time.sleep(0.01)
        assert run.poll() is None, f"the run ended before '{point}'"
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=60)
        for parquet in crashed.rglob("*.parquet"):
            pl.read_parquet(parquet)  # every visible table and state file is whole
    assert start_run(world, crashed).wait(timeout=300) == 0
    assert not list(crashed.rglob(".*.tmp"))  # what a killed write left is cleaned up
    assert not list(crashed.rglob(".writing-*"))
    for name, frame in tables(crashed).items():
        assert frame.height == expected[name].height, name
        assert_frame_equal(frame, expected[name], check_row_order=False)
    for chart in (crashed / "charts").iterdir():
        assert chart.read_text().rstrip().endswith("</html>"), chart.name


def test_previous_outputs_stay_readable_while_a_run_rewrites_them(
    world: Path, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    assert start_run(world, artifacts).wait(timeout=300) == 0
    profiles = pl.read_parquet(artifacts / "golden_profiles.parquet").height
    run = start_run(world, artifacts)
    counts = []
    while run.poll() is None:
        with duckdb.connect(str(artifacts / "customer360.duckdb"), read_only=True) as con:
            counts.append(con.execute("select count(*) from golden_profiles").fetchone()[0])
        time.sleep(0.2)
    assert run.returncode == 0
    assert len(counts) > 3 and set(counts) == {profiles}


def test_two_runs_started_at_once_take_turns_and_both_succeed(world: Path, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    runs = [start_run(world, artifacts, log) for log in logs]
    assert [run.wait(timeout=300) for run in runs] == [0, 0]
    history = pl.read_parquet(artifacts / "run_history.parquet")
    assert history.get_column("status").to_list() == ["SUCCESS", "SUCCESS"]
    waited = ["waiting for it to finish" in log.read_text() for log in logs]
    assert sorted(waited) == [False, True]  # one ran, the other waited its turn
    membership = pl.read_parquet(artifacts / "membership.parquet")
    assert membership.get_column("entity_key").is_unique().all()


def launch(job: str, workspace: Path, env: dict[str, str], config: dict | None = None) -> None:
    """`dagster job launch`, as the UI launches: the run is submitted to the queue."""
    command = [str(Path(sys.executable).parent / "dagster"), "job", "launch", "-j", job]
    command += ["-w", str(workspace)] + (["--config-json", json.dumps(config)] if config else [])
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)


def runs_once(
    instance: dg.DagsterInstance, done: Callable[[list[dg.RunRecord]], bool]
) -> list[dg.RunRecord]:
    """Every run of the instance, as soon as ``done`` says so of them. The sensor's first
    look alone queues an ingestion run per batch and a resolution, each in its own
    process, one at a time: on a busy machine that takes minutes."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        records = instance.get_run_records()
        if done(records):
            return records
        time.sleep(0.5)
    raise TimeoutError(f"runs still going: {[r.dagster_run.status for r in records]}")


def running(record: dg.RunRecord) -> bool:
    return record.dagster_run.status in (
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.CANCELING,
    )


def test_runs_launched_together_wait_in_dagster_s_queue_and_run_one_at_a_time(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_instance.yaml", home / "dagster.yaml")
    workspace = tmp_path / "workspace.yaml"
    module = {"module_name": "customer360.definitions", "working_directory": str(REPO_ROOT)}
    workspace.write_text(json.dumps({"load_from": [{"python_module": module}]}))
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DAGSTER_HOME": str(home),
        "CUSTOMER360_SPEC": str(walkthrough_dir / "customer360.yaml"),
        "CUSTOMER360_ARTIFACTS": str(tmp_path / "artifacts"),
    }
    forget = {"ops": {"forget_person": {"config": {"resolved_id": "crm_customers:C002"}}}}
    launch("resolve_customers", workspace, env)  # from the UI …
    launch("forget_customer", workspace, env, forget)  # … and at once another one
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert {r.dagster_run.status for r in instance.get_run_records()} == {
            dg.DagsterRunStatus.QUEUED
        }
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(workspace)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:  # the two launched runs, then the sensors' (new batches, a person forgotten)
            runs_once(
                instance,
                lambda runs: len(runs) >= 3 and all(r.dagster_run.is_finished for r in runs),
            )
        finally:
            daemon.terminate()
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        # a sensor may have added a run meanwhile: it ends, or stays queued and never runs
        records = runs_once(instance, lambda runs: not any(map(running, runs)))
        records = [record for record in records if record.dagster_run.is_finished]
    assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
    spans = sorted((r.start_time, r.end_time) for r in records)
    assert len(spans) >= 3  # the two launched and the sensors' runs
    assert all(end <= next_start for (_, end), (next_start, _) in pairwise(spans))
