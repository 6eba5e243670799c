"""Golden profiles: one wide row per resolved customer from its resolved traits, with
the source of every value, audit columns and a data-quality score."""

from __future__ import annotations

import polars as pl

from customer360.core.spec import Spec

# How far back a last update still counts as recent when scoring data quality.
RECENCY_HORIZON_DAYS = 365
COMPLETENESS_WEIGHT = 0.8
AUDIT_COLUMNS = [
    "record_count",
    "source_systems",
    "conflict_rules_applied",
    "quality_score",
    "created_at",
    "last_updated_at",
]


def build_golden_profiles(
    spec: Spec,
    resolved_traits: pl.DataFrame,
    records: pl.DataFrame,
    membership: pl.DataFrame,
) -> pl.DataFrame:
    """One row per resolved_id: surviving values, their sources and audit columns."""
    fields = spec.golden_fields
    values = _wide(resolved_traits, "value", fields, "")
    sources = _wide(resolved_traits, "source", fields, "_source")
    conflicts = (
        resolved_traits.filter(pl.col("conflict"))
        .sort("attribute")
        .group_by("resolved_id")
        .agg((pl.col("attribute") + ":" + pl.col("strategy")).alias("conflict_rules_applied"))
    )
    as_of = records.get_column("updated_at").max()
    profiles = (
        _audit(records, membership)
        .join(values, on="resolved_id", how="left")
        .join(sources, on="resolved_id", how="left")
        .join(conflicts, on="resolved_id", how="left")
        .with_columns(
            pl.col("conflict_rules_applied").fill_null(pl.lit([], dtype=pl.List(pl.String)))
        )
    )
    profiles = profiles.with_columns(_quality_score(fields, as_of).alias("quality_score"))
    ordered = ["resolved_id", *fields, *(f"{f}_source" for f in fields), *AUDIT_COLUMNS]
    return profiles.select(ordered).sort("resolved_id")


def _wide(winners: pl.DataFrame, column: str, fields: list[str], suffix: str) -> pl.DataFrame:
    """Pivot one column of the winners to one column per field (missing fields → null)."""
    wide = winners.pivot(on="attribute", index="resolved_id", values=column)
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
