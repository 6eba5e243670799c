"""Pairwise precision/recall/F1 of a clustering against ground truth, computed by hand."""

from __future__ import annotations

import polars as pl
import pytest

from customer360.core.evaluation import pairwise_scores, read_truth


def membership(clusters: dict[str, list[str]]) -> pl.DataFrame:
    rows = [(key, rid) for rid, keys in clusters.items() for key in keys]
    return pl.DataFrame(rows, schema=["entity_key", "resolved_id"], orient="row")


def truth(people: dict[str, list[str]]) -> pl.DataFrame:
    rows = [(key, pid) for pid, keys in people.items() for key in keys]
    return pl.DataFrame(rows, schema=["entity_key", "person_id"], orient="row")


def test_small_example_by_hand():
    # Truth {a,b,c} {d}; prediction {a,b} {c,d}.
    # Predicted pairs: ab, cd = 2. True pairs: ab, ac, bc = 3. Both: ab = 1.
    scores = pairwise_scores(
        membership({"r1": ["a", "b"], "r2": ["c", "d"]}),
        truth({"p1": ["a", "b", "c"], "p2": ["d"]}),
    )
    assert scores.predicted_pairs == 2
    assert scores.true_pairs == 3
    assert scores.true_positive_pairs == 1
    assert scores.precision == 0.5
    assert scores.recall == pytest.approx(1 / 3, abs=1e-4)
    assert scores.f1 == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3), abs=1e-4)  # 0.4
    assert scores.over_merged_clusters == 1  # r2 holds c (p1) and d (p2)
    assert scores.under_merged_people == 1  # p1 is split over r1 and r2
    assert scores.evaluated_records == 4


def test_perfect_clustering():
    clusters = {"r1": ["a", "b", "c"], "r2": ["d", "e"], "r3": ["f"]}
    scores = pairwise_scores(
        membership(clusters), truth({"p1": ["a", "b", "c"], "p2": ["d", "e"], "p3": ["f"]})
    )
    assert (scores.precision, scores.recall, scores.f1) == (1.0, 1.0, 1.0)
    assert (scores.true_positive_pairs, scores.predicted_pairs, scores.true_pairs) == (4, 4, 4)
    assert (scores.over_merged_clusters, scores.under_merged_people) == (0, 0)


def test_everything_merged_into_one_cluster():
    scores = pairwise_scores(
        membership({"r": ["a", "b", "c", "d"]}), truth({"p1": ["a", "b"], "p2": ["c", "d"]})
    )
    # 4 records: 6 predicted pairs, 2 true pairs, both found.
    assert (scores.predicted_pairs, scores.true_pairs, scores.true_positive_pairs) == (6, 2, 2)
    assert scores.precision == pytest.approx(1 / 3, abs=1e-4)
    assert scores.recall == 1.0
    assert scores.over_merged_clusters == 1
    assert scores.under_merged_people == 0


def test_all_singletons_predict_no_pairs():
    scores = pairwise_scores(membership({"a": ["a"], "b": ["b"]}), truth({"p": ["a", "b"]}))
    assert scores.predicted_pairs == 0
    assert scores.precision == 1.0  # nothing claimed, nothing wrong
    assert scores.recall == 0.0
    assert scores.f1 == 0.0
    assert scores.under_merged_people == 1


def test_records_without_truth_are_ignored():
    scores = pairwise_scores(
        membership({"r1": ["a", "b", "x"], "r2": ["y"]}), truth({"p1": ["a", "b"]})
    )
    assert scores.evaluated_records == 2
    assert (scores.predicted_pairs, scores.true_pairs, scores.true_positive_pairs) == (1, 1, 1)


def test_numeric_person_ids_are_compared_as_text():
    people = pl.DataFrame({"entity_key": ["a", "b", "c"], "person_id": [7, 7, 8]})
    scores = pairwise_scores(membership({"r": ["a", "b"], "s": ["c"]}), people)
    assert (scores.precision, scores.recall) == (1.0, 1.0)


def test_as_dict_gives_floats():
    scores = pairwise_scores(membership({"r": ["a", "b"]}), truth({"p": ["a", "b"]}))
    as_dict = scores.as_dict()
    assert as_dict["true_pairs"] == 1.0
    assert all(isinstance(value, float) for value in as_dict.values())
    assert list(as_dict) == [
        "precision",
        "recall",
        "f1",
        "true_positive_pairs",
        "predicted_pairs",
        "true_pairs",
        "over_merged_clusters",
        "under_merged_people",
        "evaluated_records",
    ]


def test_read_truth_renames_columns_and_keeps_text(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text("record,extra,person\ncrm:1,x,007\nshop:2,y,007\n")
    frame = read_truth(path, key_column="record", person_column="person")
    assert frame.columns == ["entity_key", "person_id"]
    assert frame.rows() == [("crm:1", "007"), ("shop:2", "007")]  # leading zeros kept
