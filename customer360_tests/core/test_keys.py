"""Key columns compared as their hashes only when those are distinct."""

from __future__ import annotations

import polars as pl

from customer360.core.keys import (
    distinct_count,
    hashed,
    hashed_when_distinct,
    key_hash,
    missing_count,
    placement_changes,
    positions_in,
)

KEYS = pl.Series("entity_key", ["crm:1", "crm:2", "shop:1"])


def test_distinct_keys_are_compared_as_their_hashes_under_the_same_name():
    key = hashed_when_distinct(KEYS, pl.Series(["crm:1", "shop:9"]))
    frame = KEYS.to_frame().select(key("entity_key"))
    assert frame.schema == pl.Schema({"entity_key": pl.UInt64})
    assert frame.get_column("entity_key").n_unique() == 3


def test_keys_whose_hashes_repeat_are_compared_as_text():
    key = hashed_when_distinct(KEYS, pl.Series(["crm:1", "crm:1"]))
    assert KEYS.to_frame().select(key("entity_key")).equals(KEYS.to_frame())


def test_a_join_on_hashes_finds_what_the_join_on_text_finds():
    left = pl.DataFrame({"entity_key": ["shop:1", "crm:1", "crm:1", "crm:2"]})
    right = KEYS.to_frame().with_columns(pl.Series("cluster", [10, 10, 20]))
    by_hash = left.select(hashed("entity_key")).join(
        right.select(hashed("entity_key"), "cluster"), on="entity_key", maintain_order="left"
    )
    by_text = left.join(right, on="entity_key", maintain_order="left")
    assert by_hash.get_column("cluster").to_list() == by_text.get_column("cluster").to_list()
    assert by_text.get_column("cluster").to_list() == [20, 10, 10, 10]


def test_key_hash_is_equal_for_equal_keys_and_tells_columns_apart():
    keys = pl.DataFrame({"a": ["x", "y", "x", None], "b": ["y", "x", "y", "x"]})
    hashes = keys.select(key_hash(["a", "b"])).to_series().to_list()
    assert hashes[0] == hashes[2]  # the same key
    assert len(set(hashes)) == 3  # (x, y) and (y, x) differ; a null is a value like others


def test_positions_in_finds_each_keys_row_and_nothing_for_absent_or_null_keys():
    keys = pl.Series("resolved_id", ["shop:1", "crm:9", None, "crm:1", "shop:1"])
    rows = positions_in(keys, KEYS)
    assert rows.name == "resolved_id"
    assert rows.to_list() == [2, None, None, 0, 2]


def test_positions_in_looks_up_by_text_when_the_hashes_of_the_rows_repeat():
    among = pl.Series(["crm:1", "crm:1", "crm:2"])  # hashes repeat: looked up as text
    assert positions_in(pl.Series(["crm:2", "x"]), among).to_list() == [2, None]


def test_distinct_count_counts_each_value_once_and_a_null_as_a_value():
    assert distinct_count(KEYS) == 3
    assert distinct_count(pl.Series(["a", "b", "a", None, None])) == 3


def test_missing_count_counts_the_rows_an_anti_join_keeps():
    keys = pl.Series(["crm:1", "x", "x", None, "shop:1"])
    expected = keys.to_frame("k").join(KEYS.to_frame("k"), on="k", how="anti").height
    assert missing_count(keys, KEYS) == expected == 3
    assert missing_count(KEYS, KEYS) == 0  # the same values in the same order
    assert (
        missing_count(pl.Series([None], dtype=pl.String), pl.Series([None], dtype=pl.String)) == 1
    )


def test_placement_changes_marks_records_that_moved_came_or_went():
    before = pl.DataFrame({"entity_key": ["a", "b", "c"], "resolved_id": ["R1", "R1", "R2"]})
    now = pl.DataFrame({"entity_key": ["a", "b", "d"], "resolved_id": ["R1", "R2", "R2"]})
    left, entered = placement_changes(before, now)
    assert left.to_list() == [False, True, True]  # b moved away from R1, c went
    assert entered.to_list() == [False, True, True]  # b entered R2, d came
