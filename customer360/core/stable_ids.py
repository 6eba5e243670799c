"""Stable resolved ids across runs, and the lineage of every record's id.

A customer keeps its resolved_id from run to run. Components are recomputed from the
whole graph each run (so the partition of records never depends on the order batches
arrived in), then ids are handed down:

- every previous id goes to the component holding its *id record* (the record whose
  entity_key it is) or, when that record is gone, the previous cluster's first member
  in canonical order — so when a cluster splits, the part holding its oldest member
  keeps the id;
- a component that inherits several ids (a merge) keeps the oldest one, by the order
  ids were first issued (the registry), and the others retire;
- a component that inherits none gets a new id: its first record's entity_key, made
  unique against every id ever issued (a retired id is never reused).

The registry (resolved_id, issued_seq, issued_at) is state kept between runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import numpy as np
import polars as pl

from customer360.core.frames import aligned_or_joined

# The state file (under artifacts/state/) that keeps every id ever issued.
ID_REGISTRY_STATE = "resolved_id_registry"
REGISTRY_SCHEMA = {"resolved_id": pl.String, "issued_seq": pl.Int64, "issued_at": pl.Datetime("us")}
LINEAGE_SCHEMA = {
    "entity_key": pl.String,
    "previous_resolved_id": pl.String,
    "resolved_id": pl.String,
    "change_type": pl.String,
}
CHANGE_TYPES = ("NEW", "MOVED", "MERGED", "SPLIT", "UNCHANGED", "REMOVED")


def assign_resolved_ids(
    entity_keys: pl.Series,
    labels: np.ndarray,
    previous: pl.DataFrame | None,
    registry: pl.DataFrame | None,
    now: datetime,
) -> tuple[pl.Series, pl.DataFrame]:
    """The resolved_id of every record (in the given canonical order) and the new registry.

    ``labels`` are component numbers 0..n-1 aligned with ``entity_keys``; ``previous`` is the
    last published membership (entity_key, resolved_id).
    """
    registry = with_published_ids(registry, previous, now)
    current = pl.DataFrame({"entity_key": entity_keys, "component": labels}).with_row_index(
        "position"
    )
    kept = _inherited_ids(current, previous, registry)
    # current is in canonical order: a component's first row is its first record
    firsts = current.filter(pl.col("component").is_first_distinct()).select(
        "component", pl.col("entity_key").alias("candidate")
    )
    fresh = firsts.join(kept, on="component", how="anti").sort("candidate")
    taken = pl.concat([registry.get_column("resolved_id"), kept.get_column("resolved_id")])
    fresh = fresh.with_columns(_unique_ids(fresh.get_column("candidate"), taken))
    # every component has exactly one id, and components are numbered 0..n-1: sorted
    # by component, the ids are looked up by position instead of joined and re-sorted
    ids = pl.concat([kept, fresh.select("component", "resolved_id")]).sort("component")
    resolved = ids.get_column("resolved_id").gather(current.get_column("component"))
    issued = fresh.select(
        "resolved_id",
        pl.lit(_next_seq(registry), dtype=pl.Int64).alias("issued_seq"),
        pl.lit(now, dtype=pl.Datetime("us")).alias("issued_at"),
    )
    return resolved, pl.concat([registry, issued])


def with_published_ids(
    registry: pl.DataFrame | None, previous: pl.DataFrame | None, now: datetime
) -> pl.DataFrame:
    """The registry, plus any published id it lacks (a run stopped between publishing
    membership and saving the registry): every id in use counts as issued. Public for an
    incremental run, which heals the registry against the whole membership and then
    hands ids to the records of the touched components only."""
    registry = registry if registry is not None else pl.DataFrame(schema=REGISTRY_SCHEMA)
    if previous is None:
        return registry
    # usually every id is known: looked up among the issued ones, the published ids are
    # not made unique first (half the work)
    known = previous.get_column("resolved_id").is_in(registry.get_column("resolved_id").implode())
    if known.all():
        return registry
    unknown = previous.filter(~known).select("resolved_id").unique().sort("resolved_id")
    healed = unknown.select(
        "resolved_id",
        pl.lit(_next_seq(registry), dtype=pl.Int64).alias("issued_seq"),
        pl.lit(now, dtype=pl.Datetime("us")).alias("issued_at"),
    )
    return pl.concat([registry, healed])


def _inherited_ids(
    current: pl.DataFrame, previous: pl.DataFrame | None, registry: pl.DataFrame
) -> pl.DataFrame:
    """(component, resolved_id) for components that keep a previous id."""
    if previous is None or previous.is_empty():
        return pl.DataFrame(
            schema={"component": current.schema["component"], "resolved_id": pl.String}
        )
    # Each previous id is claimed by the component of its id record if that record is
    # still there, else of its first record in canonical order: the smallest of the
    # record positions, where the id record's position is moved below all others.
    records = current.height
    is_id_record = pl.col("entity_key") == pl.col("previous_id")
    claim = pl.col("position").cast(pl.Int64) - pl.when(is_id_record).then(records).otherwise(0)
    claims = (
        aligned_or_joined(
            current,
            previous.select("entity_key", pl.col("resolved_id").alias("previous_id")),
            on="entity_key",
        )
        .group_by("previous_id")
        .agg(claim.min().alias("claim"))
    )
    claimed_at = (claims.get_column("claim") + records) % records
    claims = claims.with_columns(current.get_column("component").gather(claimed_at))
    # only a component claiming several ids (a merge) needs their order of issue: the
    # few such are sorted, not every id
    contested = pl.col("component").is_duplicated()
    oldest = (
        claims.filter(contested)
        .join(
            registry.select(pl.col("resolved_id").alias("previous_id"), "issued_seq"),
            on="previous_id",
            how="left",
        )
        .sort(["issued_seq", "previous_id"], nulls_last=True)
        .group_by("component", maintain_order=True)
        .first()
    )
    return pl.concat([claims.filter(~contested), oldest.select(claims.columns)]).select(
        "component", pl.col("previous_id").alias("resolved_id")
    )


def _unique_ids(candidates: pl.Series, taken: pl.Series) -> pl.Series:
    """Candidates as they are, unless already issued: then '<candidate>#<n>'.

    Collisions are rare (a retired id whose record now starts another cluster): they are
    found in one vectorised look-up, and only the colliding few are renamed one by one.
    """
    colliding = candidates.is_in(taken.implode())
    if not colliding.any():
        return candidates.alias("resolved_id")
    issued = set(taken.to_list())
    renamed = []
    for candidate in candidates.filter(colliding).to_list():
        renamed.append(unique_id(candidate, issued.__contains__))
        issued.add(renamed[-1])
    where = pl.int_range(len(candidates), dtype=pl.UInt32, eager=True).filter(colliding)
    fixed = candidates.clone().scatter(where, pl.Series(renamed, dtype=pl.String))
    return fixed.alias("resolved_id")


def unique_id(candidate: str, is_taken: Callable[[str], bool]) -> str:
    """A new cluster's id: its first record's entity_key, or '<entity_key>#<n>' with the
    smallest n from 2 when that was issued before — shared with the resolve service,
    which hands out ids in real time that later runs keep."""
    if not is_taken(candidate):
        return candidate
    suffix = 2
    while is_taken(f"{candidate}#{suffix}"):
        suffix += 1
    return f"{candidate}#{suffix}"


def with_realtime_assignments(
    previous: pl.DataFrame | pl.LazyFrame | None, assigned: pl.DataFrame, entity_keys: pl.Series
) -> pl.DataFrame | pl.LazyFrame | None:
    """The ids handed down to a run: the last published membership, plus the ids the
    resolve service assigned in real time to records that reach the graph for the first
    time (``assigned``: entity_key, resolved_id).

    To the assignment above such an id is a previous id like any other, so the record's
    cluster keeps it unless the batch's evidence merges it with an older customer (the
    oldest id wins) or splits the record off; lineage then says so. A record already in
    the published membership keeps its published id: that is the newer word.
    ``previous`` may be a scan: with nothing assigned it is handed on unread.
    """
    if assigned.is_empty():  # nothing to look up among millions of records
        return previous
    published = (
        previous.lazy().select("entity_key", "resolved_id").collect()
        if previous is not None
        else pl.DataFrame(schema={"entity_key": pl.String, "resolved_id": pl.String})
    )
    arriving = assigned.join(entity_keys.to_frame("entity_key"), on="entity_key", how="semi").join(
        published, on="entity_key", how="anti"
    )
    if arriving.is_empty():
        return previous
    return pl.concat([published, arriving.select("entity_key", "resolved_id")])


def _next_seq(registry: pl.DataFrame) -> int:
    return int(registry.get_column("issued_seq").max() or 0) + 1


def cluster_lineage(previous: pl.DataFrame | None, current: pl.DataFrame) -> pl.DataFrame:
    """Per record: previous and new resolved_id and what happened (see CHANGE_TYPES).

    SPLIT: the record's previous cluster now spans several clusters; MERGED: its new
    cluster gathers records of several previous clusters; MOVED: its id changed
    otherwise; NEW / REMOVED: the record appeared / disappeared.
    """
    before = (
        previous.select("entity_key", pl.col("resolved_id").alias("previous_resolved_id"))
        if previous is not None
        else pl.DataFrame(schema={"entity_key": pl.String, "previous_resolved_id": pl.String})
    )
    both = _side_by_side(before, current.select("entity_key", "resolved_id"))
    present = both.drop_nulls(["previous_resolved_id", "resolved_id"])
    # a cluster split (or merged) holds a record whose id changed, one of the few: only
    # the clusters of those records are counted, not every cluster
    moved = present.filter(pl.col("previous_resolved_id") != pl.col("resolved_id"))
    split = (
        present.filter(
            pl.col("previous_resolved_id").is_in(moved.get_column("previous_resolved_id").implode())
        )
        .group_by("previous_resolved_id")
        .agg(pl.col("resolved_id").n_unique() > 1)
    )
    merged = (
        present.filter(pl.col("resolved_id").is_in(moved.get_column("resolved_id").implode()))
        .group_by("resolved_id")
        .agg(pl.col("previous_resolved_id").n_unique() > 1)
    )
    split_ids = split.filter(pl.col("resolved_id")).get_column("previous_resolved_id")
    merged_ids = merged.filter(pl.col("previous_resolved_id")).get_column("resolved_id")
    change = (
        pl.when(pl.col("previous_resolved_id").is_null())
        .then(pl.lit("NEW"))
        .when(pl.col("resolved_id").is_null())
        .then(pl.lit("REMOVED"))
        .when(pl.col("previous_resolved_id").is_in(split_ids.implode()))
        .then(pl.lit("SPLIT"))
        .when(pl.col("resolved_id").is_in(merged_ids.implode()))
        .then(pl.lit("MERGED"))
        .when(pl.col("previous_resolved_id") != pl.col("resolved_id"))
        .then(pl.lit("MOVED"))
        .otherwise(pl.lit("UNCHANGED"))
    )
    return (
        both.with_columns(change.alias("change_type"))
        .select(list(LINEAGE_SCHEMA))
        .sort("entity_key")
    )


def _side_by_side(before: pl.DataFrame, current: pl.DataFrame) -> pl.DataFrame:
    """``before`` and ``current`` full-joined on entity_key: a published membership is
    in the records' order, so when no record came or went the two are put side by side
    after one comparison of their keys instead of joining millions of text keys."""
    if before.height == current.height and before.get_column("entity_key").equals(
        current.get_column("entity_key")
    ):
        return pl.concat([before, current.drop("entity_key")], how="horizontal")
    return before.join(current, on="entity_key", how="full", coalesce=True)


def accumulate_lineage(
    previous: pl.DataFrame | pl.LazyFrame | None,
    lineage: pl.DataFrame | pl.LazyFrame,
    run_id: str,
    recorded_at: datetime,
) -> pl.LazyFrame:
    """This run's lineage of every record, after the changes (not the UNCHANGED rows) of
    earlier runs: the table tells the story of every id without growing by N each run.
    ``previous`` may be a scan of the table, and the result is lazy: written as a stream,
    the earlier changes are never loaded whole (at ten million records, 1.5 GB)."""
    this_run = lineage.lazy().select(
        pl.lit(run_id).alias("run_id"),
        pl.lit(recorded_at, dtype=pl.Datetime("us")).alias("recorded_at"),
        *LINEAGE_SCHEMA,
    )
    if previous is None:
        return this_run
    changes = previous.lazy().filter(pl.col("change_type") != "UNCHANGED")
    return pl.concat([changes, this_run])
