"""The ``customer_360`` table: one row per customer with the golden values and what the
business asks of them next — how many records each source holds, when the customer was
first and last seen, how much they are worth and whether they are still active.

Value tiers and lifecycle stages are configured bands (``customer_360`` in the spec),
evaluated as one ``when`` chain each, first matching band wins:
- value tier: the first tier whose ``above`` is strictly below the lifetime value;
- lifecycle: the first stage whose ``within_days`` is at least the days since the last
  activity; a customer never seen active falls into the last stage.

Ages are measured against one as-of date — the spec's, or the latest update in the
data — so that re-running on the same data gives the same segments whatever the
wall-clock time.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from customer360.core.frames import aligned_or_joined
from customer360.core.golden import AUDIT_COLUMNS
from customer360.core.keys import positions_in
from customer360.core.spec import CustomerView

GOLDEN_AUDIT_COLUMNS = frozenset(AUDIT_COLUMNS)


def build_customer_360(
    view: CustomerView,
    golden: pl.DataFrame | pl.LazyFrame,
    records: pl.DataFrame,
    membership: pl.DataFrame,
    sources: list[str],
    value_measure: str | None,
) -> pl.DataFrame:
    """One row per golden profile: golden values, record counts per source, activity
    dates, lifetime value and the value and lifecycle segments. ``golden`` may be a scan
    of the stored table: only its value columns are read."""
    latest = records.get_column("updated_at").max()
    as_of = _as_of(view.as_of if view.as_of is not None else latest)
    activity = _cluster_activity(records, membership, sources, value_measure)
    counts = [f"{source}_records" for source in sources]
    days = (as_of - pl.col("last_seen")).dt.total_days()
    values = (
        golden.lazy()
        .select("resolved_id", *golden_value_columns(golden.collect_schema().names()))
        .collect()
    )
    # a left join that keeps the profiles' order: each profile's activity row, looked up
    # by hash
    rows = positions_in(values.get_column("resolved_id"), activity.get_column("resolved_id"))
    table = (
        pl.concat(
            [values, activity.drop("resolved_id").select(pl.all().gather(rows))],
            how="horizontal",
        )
        .with_columns(
            *(pl.col(c).fill_null(0).cast(pl.UInt32) for c in counts),
            pl.col("lifetime_value").fill_null(0.0),
        )
        .with_columns(days.alias("days_since_last_activity"))
        .with_columns(
            value_tier(view).alias("value_tier"),
            lifecycle_status(view).alias("lifecycle_status"),
            as_of.alias("as_of"),
        )
    )
    # The profiles are stored sorted by resolved_id: one pass proves it, and sorting
    # would only move every column's values to where they already are.
    if table.get_column("resolved_id").is_sorted():
        return table
    return table.sort("resolved_id")


def golden_value_columns(names: list[str]) -> list[str]:
    """The golden field columns among ``names`` (the columns of golden_profiles): neither
    their ``<field>_source`` twins nor audit columns."""
    columns = set(names)
    return [
        c
        for c in names
        if c != "resolved_id"
        and c not in GOLDEN_AUDIT_COLUMNS
        and not (c.endswith("_source") and c.removesuffix("_source") in columns)
    ]


def value_tier(view: CustomerView) -> pl.Expr:
    """The first tier whose ``above`` is strictly below ``lifetime_value``, else the last."""
    *banded, catch_all = view.value_tiers
    return _first_band(
        [(pl.col("lifetime_value") > tier.above, tier.name) for tier in banded], catch_all.name
    )


def lifecycle_status(view: CustomerView) -> pl.Expr:
    """The first stage whose ``within_days`` covers the days since the last activity,
    else the last stage (also when there was no activity at all)."""
    *banded, catch_all = view.lifecycle
    days = pl.col("days_since_last_activity")
    return _first_band(
        [(days <= stage.within_days, stage.name) for stage in banded], catch_all.name
    )


def _first_band(conditions: list[tuple[pl.Expr, str]], otherwise: str) -> pl.Expr:
    """``when c1 then n1 when c2 then n2 … otherwise``; a null condition does not match."""
    if not conditions:
        return pl.lit(otherwise)
    (condition, name), *rest = conditions
    chain = pl.when(condition).then(pl.lit(name))
    for condition, name in rest:
        chain = chain.when(condition).then(pl.lit(name))
    return chain.otherwise(pl.lit(otherwise))


def _cluster_activity(
    records: pl.DataFrame,
    membership: pl.DataFrame,
    sources: list[str],
    value_measure: str | None,
) -> pl.DataFrame:
    """Per resolved_id: records per source, first/last update and the summed measure."""
    if value_measure is not None and value_measure not in records.columns:
        raise ValueError(
            f"value measure '{value_measure}' is not a column of records; "
            "map it under sources[].measures"
        )
    # A measure should arrive as Float64; the cast also sums one that arrives as numeric text.
    value = pl.col(value_measure).cast(pl.Float64).sum() if value_measure else pl.lit(0.0)
    used = list(dict.fromkeys(["entity_key", "source", "updated_at", value_measure or "source"]))
    # sources as their number in ``sources``: the counts compare integers, not text
    source = pl.col("source").cast(pl.Enum(sources), strict=False).to_physical()
    return (
        aligned_or_joined(
            membership.select("entity_key", "resolved_id"), records.select(used), on="entity_key"
        )
        .with_columns(source.alias("source"))
        .group_by("resolved_id")
        .agg(
            *(
                (pl.col("source") == code).sum().alias(f"{s}_records")
                for code, s in enumerate(sources)
            ),
            pl.col("updated_at").min().alias("first_seen"),
            pl.col("updated_at").max().alias("last_seen"),
            value.alias("lifetime_value"),
        )
    )


def _as_of(value: datetime | None) -> pl.Expr:
    """The as-of moment as a literal; a time zone is dropped, as records.py drops them."""
    if value is not None and value.tzinfo is not None:
        value = value.replace(tzinfo=None)
    return pl.lit(value, dtype=pl.Datetime("us"))
