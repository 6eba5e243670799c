"""Golden profiles: one wide row per resolved customer from its resolved traits, with
the source of every value, audit columns and a data-quality score."""

from __future__ import annotations

import polars as pl

from customer360.core.frames import aligned_or_joined
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
    resolved_traits: pl.DataFrame | pl.LazyFrame,
    records: pl.DataFrame,
    membership: pl.DataFrame,
) -> pl.DataFrame:
    """One row per resolved_id: surviving values, their sources and audit columns.

    ``resolved_traits`` may be a scan of the stored table: it is read once, already
    joined to the profiles' row numbers, and never held twice."""
    fields = spec.golden_fields
    profiles = _audit(records, membership).sort("resolved_id")
    winners = (
        resolved_traits.lazy()
        .join(profiles.lazy().select("resolved_id").with_row_index("position"), on="resolved_id")
        .collect()
    )
    conflicts = (
        winners.filter(pl.col("conflict"))
        .sort("attribute")
        .group_by("position")
        .agg((pl.col("attribute") + ":" + pl.col("strategy")).alias("conflict_rules_applied"))
    )
    as_of = records.get_column("updated_at").max()
    profiles = (
        profiles.with_row_index("position")
        .with_columns(_wide(winners, fields, profiles.height))
        .join(conflicts, on="position", how="left", maintain_order="left")
        .with_columns(
            pl.col("conflict_rules_applied").fill_null(pl.lit([], dtype=pl.List(pl.String)))
        )
    )
    profiles = profiles.with_columns(_quality_score(fields, as_of).alias("quality_score"))
    ordered = ["resolved_id", *fields, *(f"{f}_source" for f in fields), *AUDIT_COLUMNS]
    return profiles.select(ordered)


def _wide(winners: pl.DataFrame, fields: list[str], height: int) -> list[pl.Series]:
    """The winners' value and source as one column per field (``<field>`` and
    ``<field>_source``), ``height`` rows long, each winner at its ``position``; null
    where a profile has no value for the field.

    A pivot by hand: per field, the row of each position's winner is scattered into an
    index, and the columns are gathered through it — no hashing of the ids again.
    """
    attribute = winners.get_column("attribute").cast(pl.Enum(fields)).to_physical()
    positions = winners.get_column("position")
    rows = pl.int_range(winners.height, dtype=pl.UInt32, eager=True)
    nowhere = pl.repeat(None, height, dtype=pl.UInt32, eager=True)
    columns = []
    for code, field in enumerate(fields):
        present = attribute == code
        index = nowhere.clone().scatter(positions.filter(present), rows.filter(present))
        columns.append(winners.get_column("value").gather(index).alias(field))
        columns.append(winners.get_column("source").gather(index).alias(f"{field}_source"))
    return columns


def _audit(records: pl.DataFrame, membership: pl.DataFrame) -> pl.DataFrame:
    return (
        aligned_or_joined(
            membership.select("entity_key", "resolved_id"),
            records.select("entity_key", "source", "updated_at"),
            on="entity_key",
        )
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
