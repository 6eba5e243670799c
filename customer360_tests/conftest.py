"""Fixtures shared by the Dagster-layer tests: running the real job on a spec."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from customer360.core.spec import load_spec
from customer360.core.storage import ArtifactStore
from customer360.definitions import JOB_NAME, build_definitions
from customer360.sample import generate_sample

FIXTURES = Path(__file__).parent / "fixtures"
REPO_ROOT = Path(__file__).resolve().parents[1]
# The header of the walkthrough's CRM file, for batches added to it (see folder_world).
CRM_BATCH_HEADER = "customer_id,email,phone,first_name,created_at\n"


@dataclass
class JobRun:
    result: dg.ExecuteInProcessResult
    store: ArtifactStore
    instance: dg.DagsterInstance  # holds the run's event log: messages and metadata

    def table(self, name: str) -> pl.DataFrame:
        return self.store.read(name)

    def checks(self) -> dict[str, bool]:
        return {c.check_name: c.passed for c in self.result.get_asset_check_evaluations()}


def run_job(spec_path: Path, artifacts: Path) -> JobRun:
    """Materialize the whole graph of a spec in process, as `customer360 run` does."""
    defs = build_definitions(load_spec(spec_path), artifacts)
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def(JOB_NAME).execute_in_process(
        instance=instance, raise_on_error=False
    )
    return JobRun(result, ArtifactStore(artifacts), instance)


@pytest.fixture(autouse=True)
def _no_persistent_dagster_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never write run history into a developer's (or the Makefile's) DAGSTER_HOME."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


@pytest.fixture
def walkthrough_dir(tmp_path: Path) -> Path:
    """A writable copy of the README walkthrough (three sources, three rules)."""
    target = tmp_path / "walkthrough"
    shutil.copytree(FIXTURES / "walkthrough", target)
    return target


@pytest.fixture
def folder_world(walkthrough_dir: Path) -> Path:
    """The walkthrough with its CRM source as a folder of batches (day1.csv)."""
    crm = walkthrough_dir / "crm"
    crm.mkdir()
    (walkthrough_dir / "crm_customers.csv").rename(crm / "day1.csv")
    spec = walkthrough_dir / "customer360.yaml"
    spec.write_text(spec.read_text().replace("path: crm_customers.csv", "path: crm/"))
    return spec


def add_batch(spec_path: Path, name: str, lines: list[str], header: str = CRM_BATCH_HEADER) -> None:
    """A CSV batch file of these lines in the CRM folder of :func:`folder_world`."""
    (spec_path.parent / "crm" / name).write_text(header + "".join(f"{line}\n" for line in lines))


@pytest.fixture
def walkthrough_run(walkthrough_dir: Path, tmp_path: Path) -> JobRun:
    return run_job(walkthrough_dir / "customer360.yaml", tmp_path / "artifacts")


def sample_world(folder: Path, records: int, seed: int) -> Path:
    """A generated sample world in ``folder`` with the bundled spec beside it; the spec's
    path."""
    generate_sample(folder / "data_sources", records=records, seed=seed)
    spec = folder / "customer360.yaml"
    shutil.copy(REPO_ROOT / "customer360.yaml", spec)
    return spec
