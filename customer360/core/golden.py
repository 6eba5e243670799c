"""Golden profiles: one wide row per resolved customer from its resolved traits, with
the source of every value, audit columns and a data-quality score."""

from __future__ import annotations

from typing import get_args

import polars as pl

from customer360.core.frames import aligned_or_joined
from customer360.core.spec import Spec, Strategy

# How far back a last update still counts as recent when scoring data quality.
RECENCY_HORIZON_DAYS = 365
COMPLETENESS_WEIGHT = 0.8
# Up to this many sources, a cluster's sources are collected as the bits of one UInt64.
SOURCE_MASK_BITS = 64
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
    records: pl.DataFrame | pl.LazyFrame,
    membership: pl.DataFrame | pl.LazyFrame,
) -> pl.DataFrame:
    """One row per resolved_id: surviving values, their sources and audit columns.

    Each input may be a scan of the stored table. ``resolved_traits`` is read once,
    already joined to the profiles' row numbers, and never held twice; ``records`` and
    ``membership`` are read for the audit columns alone, and let go before the winners
    are read and pivoted (at ten million records, 1.5 GB no longer held beside them).
    """
    return _scored(
        spec.golden_fields, _unscored(spec, resolved_traits, records, membership), records
    )


def update_golden_profiles(
    spec: Spec,
    previous: pl.DataFrame | pl.LazyFrame,
    resolved_traits: pl.DataFrame | pl.LazyFrame,
    records: pl.DataFrame | pl.LazyFrame,
    membership: pl.DataFrame | pl.LazyFrame,
    touched: pl.Series,
) -> pl.DataFrame:
    """The golden profiles with only the ``touched`` customers' built again: the others
    are ``previous`` (the last table, built from the winners survivorship started from),
    in which only the quality score is computed again. Equal to
    :func:`build_golden_profiles` over everything.

    A profile depends on nothing but its cluster's winners and records, except for its
    quality score, which measures recency against the latest update of every record —
    a date a new batch moves for every customer. ``touched`` names every customer whose
    winners or records changed, the customers gone among them.
    """
    ids = touched.implode()
    members = (
        membership.lazy()
        .select("entity_key", "resolved_id")
        .filter(pl.col("resolved_id").is_in(ids))
        .collect()
    )
    their_records = records.lazy().filter(
        pl.col("entity_key").is_in(members.get_column("entity_key").implode())
    )
    fresh = _unscored(
        spec,
        resolved_traits.lazy().filter(pl.col("resolved_id").is_in(ids)),
        their_records,
        members,
    )
    carried = previous.lazy().filter(~pl.col("resolved_id").is_in(ids)).select(fresh.columns)
    profiles = carried.collect().merge_sorted(fresh, key="resolved_id")
    return _scored(spec.golden_fields, profiles, records)


def _scored(
    fields: list[str], profiles: pl.DataFrame, records: pl.DataFrame | pl.LazyFrame
) -> pl.DataFrame:
    """The profiles with their quality score, as of the latest update of ``records``, in
    the table's column order."""
    as_of = records.lazy().select(pl.col("updated_at").max()).collect().item()
    profiles = profiles.with_columns(_quality_score(fields, as_of).alias("quality_score"))
    ordered = ["resolved_id", *fields, *(f"{f}_source" for f in fields), *AUDIT_COLUMNS]
    return profiles.select(ordered)


def _unscored(
    spec: Spec,
    resolved_traits: pl.DataFrame | pl.LazyFrame,
    records: pl.DataFrame | pl.LazyFrame,
    membership: pl.DataFrame | pl.LazyFrame,
) -> pl.DataFrame:
    """The profiles of the clusters in ``membership``, sorted by resolved_id, without
    their quality score (see :func:`build_golden_profiles`)."""
    fields = spec.golden_fields
    profiles = _audit(records, membership)
    # The sorted ids as the categories of an Enum: a winner's category number is its
    # profile's position, found without a join on the text ids.
    position = pl.col("resolved_id").cast(pl.Enum(profiles.get_column("resolved_id")))
    # Attribute and strategy, a few names repeated on every winner, are held as Enum
    # codes, made as the table streams past: their text is spelled out only for the
    # conflicts.
    winners = (
        resolved_traits.lazy()
        .with_columns(
            position.to_physical().alias("position"),
            pl.col("attribute").cast(pl.Enum(fields)),
            pl.col("strategy").cast(pl.Enum(get_args(Strategy))),
        )
        .drop("resolved_id")
        .collect(engine="streaming")
    )
    conflicts = (
        winners.filter(pl.col("conflict"))
        .select("position", pl.col("attribute", "strategy").cast(pl.String))
        .sort("attribute")
        .group_by("position")
        .agg((pl.col("attribute") + ":" + pl.col("strategy")).alias("conflict_rules_applied"))
    )
    profiles = (
        profiles.with_row_index("position")
        .with_columns(_wide(winners, fields, profiles.height))
        .join(conflicts, on="position", how="left", maintain_order="left")
        .with_columns(
            pl.col("conflict_rules_applied").fill_null(pl.lit([], dtype=pl.List(pl.String)))
        )
    )
    return profiles.drop("position")


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


def _audit(
    records: pl.DataFrame | pl.LazyFrame, membership: pl.DataFrame | pl.LazyFrame
) -> pl.DataFrame:
    """Per resolved_id, in the order of the ids: record count, the sorted distinct
    sources, first and last update.

    The sources are gathered as a bit mask per cluster (one integer OR in the group-by,
    no list per cluster), and each of the few distinct masks is spelled out once."""
    members = aligned_or_joined(
        membership.lazy().select("entity_key", "resolved_id").collect(),
        records.lazy().select("entity_key", "source", "updated_at").collect(),
        on="entity_key",
    )
    sources = members.get_column("source").unique().sort()
    as_mask = sources.len() <= SOURCE_MASK_BITS
    systems = (
        pl.lit(2, dtype=pl.UInt64)
        .pow(pl.col("source").cast(pl.Enum(sources)).to_physical())
        .bitwise_or()
        .alias("source_mask")
        if as_mask
        else pl.col("source").unique().sort().alias("source_systems")
    )
    audit = (
        members.lazy()
        .group_by("resolved_id")
        .agg(
            pl.len().cast(pl.UInt32).alias("record_count"),
            systems,
            pl.col("updated_at").min().alias("created_at"),
            pl.col("updated_at").max().alias("last_updated_at"),
        )
        .sort("resolved_id")
        .collect()
    )
    return _spelled_out(audit, sources) if as_mask else audit


def _spelled_out(audit: pl.DataFrame, sources: pl.Series) -> pl.DataFrame:
    """``source_mask`` replaced by ``source_systems``: the names of its bits, sorted."""
    bits = sources.to_frame("source").with_row_index("bit")
    names = (
        audit.select(pl.col("source_mask").unique())
        .join(bits, how="cross")
        .filter(pl.col("source_mask") // pl.lit(2, dtype=pl.UInt64).pow(pl.col("bit")) % 2 == 1)
        .group_by("source_mask")
        .agg(pl.col("source").sort().alias("source_systems"))
    )
    return (
        audit.join(names, on="source_mask", how="left", maintain_order="left")
        .drop("source_mask")
        .select("resolved_id", "record_count", "source_systems", "created_at", "last_updated_at")
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
