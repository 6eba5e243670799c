"""Frame helpers shared by the core stages."""

from __future__ import annotations

import polars as pl


def aligned_or_joined(left: pl.DataFrame, right: pl.DataFrame, on: str) -> pl.DataFrame:
    """``left`` inner-joined with ``right`` on a key unique in both.

    Tables of the same records (records, membership) are written in the same order, so
    usually their keys match row for row: then the join is a side-by-side concatenation,
    checked by one comparison of the key columns instead of hashing every key.
    """
    if left.height == right.height and left.get_column(on).equals(right.get_column(on)):
        return pl.concat([left, right.drop(on)], how="horizontal")
    return left.join(right, on=on)
