"""Frame helpers: the aligned shortcut gives what the join gives."""

from __future__ import annotations

import polars as pl
from polars.testing import assert_frame_equal

from customer360.core.frames import aligned_or_joined

LEFT = pl.DataFrame({"entity_key": ["a:1", "a:2", "b:3"], "trust": [1, 1, 2]})
RIGHT = pl.DataFrame({"entity_key": ["a:1", "a:2", "b:3"], "resolved_id": ["a:1", "a:1", "b:3"]})


def test_same_keys_in_the_same_order_are_put_side_by_side():
    joined = aligned_or_joined(LEFT, RIGHT, on="entity_key")
    assert_frame_equal(joined, LEFT.join(RIGHT, on="entity_key"), check_row_order=False)


def test_other_orders_and_missing_keys_are_joined():
    shuffled = RIGHT.reverse()
    assert_frame_equal(
        aligned_or_joined(LEFT, shuffled, on="entity_key"),
        LEFT.join(RIGHT, on="entity_key"),
        check_row_order=False,
    )
    fewer = RIGHT.head(2)
    assert aligned_or_joined(LEFT, fewer, on="entity_key").height == 2
