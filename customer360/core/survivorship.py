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

_TIEBREAK = [("trust", False), ("updated_at", True), ("entity_key", False)]
_STRATEGY_KEYS: dict[str, list[tuple[str, bool]]] = {
    "trust": _TIEBREAK,
    "most_recent": [("updated_at", True), ("trust", False), ("entity_key", False)],
    "most_frequent": [("frequency", True), *_TIEBREAK],
    "longest": [("length", True), *_TIEBREAK],
}


def observations(spec: Spec, records: pl.DataFrame, identifiers: pl.DataFrame) -> pl.DataFrame:
    """Every candidate value for a golden field, with its provenance (long form).

    Identifiers contribute their normalized value as ``<type>_primary`` unless they are
    invalid or excluded placeholders; attributes contribute their mapped text.
    """
    provenance = records.select("entity_key", "source", "trust", "updated_at")
    attributes = [a for a in spec.attribute_names if a in records.columns]
    traits = (
        records.select("entity_key", *attributes)
        .unpivot(index="entity_key", variable_name="field", value_name="value")
        .cast({"value": pl.String})  # a spec without attributes unpivots to a Null column
    )
    identifier_values = identifiers.filter(pl.col("status").is_in(["linkable", "oversize"])).select(
        "entity_key", (pl.col("identifier_type") + "_primary").alias("field"), "value"
    )
    return (
        pl.concat([traits, identifier_values])
        .drop_nulls("value")
        .join(provenance, on="entity_key", how="inner")
    )


def surviving_values(spec: Spec, candidates: pl.DataFrame) -> pl.DataFrame:
    """The winning observation per (resolved_id, field), with the strategy that chose it.

    ``candidates`` are observations joined to their resolved_id.
    """
    strategies = pl.DataFrame(
        {"field": spec.golden_fields, "strategy": [spec.strategy(f) for f in spec.golden_fields]}
    )
    scored = candidates.join(strategies, on="field", how="inner").with_columns(
        pl.len().over("resolved_id", "field", "value").alias("frequency"),
        pl.col("value").str.len_chars().alias("length"),
        pl.col("value").n_unique().over("resolved_id", "field").alias("distinct_values"),
    )
    winners = []
    for strategy, keys in _STRATEGY_KEYS.items():
        part = scored.filter(pl.col("strategy") == strategy)
        if part.is_empty():
            continue
        names, descending = zip(*keys, strict=True)
        winners.append(
            part.sort(list(names), descending=list(descending), nulls_last=True).unique(
                ["resolved_id", "field"], keep="first", maintain_order=True
            )
        )
    columns = [
        "resolved_id",
        "field",
        "value",
        "source",
        "entity_key",
        "strategy",
        "distinct_values",
    ]
    if not winners:
        return scored.select(columns).clear()
    return pl.concat(winners).select(columns)


def build_golden_profiles(
    spec: Spec,
    records: pl.DataFrame,
    identifiers: pl.DataFrame,
    membership: pl.DataFrame,
) -> pl.DataFrame:
    """One row per resolved_id: surviving values, their sources and audit columns."""
    clusters = membership.select("entity_key", "resolved_id")
    candidates = observations(spec, records, identifiers).join(clusters, on="entity_key")
    winners = surviving_values(spec, candidates)
    fields = spec.golden_fields
    values = _wide(winners, "value", fields, "")
    sources = _wide(winners, "source", fields, "_source")
    conflicts = (
        winners.filter(pl.col("distinct_values") > 1)
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
