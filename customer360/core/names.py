"""When two spellings of a first name can belong to the same person.

"Bob" and "Robert", "Jon" and "John", "ROBERT" and "Robert" are one person's name; "Mary"
and "Robert" are not. Nicknames come from the curated ``nicknames`` dataset, slips of the
keyboard are caught by Jaro-Winkler similarity and Damerau-Levenshtein distance (DuckDB's
implementations), also in a nickname ("Bbo" for "Robert"); case and surrounding blanks
are ignored.
"""

from __future__ import annotations

from functools import cache

import duckdb
import polars as pl
from nicknames import name_triplets

SIMILAR_SPELLING = 0.85
"""Jaro-Winkler similarity from which two spellings count as the same name (typos)."""


@cache
def nickname_pairs() -> pl.DataFrame:
    """(name, other) for every name/nickname relation, both directions, lower case."""
    pairs = pl.DataFrame(
        [(t.name1, t.name2) for t in name_triplets()], schema=["name", "other"], orient="row"
    )
    return pl.concat([pairs, pairs.select(name="other", other="name")]).unique()


def name_key(column: str | pl.Expr) -> pl.Expr:
    """The comparable form of a name column (or of a name computed by an expression):
    trimmed, lower case, null when blank."""
    source = pl.col(column) if isinstance(column, str) else column
    cleaned = source.str.strip_chars().str.to_lowercase()
    return pl.when(cleaned != "").then(cleaned)


def compatible_sql(left: str, right: str) -> str:
    """DuckDB condition: names ``left`` and ``right`` may be the same person's.

    They may when they are alike (:func:`_alike_sql`) or one is alike to a nickname of
    the other: "Bbo" is a slip of "Bob", which is "Robert". Needs the table of
    :func:`nickname_pairs` registered as ``nickname_pairs``.
    """
    # one EXISTS per direction: each looks the nickname table up by an equal name
    return (
        f"({_alike_sql(left, right)} "
        f"OR EXISTS (SELECT 1 FROM nickname_pairs n "
        f"WHERE n.name = {left} AND {_alike_sql('n.other', right)}) "
        f"OR EXISTS (SELECT 1 FROM nickname_pairs n "
        f"WHERE n.name = {right} AND {_alike_sql('n.other', left)}))"
    )


def _alike_sql(left: str, right: str) -> str:
    """Equal, similar spellings, or one keying slip apart (a letter dropped, added,
    replaced or two swapped: "Aym" and "Amy", which Jaro-Winkler misses in short names)."""
    return (
        f"({left} = {right} OR jaro_winkler_similarity({left}, {right}) >= {SIMILAR_SPELLING} "
        f"OR damerau_levenshtein({left}, {right}) <= 1)"
    )


class NameAgreement:
    """:func:`compatible_sql` for callers that ask about a few spellings at a time (the
    resolve service, one record per request), with the answers kept.

    Asking DuckDB costs about a millisecond per query, so the pairs of spellings that
    already share an identifier can be learned in one vectorised query up front; a
    request then only asks about the pairs nobody has seen. The rule itself is the
    batch's SQL, so the service and the batch cannot disagree on what a conflict is.
    Not thread-safe: callers serialise their calls.
    """

    def __init__(self) -> None:
        self._con = duckdb.connect()
        self._con.register("nickname_pairs", nickname_pairs().to_arrow())
        self._known: dict[tuple[str, str], bool] = {}

    def learn(self, pairs: pl.DataFrame) -> None:
        """Decide and keep every pair of name keys in the columns ``left`` and ``right``."""
        ordered = pairs.select(
            pl.min_horizontal("left", "right").alias("left"),
            pl.max_horizontal("left", "right").alias("right"),
        ).filter(pl.col("left") != pl.col("right"))
        unknown = ordered.unique()
        if unknown.is_empty():
            return
        self._con.register("asked", unknown.to_arrow())
        decided = self._con.sql(
            f"SELECT a.left AS l, a.right AS r, {compatible_sql('a.left', 'a.right')} AS agree "
            "FROM asked a"
        ).pl()
        self._con.unregister("asked")
        self._known.update(
            zip(
                zip(decided.get_column("l"), decided.get_column("r"), strict=True),
                decided.get_column("agree"),
                strict=True,
            )
        )

    def compatible(self, name: str, other: str) -> bool:
        """Whether two name keys (see :func:`name_key`) may be one person's."""
        if name == other:
            return True
        pair = (name, other) if name < other else (other, name)
        if pair not in self._known:
            self.learn(pl.DataFrame({"left": [pair[0]], "right": [pair[1]]}))
        return self._known[pair]
