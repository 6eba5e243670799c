"""Why records of one person ended up in different customers: the missed pairs by reason.

Recall is lost pair by pair — two records truth calls one person that the run put in two
customers. Tuning is blind without knowing what evidence those pairs carry: whether a
guard or the split took a link away, whether an identifier is one keying slip away,
whether the model ever saw them as candidates, or whether nothing but a name ties them.
Each missed pair gets the first reason that applies, in that order, so the reasons add
up to the missed pairs.

Two figures put a name-only link in proportion: how many record pairs in *different*
customers agree on every name attribute, and how many of those are the same person.
"""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl

from customer360.core.clusters import component_labels

REASON_SPLIT = "linked, then cut apart by the split"
REASON_GUARDED = "share an identifier value the guard held back"
REASON_NEAR_IDENTIFIER = "identifier values one or two edits apart"
REASON_CANDIDATE = "a candidate pair, scored below the threshold"
REASON_NO_NAME = "a name attribute missing on one side"
REASON_NAMES_ONLY = "nothing but the names on both sides"
REASON_NOT_BLOCKED = "names and other attributes, never a candidate pair"
REASONS = (
    REASON_SPLIT,
    REASON_GUARDED,
    REASON_NEAR_IDENTIFIER,
    REASON_CANDIDATE,
    REASON_NO_NAME,
    REASON_NAMES_ONLY,
    REASON_NOT_BLOCKED,
)
"""In the order they are tried."""

NEAR_EDITS = 2
"""A transposition (gmial, a swapped pair of digits) is two Levenshtein edits."""


def missed_pairs(
    attributes: pl.DataFrame,
    identifiers: pl.DataFrame,
    membership: pl.DataFrame,
    truth: pl.DataFrame,
    edges: pl.DataFrame,
    names: list[str],
    blocking: list[list[str]],
) -> pl.DataFrame:
    """One row per missed pair: ``entity_key_a``, ``entity_key_b``, ``reason`` and
    ``names_equal`` (every name attribute present and equal on both sides).

    ``attributes`` holds ``entity_key`` and the compared attributes, normalized as the
    model compares them (e.g. :func:`customer360.core.matching.comparison_frame` with
    ``unique_id`` renamed); ``names`` are the attributes compared as names. ``edges`` are
    the links before the split (identifier and match edges), ``identifiers`` the long
    table with its status.
    """
    people = membership.select("entity_key", "resolved_id").join(
        truth.select("entity_key", pl.col("person_id").cast(pl.String)), on="entity_key"
    )
    people = people.with_columns(component=_components(people, edges))
    linkable = identifiers.filter(pl.col("status") == "linkable").select(
        "entity_key", "identifier_type", "value"
    )
    others = [column for column in attributes.columns if column not in {"entity_key", *names}]
    with duckdb.connect() as con:
        con.register("people", people.to_arrow())
        con.register("attributes", attributes.to_arrow())
        con.register("ids", linkable.to_arrow())
        return con.sql(_classification_sql(names, others, blocking)).pl()


def missed_summary(missed: pl.DataFrame) -> pl.DataFrame:
    """Pairs per reason (every reason listed, in order), their share of all missed pairs
    and how many of them agree on every name."""
    counts = missed.group_by("reason").agg(
        pl.len().alias("pairs"), pl.col("names_equal").sum().alias("names_equal")
    )
    total = max(missed.height, 1)
    return (
        pl.DataFrame({"reason": list(REASONS)})
        .join(counts, on="reason", how="left")
        .with_columns(pl.col("pairs", "names_equal").fill_null(0).cast(pl.Int64))
        .with_columns(share=(pl.col("pairs") / total).round(4))
        .select("reason", "pairs", "share", "names_equal")
    )


def name_collisions(
    attributes: pl.DataFrame, membership: pl.DataFrame, truth: pl.DataFrame, names: list[str]
) -> tuple[int, int]:
    """(record pairs in different customers that agree on every name attribute, how many
    of them are one person): the precision a link on names alone would have."""
    frame = (
        attributes.select("entity_key", *names)
        .drop_nulls(names)
        .join(membership.select("entity_key", "resolved_id"), on="entity_key")
        .join(truth.select("entity_key", pl.col("person_id").cast(pl.String)), on="entity_key")
    )
    pairs = frame.join(frame, on=names, suffix="_b").filter(
        (pl.col("entity_key") < pl.col("entity_key_b"))
        & (pl.col("resolved_id") != pl.col("resolved_id_b"))
    )
    same = pairs.filter(pl.col("person_id") == pl.col("person_id_b")).height
    return pairs.height, same


def _components(people: pl.DataFrame, edges: pl.DataFrame) -> pl.Series:
    """The connected component of every record in the links before the split."""
    positions = people.select("entity_key").with_row_index("position")
    ends = edges.join(positions, left_on="entity_key_a", right_on="entity_key").join(
        positions, left_on="entity_key_b", right_on="entity_key", suffix="_b"
    )
    labels = component_labels(
        people.height, ends["position"].to_numpy(), ends["position_b"].to_numpy()
    )
    return pl.Series(np.asarray(labels, dtype=np.int64))


def _classification_sql(names: list[str], others: list[str], blocking: list[list[str]]) -> str:
    def both(column: str) -> str:
        return f'(a."{column}" IS NOT NULL AND b."{column}" IS NOT NULL)'

    def equal(columns: list[str]) -> str:
        return " AND ".join(f'coalesce(a."{c}" = b."{c}", false)' for c in columns) or "false"

    candidate = " OR ".join(f"({equal(block)})" for block in blocking) or "false"
    names_present = " AND ".join(both(name) for name in names) or "true"
    others_present = " OR ".join(both(column) for column in others) or "false"
    return f"""
        WITH missed AS (
            SELECT a.entity_key AS entity_key_a, b.entity_key AS entity_key_b,
                   a.component = b.component AS linked
            FROM people a JOIN people b
              ON a.person_id = b.person_id AND a.entity_key < b.entity_key
             AND a.resolved_id <> b.resolved_id
        ),
        identifier_pairs AS (
            SELECT m.entity_key_a, m.entity_key_b,
                   bool_or(x.value = y.value) AS shared,
                   bool_or(levenshtein(x.value, y.value) <= {NEAR_EDITS}) AS near
            FROM missed m
            JOIN ids x ON x.entity_key = m.entity_key_a
            JOIN ids y ON y.entity_key = m.entity_key_b
             AND y.identifier_type = x.identifier_type
            GROUP BY ALL
        )
        SELECT m.entity_key_a, m.entity_key_b,
               CASE WHEN m.linked THEN '{REASON_SPLIT}'
                    WHEN coalesce(i.shared, false) THEN '{REASON_GUARDED}'
                    WHEN coalesce(i.near, false) THEN '{REASON_NEAR_IDENTIFIER}'
                    WHEN {candidate} THEN '{REASON_CANDIDATE}'
                    WHEN NOT ({names_present}) THEN '{REASON_NO_NAME}'
                    WHEN NOT ({others_present}) THEN '{REASON_NAMES_ONLY}'
                    ELSE '{REASON_NOT_BLOCKED}' END AS reason,
               {equal(names)} AS names_equal
        FROM missed m
        JOIN attributes a ON a.entity_key = m.entity_key_a
        JOIN attributes b ON b.entity_key = m.entity_key_b
        LEFT JOIN identifier_pairs i USING (entity_key_a, entity_key_b)
        ORDER BY m.entity_key_a, m.entity_key_b
    """
