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

from customer360.core.keys import placements, positions_in

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
    open_before = history.filter(is_open)
    # each open version's profile now, found by its row in ``now`` (null: gone)
    row_now = positions_in(open_before.get_column("resolved_id"), now.get_column("resolved_id"))
    new_hash = now.get_column("values_hash").gather(row_now)
    unchanged = _unchanged(open_before, new_hash, fields)
    kept = open_before.filter(unchanged)
    changed = open_before.filter(new_hash.is_not_null() & ~unchanged)
    vanished = open_before.filter(new_hash.is_null())

    reason = _change_reason(moves)
    closed_changed = changed.with_columns(
        reason.alias("closed_by"), NO_SUCCESSORS.alias("superseded_by")
    )
    closed_vanished = _close_vanished(vanished, moves)
    columns = list(schema)
    closed = pl.concat(
        [closed_changed.select(columns), closed_vanished.select(columns)]
    ).with_columns(when.alias("valid_to"), pl.lit(False).alias("is_current"))

    # every profile without an unchanged open version gets a new one
    kept_now = pl.repeat(False, now.height, eager=True).scatter(row_now.filter(unchanged), True)
    opened = _open_versions(now.filter(~kept_now), history, moves, fields).with_columns(
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


def _unchanged(open_versions: pl.DataFrame, new_hash: pl.Series, fields: list[str]) -> pl.Series:
    """Whether each open version holds the values its profile has now (``new_hash``,
    null for a profile that is gone).

    A stored hash equal to the new one says so (hashing millions of versions' values
    again costs more than the rest of the comparison); where they differ the values are
    hashed again, so that a hash stored by another Polars version, or over values stored
    in plain text before hashing was switched on, cannot make a profile look changed."""
    unchanged = (open_versions.get_column("values_hash") == new_hash).fill_null(False)
    again = (new_hash.is_not_null() & ~unchanged).arg_true()
    if again.is_empty():
        return unchanged
    rehashed = open_versions[again].select(values_hash(fields)).to_series()
    return unchanged.scatter(again, rehashed == new_hash.gather(again))


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
    if previous.height == membership.height and previous.get_column("entity_key").equals(
        membership.get_column("entity_key")
    ):
        # the same records in the same order (membership follows the records' order):
        # their clusters are compared row by row
        moved = pl.concat(
            [
                previous.select("entity_key", pl.col("resolved_id").alias("moved_from")),
                membership.select(pl.col("resolved_id").alias("moved_to")),
            ],
            how="horizontal",
        )
        return moved.filter(pl.col("moved_from") != pl.col("moved_to")).cast(schema)
    # A record whose (entity_key, resolved_id) is found among this run's did not move:
    # the pairs are hashed to integers and looked up, and only the few others are joined
    # on their text keys (a move hides only if its pair's hash collides with another's).
    stayed = placements(previous).is_in(placements(membership).implode())
    before = previous.filter(~stayed).select(
        "entity_key", pl.col("resolved_id").alias("moved_from")
    )
    return (
        before.join(
            membership.select("entity_key", pl.col("resolved_id").alias("moved_to")),
            on="entity_key",
            how="inner",
        )
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
    profiles: pl.DataFrame, history: pl.DataFrame, moves: pl.DataFrame, fields: list[str]
) -> pl.DataFrame:
    """A new version for each of ``profiles`` (those without an unchanged open version).

    The version number continues the resolved_id's history. A resolved_id never seen
    before opens with ``new``; one whose open version just closed opens with the same
    reason; one that reappears after being closed opens with ``merged``/``split`` when
    records moved into it, else ``new``. Only the history of these resolved_ids is
    grouped (in a batch run, a few among millions), by their row in ``profiles``.
    """
    row = positions_in(history.get_column("resolved_id"), profiles.get_column("resolved_id"))
    known = (
        history.select(row.alias("_row"), "version", "is_current")
        .drop_nulls("_row")
        .group_by("_row")
        .agg(
            pl.col("version").max().alias("_last_version"),
            pl.col("is_current").any().alias("_was_open"),
        )
    )
    reason = (
        pl.when(pl.col("_last_version").is_null())
        .then(pl.lit("new"))
        .when(pl.col("_was_open"))
        .then(_change_reason(moves, "changed"))
        .otherwise(_change_reason(moves, "new"))
    )
    return (
        profiles.with_row_index("_row")
        .join(known, on="_row", how="left")
        .with_columns(
            (pl.col("_last_version").fill_null(0) + 1).cast(pl.UInt32).alias("version"),
            reason.alias("opened_by"),
        )
        .select("resolved_id", "version", *fields, "opened_by", "values_hash")
    )
