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

from customer360.core.frames import aligned_or_joined
from customer360.core.keys import hashed_when_distinct
from customer360.core.spec import Spec

# Scores combine a primary criterion and a rank tie-break in one Int64: rank < 2**32.
SCORE_SCALE = 2**32


def resolve_traits(
    spec: Spec,
    traits: pl.DataFrame | pl.LazyFrame,
    records: pl.DataFrame,
    membership: pl.DataFrame,
) -> pl.LazyFrame:
    """The winning observation per (resolved_id, attribute), with the strategy that chose it
    and whether the cluster's records disagreed (``conflict``). ``records`` need
    entity_key, source, trust and updated_at.

    Clusters and attributes are numbered inside the step, so that the millions of
    observations are grouped by one integer instead of by two strings. ``traits`` may
    be lazy (a scan of the stored table): the winners are chosen from numbers alone —
    ranks, and each value's length and hash — and of the text only the values are read,
    to gather the winning ones; a winner's provenance (entity_key, source, observed_at)
    is its record's, gathered from ``records``.

    The result is a plan over the winners' numbers: streamed into its table (see
    ``ArtifactStore.write``), its text columns are gathered a few thousand rows at a time
    instead of all at once (at ten million records, 1.5 GB never held).
    """
    fields = spec.golden_fields
    members, cluster_ids = _record_ranks(records, membership)
    # observations find their record's ranks by the hash of its key (see core.keys)
    key = hashed_when_distinct(records.get_column("entity_key"))
    candidates = (
        traits.lazy()
        .with_row_index("row")
        .select(
            "row",
            key("entity_key"),
            pl.col("attribute").cast(pl.Enum(fields)).to_physical().alias("attribute"),
            pl.col("value").str.len_chars().alias("length"),
            pl.col("value").hash().alias("value_hash"),
        )
        .join(
            members.lazy().select(
                key("entity_key"),
                pl.int_range(pl.len(), dtype=pl.UInt32).alias("member"),
                "cluster",
                "trust_rank",
                "recency_rank",
            ),
            on="entity_key",
        )
    )
    # the winners in table order, so that their values are gathered in one pass
    winners = _winners(spec, candidates).sort("row")
    strategies = pl.Series([spec.strategy(field) for field in fields], dtype=pl.String)
    attribute = pl.col("group") % len(fields)
    values = traits.lazy().select("value").collect().get_column("value")
    member = pl.col("member")
    return winners.lazy().select(
        pl.lit(cluster_ids).gather(pl.col("group") // len(fields)).alias("resolved_id"),
        pl.lit(pl.Series(fields, dtype=pl.String)).gather(attribute).alias("attribute"),
        pl.lit(values).gather(pl.col("row")).alias("value"),
        pl.lit(strategies).gather(attribute).alias("strategy"),
        pl.lit(members.get_column("source")).gather(member).alias("source"),
        pl.lit(members.get_column("entity_key")).gather(member).alias("entity_key"),
        pl.lit(members.get_column("updated_at")).gather(member).alias("observed_at"),
        "conflict",
    )


def _record_ranks(
    records: pl.DataFrame, membership: pl.DataFrame
) -> tuple[pl.DataFrame, pl.Series]:
    """Each record's provenance (entity_key, source, updated_at), cluster number and two
    integer ranks, so that choosing a winner is an integer comparison: ``trust_rank``
    (most trusted, then most recent, then entity_key) and ``recency_rank`` (most recent,
    then most trusted, then entity_key). Also the resolved_id of every cluster number."""
    by_trust = ["trust", "updated_at", "entity_key"]
    by_recency = ["updated_at", "trust", "entity_key"]
    members = aligned_or_joined(
        records.select("entity_key", "source", "trust", "updated_at"),
        membership.select("entity_key", "resolved_id"),
        on="entity_key",
    )
    clusters = members.select(pl.col("resolved_id").unique()).with_row_index("cluster")
    cluster = (
        members.select("resolved_id")
        .join(clusters, on="resolved_id", how="left", maintain_order="left")
        .get_column("cluster")
    )
    ranks = members.select(
        "entity_key",
        "source",
        "updated_at",
        cluster,
        _rank(by_trust, descending=[False, True, False]).alias("trust_rank"),
        _rank(by_recency, descending=[True, False, False]).alias("recency_rank"),
    )
    return ranks, clusters.get_column("resolved_id")


def _rank(keys: list[str], descending: list[bool]) -> pl.Expr:
    """Position of each row in the given order (0 = first), nulls last."""
    order = pl.int_range(pl.len(), dtype=pl.UInt32).sort_by(
        keys, descending=descending, nulls_last=True
    )
    return order.arg_sort()


def _winners(spec: Spec, candidates: pl.LazyFrame) -> pl.DataFrame:
    """The winning observation (``row``, and its record: ``member``) per (cluster,
    attribute) ``group``, and whether the group's values disagree (``conflict``).

    Every strategy is reduced to one integer score per observation (lower wins): its
    primary criterion, then the trust rank as tie-break; a record observes an attribute
    once, so no two observations of a group share a score. The winner is the row with
    the lowest score in its group, kept by a filter against the group's minimum: window
    expressions over the integer group, far cheaper here than a group-by that picks one
    row out of each of two million groups, and no sort of the whole table. Values are
    compared by their hash, both to count them (most_frequent) and to see whether a
    group's values disagree. Only (group, row, member, score, hash) is ever held for every
    observation.
    """
    fields = spec.golden_fields
    codes = {
        strategy: [i for i, field in enumerate(fields) if spec.strategy(field) == strategy]
        for strategy in ("trust", "most_recent", "most_frequent")
    }
    attribute = pl.col("attribute")
    group = pl.col("cluster").cast(pl.UInt64) * len(fields) + attribute
    # Values are counted per group only where the strategy asks for it (most_frequent);
    # the other rows all fall in one null partition, whose count is never used.
    counts_values = attribute.is_in(codes["most_frequent"])
    frequency = pl.len().over(
        pl.when(counts_values).then(group), pl.when(counts_values).then(pl.col("value_hash"))
    )
    trust_rank = pl.col("trust_rank").cast(pl.Int64)
    primary = (
        pl.when(attribute.is_in(codes["trust"]))
        .then(trust_rank)
        .when(attribute.is_in(codes["most_recent"]))
        .then(pl.col("recency_rank").cast(pl.Int64))
        .when(counts_values)
        .then(-frequency.cast(pl.Int64))
        .otherwise(-pl.col("length").cast(pl.Int64))
    )
    secondary = (
        pl.when(attribute.is_in(codes["trust"] + codes["most_recent"]))
        .then(0)
        .otherwise(trust_rank)
    )
    value_hash, score = pl.col("value_hash"), pl.col("score")
    # All windows in one context, over one materialized group column, so that its
    # partition is found once for all three of them.
    return (
        candidates.select(
            group.alias("group"),
            "row",
            "member",
            (primary * SCORE_SCALE + secondary).alias("score"),
            "value_hash",
        )
        .select(
            "group",
            "row",
            "member",
            (score == score.min().over("group")).alias("wins"),
            (value_hash.min().over("group") != value_hash.max().over("group")).alias("conflict"),
        )
        .filter("wins")
        .select("group", "row", "member", "conflict")
        .collect()
    )
