"""Pairwise scores updated from the last run's cells equal those counted from scratch,
and the kept cells are used only with the truth file and membership they were counted
from."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer360.core.evaluation import pairwise_scores, score_cells, scores_from_cells
from customer360.core.kept_scores import (
    SCORE_CELLS_STATE,
    KeptCells,
    cells_for,
    forget_kept_cells,
    keep_cells,
    kept_cells,
    truth_stamp,
    updated_cells,
)
from customer360.core.storage import ArtifactStore

TRUTH = pl.DataFrame(
    {
        "entity_key": ["a", "b", "c", "d", "e", "f"],
        "person_id": ["p", "p", "q", "q", "r", "p"],
    }
)


def membership(pairs: dict[str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"entity_key": list(pairs), "resolved_id": list(pairs.values())},
        schema={"entity_key": pl.String, "resolved_id": pl.String},
    )


def rows(cells: pl.DataFrame) -> list[tuple]:
    return sorted(cells.select("resolved_id", "person_id", "n").rows())


def test_moved_new_and_removed_records_update_the_cells_as_a_recount_does():
    before = membership({"a": "A", "b": "A", "c": "C", "d": "C", "e": "E", "x": "A"})
    # b moves to C, e is removed, f arrives in A, a record without truth (y) arrives
    after = membership({"a": "A", "b": "C", "c": "C", "d": "C", "f": "A", "x": "A", "y": "C"})
    kept = KeptCells(score_cells(before, TRUTH), before)
    updated = updated_cells(kept, after, TRUTH)
    assert rows(updated) == rows(score_cells(after, TRUTH))
    assert scores_from_cells(updated) == pairwise_scores(after, TRUTH)


def test_a_cell_whose_records_all_left_is_gone():
    before = membership({"a": "A", "e": "E"})
    after = membership({"a": "A", "e": "A"})
    updated = updated_cells(KeptCells(score_cells(before, TRUTH), before), after, TRUTH)
    assert rows(updated) == [("A", "p", 1), ("A", "r", 1)]


KEYS = list("abcdefxy")


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.sampled_from(KEYS), st.sampled_from("ABCD")),
    st.dictionaries(st.sampled_from(KEYS), st.sampled_from("ABCDE")),
)
def test_updating_any_membership_into_any_other_equals_counting_it(before, after):
    first, second = membership(before), membership(after)
    updated = updated_cells(KeptCells(score_cells(first, TRUTH), first), second, TRUTH)
    assert rows(updated) == rows(score_cells(second, TRUTH))
    assert scores_from_cells(updated) == pairwise_scores(second, TRUTH)


@pytest.fixture
def kept_world(tmp_path: Path) -> tuple[ArtifactStore, Path, Path]:
    store = ArtifactStore(tmp_path / "artifacts")
    truth = tmp_path / "truth.csv"
    TRUTH.write_csv(truth)
    members = membership({"a": "A", "b": "A", "c": "C"})
    store.write("membership", members)
    return store, truth, store.path("membership")


def test_kept_cells_are_read_back_with_the_membership_they_score(kept_world):
    store, truth, members = kept_world
    stamp = truth_stamp(truth, "entity_key", "person_id")
    cells = score_cells(pl.read_parquet(members), TRUTH)
    keep_cells(store, cells, stamp, members)
    kept = kept_cells(store, stamp)
    assert kept is not None
    assert rows(kept.cells) == rows(cells)
    assert kept.membership.equals(pl.read_parquet(members))
    # nothing changed since: the updated cells are the kept ones
    assert rows(cells_for(kept.membership, TRUTH, kept)) == rows(cells)
    assert rows(cells_for(kept.membership, TRUTH, None)) == rows(cells)


def test_another_truth_file_or_membership_or_none_kept_means_counting_again(kept_world):
    store, truth, members = kept_world
    stamp = truth_stamp(truth, "entity_key", "person_id")
    assert kept_cells(store, stamp) is None  # nothing kept yet
    keep_cells(store, score_cells(pl.read_parquet(members), TRUTH), stamp, members)
    # the truth file rewritten: its stamp differs
    os.utime(truth, ns=(0, truth.stat().st_mtime_ns + 1_000))
    assert kept_cells(store, truth_stamp(truth, "entity_key", "person_id")) is None
    assert kept_cells(store, truth_stamp(truth, "entity_key", "other")) is None
    stamp = truth_stamp(truth, "entity_key", "person_id")
    keep_cells(store, score_cells(pl.read_parquet(members), TRUTH), stamp, members)
    # a run that stopped after writing the cells of another membership file
    store.write("membership", membership({"a": "A", "b": "B", "c": "C"}))
    store.write_state(
        SCORE_CELLS_STATE,
        store.read_state(SCORE_CELLS_STATE).with_columns(
            pl.lit(f"{stamp}|{os.stat(members).st_ino}|0|0").alias("basis")
        ),
    )
    assert kept_cells(store, stamp) is None


def test_forgetting_drops_the_kept_cells(kept_world):
    store, truth, members = kept_world
    stamp = truth_stamp(truth, "entity_key", "person_id")
    keep_cells(store, score_cells(pl.read_parquet(members), TRUTH), stamp, members)
    forget_kept_cells(store)
    assert kept_cells(store, stamp) is None
