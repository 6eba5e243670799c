"""The probabilistic stage through the real job: trained once, reused, explainable, and
able to resolve sources that have no identifier at all."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from customer360.core.matching import (
    CHART_FILES,
    MODEL_STATE,
    STAGING_PREFIX,
    comparison_frame,
    score_pairs,
)
from customer360.core.spec import load_spec
from customer360.definitions import build_definitions
from customer360.defs.matching import CHARTS_FOLDER
from customer360.sample import generate_sample
from customer360_tests.conftest import JobRun, run_job, sample_world

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> JobRun:
    root = tmp_path_factory.mktemp("matching")
    return run_job(sample_world(root, records=3_000, seed=5), root / "artifacts")


def headline(run: JobRun) -> dict[str, float]:
    metrics = run.table("resolution_metrics").filter(pl.col("dimension") == "")
    return dict(metrics.select("metric", "value").iter_rows())


def test_match_edges_carry_probability_weight_and_evidence(sample_run: JobRun) -> None:
    edges = sample_run.table("match_edges")
    assert edges.height > 0
    assert (edges["rule"] == "probabilistic").all()
    threshold = load_spec(sample_run.store.root.parent / "customer360.yaml").matching.threshold
    assert edges["match_probability"].min() >= threshold
    # Splink's match weight is the prior's log-odds plus every field's contribution.
    model = json.loads(sample_run.store.read_state(MODEL_STATE)["model"][0])
    prior = model["probability_two_random_records_match"]
    prior_weight = math.log2(prior / (1 - prior))
    contributions = edges.select(
        pl.col("evidence").list.eval(pl.element().struct.field("weight")).list.sum(),
        "match_weight",
    )
    for summed, weight in contributions.iter_rows():
        assert summed + prior_weight == pytest.approx(weight, abs=1e-6)


def test_model_parameters_are_published(sample_run: JobRun) -> None:
    parameters = sample_run.table("match_model")
    assert set(parameters["comparison"]) == {"first_name", "last_name", "date_of_birth", "street"}
    exact_first = parameters.filter(
        (pl.col("comparison") == "first_name") & pl.col("level").str.starts_with("Exact")
    )
    # agreeing first names are far likelier among matches than among random pairs
    assert exact_first["m_probability"][0] > 10 * exact_first["u_probability"][0]


def test_probabilistic_matching_adds_links_without_hurting_the_bars(sample_run: JobRun) -> None:
    figures = headline(sample_run)
    assert sample_run.result.success
    assert all(sample_run.checks().values()), sample_run.checks()
    per_rule = sample_run.table("resolution_metrics").filter(pl.col("metric") == "edges_per_rule")
    assert "probabilistic" in per_rule["dimension"].to_list()
    assert figures["pairwise_precision"] >= 0.94
    assert figures["pairwise_f1"] >= 0.92


def test_the_model_is_reused_until_match_model_is_materialized_again(
    sample_run: JobRun,
) -> None:
    spec_path = sample_run.store.root.parent / "customer360.yaml"
    trained_at = sample_run.store.read_state(MODEL_STATE)["trained_at"][0]
    again = run_job(spec_path, sample_run.store.root)
    assert again.result.success
    assert again.store.read_state(MODEL_STATE)["trained_at"][0] == trained_at

    defs = build_definitions(load_spec(spec_path), sample_run.store.root)
    retrained = dg.materialize(
        list(defs.assets),
        instance=dg.DagsterInstance.ephemeral(),
        resources=defs.resources,
        selection=["match_model"],
    )
    assert retrained.success
    assert sample_run.store.read_state(MODEL_STATE)["trained_at"][0] > trained_at


def test_sources_without_email_or_phone_resolve_with_the_readme_spec(tmp_path: Path) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"```yaml\n(# names-only spec.*?)```", readme, flags=re.DOTALL)
    assert block, "README shows the names-only spec"
    generate_sample(tmp_path / "data_sources", records=3_000, seed=11)
    (tmp_path / "customer360.yaml").write_text(block.group(1))

    run = run_job(tmp_path / "customer360.yaml", tmp_path / "artifacts")

    assert run.result.success
    assert run.table("identity_edges").is_empty()  # nothing to link by rule
    assert run.table("match_edges").height > 50
    figures = headline(run)
    assert figures["pairwise_precision"] >= 0.95
    assert figures["pairwise_recall"] > 0.2  # every record would be alone without the model


def test_charts_are_replaced_whole_and_removed_when_nothing_matches(
    sample_run: JobRun, tmp_path: Path
) -> None:
    published = sample_run.store.root / CHARTS_FOLDER
    for name in CHART_FILES:
        assert (published / name).read_text().rstrip().endswith("</html>"), name
    assert not list(published.glob(f"{STAGING_PREFIX}*"))

    charts = tmp_path / "charts"
    (charts / f"{STAGING_PREFIX}killed").mkdir(parents=True)  # what a killed run leaves
    matching = load_spec(sample_run.store.root.parent / "customer360.yaml").matching
    model = json.loads(sample_run.store.read_state(MODEL_STATE)["model"][0])
    records = sample_run.table("records")
    written = score_pairs(comparison_frame(records, matching), model, 0.99, charts).charts
    assert sorted(path.name for path in charts.iterdir()) == sorted(CHART_FILES)
    assert written == [charts / name for name in CHART_FILES]

    lone = comparison_frame(records.head(1), matching)  # one record: no pair to chart
    assert score_pairs(lone, model, 0.99, charts).charts == []
    assert list(charts.iterdir()) == []  # the earlier run's pairs, and people, are gone
