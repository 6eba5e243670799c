"""The batch's blocking rules as an in-memory index, for finding one record's candidates.

The batch only scores pairs that agree on every attribute of at least one blocking rule
(Splink's ``block_on``: equal values, a null agrees with nothing). To score one new
record the same way, each rule's key of every published record is computed once, sorted,
and searched by bisection: a record's candidates are the rows holding any of its keys.
"""

from __future__ import annotations

import numpy as np
import polars as pl

KEY_SEPARATOR = "\x1f"
"""Joins a rule's attribute values into one key; a character no attribute value holds."""


def blocking_keys(frame: pl.DataFrame, rule: list[str]) -> pl.Series:
    """Each row's key under one rule: its values joined, null when any value is null
    (such a row shares the rule with nobody)."""
    return frame.select(
        pl.concat_str(rule, separator=KEY_SEPARATOR, ignore_nulls=False)
    ).to_series()


class BlockingIndex:
    """Rows of a comparison frame by their key under each blocking rule."""

    def __init__(self, frame: pl.DataFrame, rules: list[list[str]]) -> None:
        self._rules = rules
        self._keys: list[np.ndarray] = []
        self._rows: list[np.ndarray] = []
        for rule in rules:
            keyed = (
                blocking_keys(frame, rule)
                .alias("key")
                .to_frame()
                .with_row_index("row")
                .drop_nulls("key")
                .sort("key", "row")
            )
            self._keys.append(keyed.get_column("key").to_numpy())
            self._rows.append(keyed.get_column("row").to_numpy())

    def candidates(self, record: pl.DataFrame, limit: int) -> np.ndarray:
        """Row numbers of the records sharing a blocking key with the one-row ``record``:
        the first rule's first, at most ``limit``, each row once."""
        found: list[np.ndarray] = []
        for rule, keys, rows in zip(self._rules, self._keys, self._rows, strict=True):
            key = blocking_keys(record, rule)[0]
            if key is None:
                continue
            start = int(np.searchsorted(keys, key, side="left"))
            end = int(np.searchsorted(keys, key, side="right"))
            found.append(rows[start : min(end, start + limit)])
        if not found:
            return np.empty(0, dtype=np.uint32)
        ordered = np.concatenate(found)
        _, first = np.unique(ordered, return_index=True)
        return ordered[np.sort(first)][:limit]
