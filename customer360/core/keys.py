"""Joining on text keys as integers: a key column is compared as its 64-bit hash when no
two of its values hash alike.

Hashing a million text keys takes a few hundredths of a second; joining millions of rows
on them as integers instead of as text saves tenths. Whether two keys collide is checked
(one count of distinct integers), and then the integer join is exact, as long as every
key looked up is one of the checked keys — as the records of a run are for the tables
made from them.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

# A key column by name, as it is compared when joining on it.
KeyOf = Callable[[str], pl.Expr]


def hashed_when_distinct(*keys: pl.Series) -> KeyOf:
    """The key columns as their hashes when each of ``keys`` (unique values: record keys,
    cluster ids) hashes to distinct integers; else as the text itself."""
    distinct = all(key.hash().n_unique() == key.len() for key in keys)
    return hashed if distinct else pl.col


def hashed(name: str) -> pl.Expr:
    """The column ``name`` as its 64-bit hash, under the same name."""
    return pl.col(name).hash()
