"""The publication gates, judged on proposed clusters and lineage."""

from __future__ import annotations

import polars as pl

from customer360.core.gates import largest_cluster_gate, moved_share_gate


def test_largest_cluster_gate_counts_the_clusters_over_the_limit():
    clusters = pl.DataFrame({"size": [5, 3, 3, 1]}, schema={"size": pl.UInt32})
    assert largest_cluster_gate(clusters, 5) == (
        True,
        {"largest_cluster": 5, "max_cluster_size": 5, "clusters_over_limit": 0},
    )
    gate = largest_cluster_gate(clusters, 2)
    assert not gate.passed
    assert gate.figures["clusters_over_limit"] == 3


def test_largest_cluster_gate_passes_an_empty_graph():
    assert largest_cluster_gate(pl.DataFrame(schema={"size": pl.UInt32}), 1).passed


def test_moved_share_counts_only_records_that_existed_before():
    lineage = pl.DataFrame(
        {
            "entity_key": ["a", "b", "c", "d", "e"],
            "previous_resolved_id": ["a", "a", "c", None, "e"],
            "resolved_id": ["a", "c", "c", "d", None],  # d is new, e removed
        }
    )
    gate = moved_share_gate(lineage, 0.25)
    assert gate.figures == {
        "existing_records": 3,
        "moved": 1,
        "moved_share": 0.3333,
        "max_moved_share": 0.25,
    }
    assert not gate.passed
    assert moved_share_gate(lineage, 0.5).passed
    # a batch run's lineage is a plan over the unchanged rows: judged alike
    assert moved_share_gate(lineage.lazy(), 0.25) == gate


def test_moved_share_of_a_first_run_is_zero():
    lineage = pl.DataFrame(
        {"entity_key": ["a"], "previous_resolved_id": [None], "resolved_id": ["a"]},
        schema=dict.fromkeys(["entity_key", "previous_resolved_id", "resolved_id"], pl.String),
    )
    assert moved_share_gate(lineage, 0.0) == (
        True,
        {"existing_records": 0, "moved": 0, "moved_share": 0.0, "max_moved_share": 0.0},
    )
