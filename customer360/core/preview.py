"""Dry run: what a real run would change, computed from the sources and the published
state without writing either. Uses exactly the functions of a real run for records,
identifiers, edges, probabilistic matches, the split and ids, so the preview and the run
that follows agree."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import polars as pl

from customer360.core.clusters import resolve_membership
from customer360.core.edges import build_edges, skipped_groups
from customer360.core.identifiers import build_identifiers
from customer360.core.matching import (
    Model,
    comparison_frame,
    identifier_prior,
    score_pairs,
    train_model,
)
from customer360.core.records import build_records
from customer360.core.spec import Spec
from customer360.core.splitting import split_over_merged
from customer360.core.stable_ids import (
    CHANGE_TYPES,
    cluster_lineage,
    with_realtime_assignments,
)

RESULT_COLUMNS = [
    "entity_key",
    "current_resolved_id",
    "proposed_resolved_id",
    "change_type",
    "current_cluster_size",
    "proposed_cluster_size",
]
EDGE_KEY = ["entity_key_a", "entity_key_b", "rule"]


class Preview(NamedTuple):
    results: pl.DataFrame
    summary: pl.DataFrame  # (metric, value)


def preview_changes(
    spec: Spec,
    extracts: dict[str, pl.DataFrame],
    current_membership: pl.DataFrame | None,
    current_edges: pl.DataFrame | None,
    registry: pl.DataFrame | None,
    now: datetime,
    realtime: pl.DataFrame | None = None,
    match_model: Model | None = None,
) -> Preview:
    """Proposed membership against the published one, per record and in summary.

    ``realtime`` (entity_key, resolved_id) are ids the resolve service handed out to
    records not yet in the graph: to the preview, as to the run, they are current ids.
    ``match_model`` is the model the next run would reuse; without one, and with the
    spec's matching on, the preview trains one as that run would (and keeps it nowhere).
    """
    records, _ = build_records(spec, extracts)
    identifiers = build_identifiers(spec, records)
    links = build_edges(records, identifiers, spec.corroboration)
    edges = links.edges
    matching = spec.matching
    if matching is not None and matching.enabled:
        frame = comparison_frame(records, matching)
        if match_model is None:
            match_model = train_model(frame, matching, identifier_prior(records, edges))
        matches = score_pairs(frame, match_model, matching.threshold).edges
        edges = pl.concat([edges, matches])
    current = current_membership
    if realtime is not None:
        current = with_realtime_assignments(current, realtime, records.get_column("entity_key"))
    kept = split_over_merged(records, edges, spec.splitting).kept
    proposed = resolve_membership(records, kept, current, registry, now).membership
    lineage = cluster_lineage(current, proposed)
    results = (
        lineage.rename(
            {"previous_resolved_id": "current_resolved_id", "resolved_id": "proposed_resolved_id"}
        )
        .join(_sizes(current, "current"), on="current_resolved_id", how="left")
        .join(_sizes(proposed, "proposed"), on="proposed_resolved_id", how="left")
        .select(RESULT_COLUMNS)
    )
    known_edges = current_edges.select(EDGE_KEY) if current_edges is not None else edges.clear()
    counts = dict(lineage.group_by("change_type").len().iter_rows())
    figures = {f"{change.lower()}_entities": counts.get(change, 0) for change in CHANGE_TYPES}
    figures |= {
        "edges_to_create": edges.select(EDGE_KEY).join(known_edges, on=EDGE_KEY, how="anti").height,
        "edges_to_remove": known_edges.join(edges.select(EDGE_KEY), on=EDGE_KEY, how="anti").height,
        "largest_proposed_cluster": int(
            proposed.group_by("resolved_id").len().get_column("len").max() or 0
        ),
        "groups_that_would_be_skipped": skipped_groups(identifiers, links.guarded_groups).height,
    }
    summary = pl.DataFrame(
        {"metric": list(figures), "value": list(figures.values())},
        schema={"metric": pl.String, "value": pl.Int64},
    )
    return Preview(results, summary)


def _sizes(membership: pl.DataFrame | None, which: str) -> pl.DataFrame:
    schema = {f"{which}_resolved_id": pl.String, f"{which}_cluster_size": pl.UInt32}
    if membership is None:
        return pl.DataFrame(schema=schema)
    return (
        membership.group_by("resolved_id")
        .len()
        .select(
            pl.col("resolved_id").alias(f"{which}_resolved_id"),
            pl.col("len").cast(pl.UInt32).alias(f"{which}_cluster_size"),
        )
    )
