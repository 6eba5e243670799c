"""The blocking index finds the rows the batch's blocking rules pair a record with."""

from __future__ import annotations

import polars as pl

from customer360.core.blocking import BlockingIndex

RULES = [["first_name", "last_name"], ["date_of_birth"]]
FRAME = pl.DataFrame(
    {
        "first_name": ["ann", "ann", "bob", "ann", None, "ann"],
        "last_name": ["lee", "lee", "lee", "kim", "lee", "lee"],
        "date_of_birth": ["1990-01-01", None, "1980-05-05", "1980-05-05", "1990-01-01", None],
    }
)


def one(**values: str | None) -> pl.DataFrame:
    return pl.DataFrame({name: [values.get(name)] for name in FRAME.columns}, schema=FRAME.schema)


def test_a_record_meets_the_rows_sharing_any_rule_first_rule_first_each_once() -> None:
    index = BlockingIndex(FRAME, RULES)
    found = index.candidates(one(first_name="ann", last_name="lee", date_of_birth="1980-05-05"), 10)
    assert found.tolist() == [0, 1, 5, 2, 3]
    found = index.candidates(one(first_name="ann", last_name="lee", date_of_birth="1990-01-01"), 10)
    assert found.tolist() == [0, 1, 5, 4]  # row 0 shares both rules: listed once


def test_nulls_share_no_key() -> None:
    index = BlockingIndex(FRAME, RULES)
    assert index.candidates(one(last_name="lee"), 10).tolist() == []  # no first name, no birth
    assert index.candidates(one(first_name="bob"), 10).tolist() == []


def test_candidates_are_bounded() -> None:
    index = BlockingIndex(FRAME, RULES)
    record = one(first_name="ann", last_name="lee", date_of_birth="1980-05-05")
    assert index.candidates(record, 2).tolist() == [0, 1]
    assert index.candidates(record, 4).tolist() == [0, 1, 5, 2]
