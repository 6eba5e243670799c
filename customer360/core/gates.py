"""The quality gates a run must pass before it publishes its clusters.

They are judged on the *proposed* state — the membership, clusters and lineage a run
has computed but not yet written — so that a run that fails one leaves every published
table as it was: an over-merged graph or a reshuffle of customers is never visible,
not even for the moment between writing a table and checking it.
"""

from __future__ import annotations

from typing import NamedTuple

import polars as pl


class Gate(NamedTuple):
    passed: bool
    figures: dict[str, int | float]


def largest_cluster_gate(clusters: pl.DataFrame, max_size: int) -> Gate:
    """No cluster larger than ``max_size``: bigger ones are almost always over-merges."""
    sizes = clusters.get_column("size")
    largest = int(sizes.max() or 0)
    return Gate(
        largest <= max_size,
        {
            "largest_cluster": largest,
            "max_cluster_size": max_size,
            "clusters_over_limit": int((sizes > max_size).sum()),
        },
    )


def moved_share_gate(lineage: pl.DataFrame | pl.LazyFrame, max_moved: float) -> Gate:
    """At most ``max_moved`` of the records that existed before change resolved_id.

    ``lineage`` is this run's (entity_key, previous_resolved_id, resolved_id), or a plan
    of it; records that are new or removed do not count either way.
    """
    counts = (
        lineage.lazy()
        .drop_nulls(["previous_resolved_id", "resolved_id"])
        .select(
            pl.len().alias("existing_records"),
            (pl.col("previous_resolved_id") != pl.col("resolved_id")).sum().alias("moved"),
        )
        .collect()
        .row(0, named=True)
    )
    existing, moved = int(counts["existing_records"]), int(counts["moved"] or 0)
    share = moved / existing if existing else 0.0
    return Gate(
        share <= max_moved,
        {
            "existing_records": existing,
            "moved": moved,
            "moved_share": round(share, 4),
            "max_moved_share": max_moved,
        },
    )
