"""Survivorship: for each resolved customer and attribute, the one observation that wins
(``resolved_traits``), chosen by the attribute's explicit strategy.

Strategies (ties always fall back to trust, then recency, then entity_key, so the
result never depends on row order):
- ``trust``: the value from the most trusted source (rank 1 first), then the most recent;
- ``most_recent``: the most recently updated value, then the most trusted;
- ``most_frequent``: the value seen on most records of the cluster;
- ``longest``: the longest value (e.g. a full middle name over an initial).
"""

from __future__ import annotations

import polars as pl

from customer360.core.spec import Spec

# Scores combine a primary criterion and a rank tie-break in one Int64: rank < 2**32.
SCORE_SCALE = 2**32


RESOLVED_TRAIT_COLUMNS = [
    "resolved_id",
    "attribute",
    "value",
    "strategy",
    "source",
    "entity_key",
    "observed_at",
    "conflict",
]


def resolve_traits(
    spec: Spec, traits: pl.DataFrame, records: pl.DataFrame, membership: pl.DataFrame
) -> pl.DataFrame:
    """The winning observation per (resolved_id, attribute), with the strategy that chose it
    and whether the cluster's records disagreed (``conflict``)."""
    ranks = _record_ranks(records, membership)
    candidates = (
        traits.drop("trust")
        .join(ranks, on="entity_key")
        .with_columns(pl.col("attribute").cast(pl.Enum(spec.golden_fields)))
    )
    return _winners(spec, candidates).select(RESOLVED_TRAIT_COLUMNS)


def _record_ranks(records: pl.DataFrame, membership: pl.DataFrame) -> pl.DataFrame:
    """Each record's cluster and two integer ranks, so that choosing a winner is an integer
    comparison: ``trust_rank`` (most trusted, then most recent, then entity_key) and
    ``recency_rank`` (most recent, then most trusted, then entity_key)."""
    by_trust = ["trust", "updated_at", "entity_key"]
    by_recency = ["updated_at", "trust", "entity_key"]
    return (
        records.select("entity_key", "trust", "updated_at")
        .join(membership.select("entity_key", "resolved_id"), on="entity_key")
        .select(
            "entity_key",
            "resolved_id",
            _rank(by_trust, descending=[False, True, False]).alias("trust_rank"),
            _rank(by_recency, descending=[True, False, False]).alias("recency_rank"),
        )
    )


def _rank(keys: list[str], descending: list[bool]) -> pl.Expr:
    """Position of each row in the given order (0 = first), nulls last."""
    order = pl.int_range(pl.len(), dtype=pl.UInt32).sort_by(
        keys, descending=descending, nulls_last=True
    )
    return order.arg_sort().cast(pl.Int64)


def _winners(spec: Spec, candidates: pl.DataFrame) -> pl.DataFrame:
    """The winning observation per (resolved_id, attribute).

    Every strategy is reduced to one integer score per observation (lower wins):
    its primary criterion, then the trust rank as tie-break. The winner is the
    observation with the lowest score in its group: one pass, no sort of the whole table.
    Whether the group's values disagree is read from the min and max of their hashes.
    """
    strategy_of = {field: spec.strategy(field) for field in spec.golden_fields}
    scored = candidates.with_columns(
        pl.col("attribute").cast(pl.String).replace_strict(strategy_of).alias("strategy")
    )
    frequency = (
        pl.when(pl.col("strategy") == "most_frequent")
        .then(pl.len().over("resolved_id", "attribute", "value"))
        .otherwise(0)
        .cast(pl.Int64)
    )
    tie_break = pl.col("trust_rank")
    primary = (
        pl.when(pl.col("strategy") == "trust")
        .then(pl.col("trust_rank"))
        .when(pl.col("strategy") == "most_recent")
        .then(pl.col("recency_rank"))
        .when(pl.col("strategy") == "most_frequent")
        .then(-pl.col("frequency"))
        .otherwise(-pl.col("value").str.len_chars().cast(pl.Int64))
    )
    secondary = (
        pl.when(pl.col("strategy").is_in(["trust", "most_recent"])).then(0).otherwise(tie_break)
    )
    score = primary * SCORE_SCALE + secondary
    return (
        scored.with_columns(frequency.alias("frequency"))
        .with_columns(score.alias("score"), pl.col("value").hash().alias("value_hash"))
        .group_by("resolved_id", "attribute")
        .agg(
            pl.col("value", "source", "entity_key", "observed_at", "strategy").get(
                pl.col("score").arg_min()
            ),
            (pl.col("value_hash").min() != pl.col("value_hash").max()).alias("conflict"),
        )
        .with_columns(pl.col("attribute").cast(pl.String))
    )
