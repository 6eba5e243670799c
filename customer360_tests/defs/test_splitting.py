"""Over-merge splitting through the real job on a generated sample: the published
clusters are the split ones, every split is recorded, counted and explainable, and the
sample spec reaches its accuracy bars."""

from __future__ import annotations

import polars as pl
import pytest

from customer360.core.explain import explain_pair
from customer360.core.spec import load_spec
from customer360_tests.conftest import JobRun, run_job, sample_world


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> JobRun:
    root = tmp_path_factory.mktemp("splitting")
    return run_job(sample_world(root, records=3_000, seed=3), root / "artifacts")


def cut_edges(run: JobRun) -> pl.DataFrame:
    """Published edges whose ends are different customers."""
    edges = pl.concat([run.table("identity_edges"), run.table("match_edges")])
    lookup = run.table("membership").select("entity_key", "resolved_id")
    return (
        edges.join(lookup, left_on="entity_key_a", right_on="entity_key")
        .join(lookup, left_on="entity_key_b", right_on="entity_key", suffix="_b")
        .filter(pl.col("resolved_id") != pl.col("resolved_id_b"))
    )


def headline(run: JobRun) -> dict[str, float]:
    metrics = run.table("resolution_metrics").filter(pl.col("dimension") == "")
    return dict(metrics.select("metric", "value").iter_rows())


def test_split_clusters_are_recorded_and_counted(sample_run: JobRun) -> None:
    assert sample_run.result.success
    clusters = sample_run.table("clusters")
    split = clusters.filter(pl.col("split_by").list.len() > 0)
    assert split.height > 0
    guards = set(split.get_column("split_by").explode())
    assert guards <= {"conflicting first_name", "conflicting date_of_birth", "max_cluster_size"}
    figures = headline(sample_run)
    assert figures["split_clusters"] == split.height
    cut = cut_edges(sample_run)
    assert figures["cut_links"] == cut.height > 0
    # every link the split cut ends in clusters that say they were split
    touched = set(cut.get_column("resolved_id")) | set(cut.get_column("resolved_id_b"))
    assert touched <= set(split.get_column("resolved_id"))
    per_guard = sample_run.table("resolution_metrics").filter(pl.col("metric") == "split_clusters")
    assert set(per_guard.get_column("dimension")) == {"", *guards}


def test_a_cut_link_is_explained_as_a_split(sample_run: JobRun) -> None:
    edge = cut_edges(sample_run).sort("entity_key_a", "entity_key_b").row(0, named=True)
    edges = pl.concat([sample_run.table("identity_edges"), sample_run.table("match_edges")])
    pair = explain_pair(
        edges, sample_run.table("membership"), edge["entity_key_a"], edge["entity_key_b"]
    )
    assert pair.split and not pair.linked
    assert any(step.crosses_clusters for step in pair.path)


def test_the_sample_spec_reaches_its_accuracy_bars(sample_run: JobRun) -> None:
    truth = load_spec(sample_run.store.root.parent / "customer360.yaml").truth
    figures = headline(sample_run)
    assert all(sample_run.checks().values()), sample_run.checks()
    assert figures["pairwise_precision"] >= truth.min_precision >= 0.99
    assert figures["pairwise_f1"] >= truth.min_f1 >= 0.95
