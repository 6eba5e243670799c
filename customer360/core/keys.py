"""Text keys handled as 64-bit hashes: joined as integers when no two of their values
hash alike, and proven unique by counting distinct hashes.

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


def key_hash(columns: list[str]) -> pl.Expr:
    """One 64-bit hash per row of a key's columns. Equal keys hash alike, so when the
    hashes are all distinct the key is unique — proven for about half the cost of
    comparing the key's text; only a table whose hashes repeat needs the exact count."""
    first, *others = columns
    combined = pl.col(first).hash(1)
    for seed, column in enumerate(others, start=2):
        combined = combined ^ pl.col(column).hash(seed)
    return combined


def positions_in(keys: pl.Series, among: pl.Series) -> pl.Series:
    """For each of ``keys``, the row of ``among`` (unique values, e.g. this run's cluster
    ids) that holds the same value; null where none does.

    Looked up by 64-bit hashes when ``among``'s values hash to distinct integers (else by
    the text), then confirmed on the text: a key that is not among them but whose hash
    equals one of theirs is still not found, so the lookup is exact for any keys."""
    key = hashed_when_distinct(among)
    rows = among.to_frame("key").select(
        key("key"), pl.int_range(pl.len(), dtype=pl.get_index_type()).alias("row")
    )
    found = (
        keys.to_frame("key")
        .select(key("key"))
        .join(rows, on="key", how="left", maintain_order="left")
        .get_column("row")
    )
    confirmed = among.gather(found) == keys
    return found.set(~confirmed.fill_null(False), None).alias(keys.name)


def distinct_count(keys: pl.Series) -> int:
    """How many distinct values ``keys`` holds (a null counts as one): the count of
    distinct hashes when no two hash alike — then no two values are equal — else the
    exact count of the values themselves."""
    hashes = keys.hash().n_unique()
    return hashes if hashes == keys.len() else keys.n_unique()


def missing_count(keys: pl.Series, among: pl.Series) -> int:
    """How many of ``keys`` (rows, repeats included) have no equal value among ``among``,
    as an anti-join counts them (a null key matches nothing)."""
    if keys.null_count() == 0 and keys.equals(among):
        return 0
    if among.hash().n_unique() < among.len():  # repeated values: an anti-join on the text
        return keys.to_frame("key").join(among.to_frame("key"), on="key", how="anti").height
    return positions_in(keys, among).null_count()


def placement_changes(before: pl.DataFrame, now: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
    """Two memberships (entity_key, resolved_id) compared record by record: which rows of
    ``before`` hold a placement ``now`` lacks (the record left its cluster or went), and
    which rows of ``now`` hold one ``before`` lacks (it came, or entered its cluster).

    Each (entity_key, resolved_id) is hashed to one integer and looked up on the other
    side — two integer lookups instead of a join on text keys; a move hides only if its
    pair's hash collides with another record's, about n / 2**64 per record."""
    was, is_ = placements(before), placements(now)
    return ~was.is_in(is_.implode()), ~is_.is_in(was.implode())


def placements(membership: pl.DataFrame) -> pl.Series:
    """Each record's (entity_key, resolved_id) as one 64-bit hash."""
    return membership.select(pl.struct("entity_key", "resolved_id").hash()).to_series()
