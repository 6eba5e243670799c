"""Golden-profile history as a slowly changing dimension of type 2.

Golden profiles are rebuilt from scratch on every run, so on their own they forget what
a customer looked like last month and why a profile disappeared. The history keeps one
row per version of each resolved_id's field values, with its validity interval and the
reason it was opened and closed:

- ``new``: a resolved_id seen for the first time;
- ``changed``: its field values changed;
- ``merged`` / ``split``: its values changed while its cluster gained records from
  (merged) or lost records to (split) other clusters, comparing this run's membership
  with the one the history was last updated with;
- ``removed``: a cluster whose records are in no cluster any more.

A cluster that disappears is closed with ``merged`` (all its former records are now in
one other cluster), ``split`` (in several) or ``removed``, and ``superseded_by`` names
the clusters that hold its former records, so lineage can be followed from an old
resolved_id to the current ones. Unchanged versions stay open and untouched, closed
versions are never rewritten: updating twice with the same inputs changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

NO_SUCCESSORS = pl.lit([], dtype=pl.List(pl.String))


def history_schema(fields: list[str]) -> dict[str, pl.DataType]:
    """The columns of the history, in order, for the given versioned fields."""
    return {
        "resolved_id": pl.String(),
        "version": pl.UInt32(),
        **{field: pl.String() for field in fields},
        "valid_from": pl.Datetime("us"),
        "valid_to": pl.Datetime("us"),
        "is_current": pl.Boolean(),
        "opened_by": pl.String(),
        "closed_by": pl.String(),
        "superseded_by": pl.List(pl.String()),
        "values_hash": pl.UInt64(),
    }


def values_hash(fields: list[str]) -> pl.Expr:
    """One UInt64 per row over the field values (null and empty text hash differently)."""
    return pl.struct(fields).hash(seed=0)


def update_history(
    previous: pl.DataFrame | None,
    golden: pl.DataFrame | pl.LazyFrame,
    fields: list[str],
    membership: pl.DataFrame,
    previous_membership: pl.DataFrame | None,
    as_of: datetime,
) -> pl.DataFrame:
    """The history after this run: new and changed profiles get a new current version,
    vanished ones are closed, everything else is carried over as it was."""
    schema = history_schema(fields)
    history = _conform(previous, schema, fields)
    now = _current_values(golden, fields)
    moves = _moved_records(membership, previous_membership)
    when = pl.lit(_naive_utc(as_of), dtype=pl.Datetime("us"))

    is_open = pl.col("is_current")
    carried_closed = history.filter(~is_open)
    open_before = history.filter(is_open).join(
        now.select("resolved_id", pl.col("values_hash").alias("_new_hash")),
        on="resolved_id",
        how="left",
    )
    # Recomputed rather than read back, so a stored hash from another Polars version
    # cannot make every profile look changed.
    unchanged = values_hash(fields) == pl.col("_new_hash")
    kept = open_before.filter(unchanged.fill_null(False)).drop("_new_hash")
    changed = open_before.filter(pl.col("_new_hash").is_not_null() & ~unchanged)
    vanished = open_before.filter(pl.col("_new_hash").is_null())

    reason = _change_reason(moves)
    closed_changed = changed.with_columns(
        reason.alias("closed_by"), NO_SUCCESSORS.alias("superseded_by")
    )
    closed_vanished = _close_vanished(vanished.drop("_new_hash"), moves)
    columns = list(schema)
    closed = pl.concat(
        [closed_changed.select(columns), closed_vanished.select(columns)]
    ).with_columns(when.alias("valid_to"), pl.lit(False).alias("is_current"))

    opened = _open_versions(now, history, kept, moves, fields).with_columns(
        when.alias("valid_from"),
        pl.lit(None, dtype=pl.Datetime("us")).alias("valid_to"),
        pl.lit(True).alias("is_current"),
        pl.lit(None, dtype=pl.String).alias("closed_by"),
        NO_SUCCESSORS.alias("superseded_by"),
    )
    parts = [carried_closed, kept, closed, opened]
    return pl.concat([part.select(columns).cast(schema) for part in parts]).sort(
        "resolved_id", "version"
    )


def _naive_utc(moment: datetime) -> datetime:
    """A time-zone aware moment as naive UTC, like every other timestamp in the tables."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _conform(
    previous: pl.DataFrame | None, schema: dict[str, pl.DataType], fields: list[str]
) -> pl.DataFrame:
    """The previous history with this run's fields (a field added since is null)."""
    if previous is None:
        return pl.DataFrame(schema=schema)
    missing = [pl.lit(None, dtype=pl.String).alias(f) for f in fields if f not in previous.columns]
    return previous.with_columns(missing).select(list(schema)).cast(schema)


