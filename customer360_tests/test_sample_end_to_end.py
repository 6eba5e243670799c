"""The bundled spec over a freshly generated sample: the product's main path."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from customer360.cli import main
from customer360.core.spec import load_spec
from customer360.definitions import build_definitions
from customer360.defs.preview import PREVIEW_JOB
from customer360.sample import SOURCE_FILES
from customer360_tests.conftest import run_job, sample_world

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_default_spec_resolves_a_generated_sample(tmp_path: Path) -> None:
    run = run_job(sample_world(tmp_path, records=3_000, seed=7), tmp_path / "artifacts")

    assert run.result.success
    assert all(run.checks().values()), run.checks()
    records = run.table("records")
    assert set(records.get_column("source").unique()) == set(SOURCE_FILES)
    metrics = run.table("resolution_metrics").filter(pl.col("dimension") == "")
    figures = dict(metrics.select("metric", "value").iter_rows())
    # Deterministic rules on realistic noise: clearly better than chance, not perfect.
    assert 0.8 < figures["pairwise_precision"] < 1.0
    assert 0.6 < figures["pairwise_recall"] < 1.0
    assert figures["clusters"] == run.table("golden_profiles").height
    assert figures["quarantined_rows"] > 0

    organizations, memberships = run.table("organizations"), run.table("memberships")
    assert organizations.height >= 10  # the sample's companies, found from domains and accounts
    assert memberships.height > organizations.height
    assert memberships.get_column("role").is_not_null().any()
    spend = run.table("customer_360").get_column("lifetime_value")
    assert spend.sum() > 0 and spend.min() >= 0


def test_every_readme_query_runs_on_the_outputs(tmp_path: Path) -> None:
    spec = sample_world(tmp_path, records=2_000, seed=3)
    artifacts = tmp_path / "artifacts"
    assert main(["run", "--spec", str(spec), "--artifacts", str(artifacts)]) == 0
    preview = build_definitions(load_spec(spec), artifacts).resolve_job_def(PREVIEW_JOB)
    assert preview.execute_in_process(instance=dg.DagsterInstance.ephemeral()).success
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", readme, flags=re.DOTALL)
    statements = [s.strip() for block in blocks for s in block.split(";") if s.strip()]
    assert len(statements) >= 12
    with duckdb.connect(str(artifacts / "customer360.duckdb"), read_only=True) as con:
        for statement in statements:
            con.execute(statement).fetchall()  # raises on any unknown table or column
