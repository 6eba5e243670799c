"""Golden profiles: one row per resolved customer, each field chosen by an explicit
survivorship strategy from all the observations of the cluster's records.

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

# How far back a last update still counts as recent when scoring data quality.
RECENCY_HORIZON_DAYS = 365
COMPLETENESS_WEIGHT = 0.8

# Scores combine a primary criterion and a rank tie-break in one Int64: rank < 2**32.
SCORE_SCALE = 2**32


def observations(
    spec: Spec, records: pl.DataFrame, identifiers: pl.DataFrame, membership: pl.DataFrame
) -> pl.DataFrame:
    """Every candidate value for a golden field with its cluster and provenance (long form).

    Identifiers contribute their normalized value as ``<type>_primary`` unless they are
    invalid or excluded placeholders; attributes contribute their mapped text. Each
    observation carries two integer ranks of its record, so that choosing a winner is
    an integer comparison: ``trust_rank`` (most trusted, then most recent, then
    entity_key) and ``recency_rank`` (most recent, then most trusted, then entity_key).
    """
    fields = pl.Enum(spec.golden_fields)
    attributes = [a for a in spec.attribute_names if a in records.columns]
    by_trust = ["trust", "updated_at", "entity_key"]
    by_recency = ["updated_at", "trust", "entity_key"]
    ranked = records.select("entity_key", "source", "trust", "updated_at", *attributes).join(
        membership.select("entity_key", "resolved_id"), on="entity_key"
    )
    provenance_columns = ["entity_key", "resolved_id", "source", "trust_rank", "recency_rank"]
    ranked = ranked.select(
        "entity_key",
        "resolved_id",
        "source",
        _rank(by_trust, descending=[False, True, False]).alias("trust_rank"),
        _rank(by_recency, descending=[True, False, False]).alias("recency_rank"),
        *attributes,
    )
    traits = ranked.unpivot(
        on=attributes, index=provenance_columns, variable_name="field", value_name="value"
    ).cast({"value": pl.String, "field": fields})  # no attributes: an all-null column
    identifier_values = (
        identifiers.filter(pl.col("status").is_in(["linkable", "oversize"]))
        .select("entity_key", (pl.col("identifier_type") + "_primary").alias("field"), "value")
        .join(ranked.select(provenance_columns), on="entity_key")
        .select(traits.columns)
        .cast({"field": fields})
    )
    return pl.concat([traits, identifier_values]).drop_nulls("value")


def _rank(keys: list[str], descending: list[bool]) -> pl.Expr:
    """Position of each row in the given order (0 = first), nulls last."""
    order = pl.int_range(pl.len(), dtype=pl.UInt32).sort_by(
        keys, descending=descending, nulls_last=True
    )
    return order.arg_sort().cast(pl.Int64)


def surviving_values(spec: Spec, candidates: pl.DataFrame) -> pl.DataFrame:
    """The winning observation per (resolved_id, field), with the strategy that chose it.

    Every strategy is reduced to one integer score per observation (lower wins):
    its primary criterion, then the trust rank as tie-break. The winner is the
    observation with the lowest score in its group: one pass, no sort of the whole table.
    Whether the group's values disagree is read from the min and max of their hashes.
    """
    strategy_of = {field: spec.strategy(field) for field in spec.golden_fields}
    scored = candidates.with_columns(
        pl.col("field").cast(pl.String).replace_strict(strategy_of).alias("strategy")
    )
    frequent = scored.filter(pl.col("strategy") == "most_frequent").with_columns(
        pl.len().over("resolved_id", "field", "value").cast(pl.Int64).alias("frequency")
    )
    others = scored.filter(pl.col("strategy") != "most_frequent").with_columns(
        pl.lit(0, dtype=pl.Int64).alias("frequency")
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
        pl.concat([frequent, others])
        .with_columns(score.alias("score"), pl.col("value").hash().alias("value_hash"))
        .group_by("resolved_id", "field")
        .agg(
            pl.col("value", "source", "entity_key", "strategy").get(pl.col("score").arg_min()),
            (pl.col("value_hash").min() != pl.col("value_hash").max()).alias("conflict"),
        )
        .with_columns(pl.col("field").cast(pl.String))
    )


def build_golden_profiles(
    spec: Spec,
    records: pl.DataFrame,
    identifiers: pl.DataFrame,
    membership: pl.DataFrame,
) -> pl.DataFrame:
    """One row per resolved_id: surviving values, their sources and audit columns."""
    candidates = observations(spec, records, identifiers, membership)
    winners = surviving_values(spec, candidates)
    fields = spec.golden_fields
    values = _wide(winners, "value", fields, "")
    sources = _wide(winners, "source", fields, "_source")
    conflicts = (
        winners.filter(pl.col("conflict"))
        .sort("field")
        .group_by("resolved_id")
        .agg((pl.col("field") + ":" + pl.col("strategy")).alias("conflict_rules_applied"))
    )
    audit = _audit(records, membership)
    as_of = records.get_column("updated_at").max()
    profiles = (
        audit.join(values, on="resolved_id", how="left")
        .join(sources, on="resolved_id", how="left")
        .join(conflicts, on="resolved_id", how="left")
        .with_columns(
            pl.col("conflict_rules_applied").fill_null(pl.lit([], dtype=pl.List(pl.String)))
        )
    )
    profiles = profiles.with_columns(_quality_score(fields, as_of).alias("quality_score"))
    ordered = (
        ["resolved_id", *fields, *(f"{f}_source" for f in fields)]
        + ["record_count", "source_systems", "conflict_rules_applied", "quality_score"]
        + ["created_at", "last_updated_at"]
    )
    return profiles.select(ordered).sort("resolved_id")


def _wide(winners: pl.DataFrame, column: str, fields: list[str], suffix: str) -> pl.DataFrame:
    """Pivot one column of the winners to one column per field (missing fields → null)."""
    wide = winners.pivot(on="field", index="resolved_id", values=column)
    missing = [pl.lit(None, dtype=pl.String).alias(f) for f in fields if f not in wide.columns]
    return wide.with_columns(missing).select(
        "resolved_id", *(pl.col(f).alias(f + suffix) for f in fields)
    )


def _audit(records: pl.DataFrame, membership: pl.DataFrame) -> pl.DataFrame:
    return (
        membership.select("entity_key", "resolved_id")
        .join(records.select("entity_key", "source", "updated_at"), on="entity_key")
        .group_by("resolved_id")
        .agg(
            pl.len().cast(pl.UInt32).alias("record_count"),
            pl.col("source").unique().sort().alias("source_systems"),
            pl.col("updated_at").min().alias("created_at"),
            pl.col("updated_at").max().alias("last_updated_at"),
        )
    )


def _quality_score(fields: list[str], as_of: object) -> pl.Expr:
    """Completeness (share of golden fields filled) blended with recency of last update."""
    completeness = pl.sum_horizontal([pl.col(f).is_not_null() for f in fields]) / len(fields)
    if as_of is None:
        recency = pl.lit(0.0)
    else:
        age_days = (pl.lit(as_of) - pl.col("last_updated_at")).dt.total_days()
        recency = (1 - age_days / RECENCY_HORIZON_DAYS).clip(0, 1).fill_null(0.0)
    score = COMPLETENESS_WEIGHT * completeness + (1 - COMPLETENESS_WEIGHT) * recency
    return score.round(3)