def _current_values(golden: pl.DataFrame | pl.LazyFrame, fields: list[str]) -> pl.DataFrame:
    """resolved_id, the fields as text and their hash (a field golden lacks is null).
    ``golden`` may be a scan of the stored table: only these columns are read."""
    present = set(golden.collect_schema().names())
    columns = [
        pl.col(f).cast(pl.String) if f in present else pl.lit(None, dtype=pl.String).alias(f)
        for f in fields
    ]
    return (
        golden.lazy()
        .select("resolved_id", *columns)
        .with_columns(values_hash(fields).alias("values_hash"))
        .collect()
    )


def _moved_records(membership: pl.DataFrame, previous: pl.DataFrame | None) -> pl.DataFrame:
    """Records present in both memberships whose cluster changed: from → to."""
    schema = {"entity_key": pl.String, "moved_from": pl.String, "moved_to": pl.String}
    if previous is None:
        return pl.DataFrame(schema=schema)
    # A record whose (entity_key, resolved_id) is found on the other side did not move:
    # the pairs are hashed to integers and looked up, and only the few others are joined
    # on their text keys (a move hides only if its pair's hash collides with another's).
    pair = pl.struct("entity_key", "resolved_id").hash()
    before_pairs, after_pairs = (
        previous.select(pair).to_series(),
        membership.select(pair).to_series(),
    )
    before = previous.filter(~before_pairs.is_in(after_pairs.implode())).select(
        "entity_key", pl.col("resolved_id").alias("moved_from")
    )
    after = membership.filter(~after_pairs.is_in(before_pairs.implode())).select(
        "entity_key", pl.col("resolved_id").alias("moved_to")
    )
    return (
        before.join(after, on="entity_key", how="inner")
        .filter(pl.col("moved_from") != pl.col("moved_to"))
        .select(list(schema))
        .cast(schema)
    )


def _change_reason(moves: pl.DataFrame, otherwise: str = "changed") -> pl.Expr:
    """Why a cluster that still exists gets a new version: merged if it gained records
    from other clusters, split if it lost records to them, else ``otherwise``."""
    gained = pl.col("resolved_id").is_in(moves.get_column("moved_to").implode())
    lost = pl.col("resolved_id").is_in(moves.get_column("moved_from").implode())
    return (
        pl.when(gained)
        .then(pl.lit("merged"))
        .when(lost)
        .then(pl.lit("split"))
        .otherwise(pl.lit(otherwise))
    )


def _close_vanished(vanished: pl.DataFrame, moves: pl.DataFrame) -> pl.DataFrame:
    """Close clusters absent from this run, naming where their records went."""
    successors = moves.group_by(pl.col("moved_from").alias("resolved_id")).agg(
        pl.col("moved_to").unique().sort().alias("superseded_by")
    )
    count = pl.col("superseded_by").list.len()
    return (
        vanished.drop("superseded_by")
        .join(successors, on="resolved_id", how="left")
        .with_columns(pl.col("superseded_by").fill_null(NO_SUCCESSORS))
        .with_columns(
            pl.when(count == 0)
            .then(pl.lit("removed"))
            .when(count == 1)
            .then(pl.lit("merged"))
            .otherwise(pl.lit("split"))
            .alias("closed_by")
        )
    )


def _open_versions(
    now: pl.DataFrame,
    history: pl.DataFrame,
    kept: pl.DataFrame,
    moves: pl.DataFrame,
    fields: list[str],
) -> pl.DataFrame:
    """A new version for every golden profile without an unchanged open version.

    The version number continues the resolved_id's history. A resolved_id never seen
    before opens with ``new``; one whose open version just closed opens with the same
    reason; one that reappears after being closed opens with ``merged``/``split`` when
    records moved into it, else ``new``.
    """
    known = history.group_by("resolved_id").agg(
        pl.col("version").max().alias("_last_version"),
        pl.col("is_current").any().alias("_was_open"),
    )
    reason = (
        pl.when(pl.col("_last_version").is_null())
        .then(pl.lit("new"))
        .when(pl.col("_was_open"))
        .then(_change_reason(moves, "changed"))
        .otherwise(_change_reason(moves, "new"))
    )
    return (
        now.join(kept.select("resolved_id"), on="resolved_id", how="anti")
        .join(known, on="resolved_id", how="left")
        .with_columns(
            (pl.col("_last_version").fill_null(0) + 1).cast(pl.UInt32).alias("version"),
            reason.alias("opened_by"),
        )
        .select("resolved_id", "version", *fields, "opened_by", "values_hash")
    )
