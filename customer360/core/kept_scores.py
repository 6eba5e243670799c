"""Pairwise scores against the truth file, updated from what changed since the last run.

Every pairwise figure (see :mod:`customer360.core.evaluation`) is counted from the
(cluster, person) cells: how many scored records each cluster holds of each person. A
record that keeps its resolved_id keeps its cell, so the cells of the last run need
only the records whose (entity_key, resolved_id) is new, gone or changed: a batch run
looks up the truth of those few records instead of joining every record to the truth
file and grouping them all again.

What the kept cells were counted from is kept beside them: the membership they score
(a hard link to that run's membership file, not a copy of its rows) and a stamp of the
truth file (path, columns, size, modification time). The cells name both in their
``basis`` column, written first: when either differs — another truth file, no kept
cells, a run that stopped between writing the two — everything is counted again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import polars as pl

from customer360.core.evaluation import score_cells
from customer360.core.keys import placement_changes
from customer360.core.storage import ArtifactStore

SCORE_CELLS_STATE = "score_cells"
SCORED_MEMBERSHIP_STATE = "scored_membership"
PAIR_COLUMNS = ["entity_key", "resolved_id"]


class KeptCells(NamedTuple):
    cells: pl.DataFrame  # resolved_id, person_id, n
    membership: pl.DataFrame  # entity_key, resolved_id the cells were counted from


def truth_stamp(path: Path, key_column: str, person_column: str) -> str:
    """The truth file as the kept cells depend on it: which file and columns, and its
    size and modification time (a file rewritten in place changes them)."""
    stat = path.stat()
    return f"{path}|{key_column}|{person_column}|{stat.st_size}|{stat.st_mtime_ns}"


def kept_cells(store: ArtifactStore, stamp: str) -> KeptCells | None:
    """The last run's cells and the membership they score, when they were counted
    against the same truth file and from the membership kept beside them; else None."""
    cells = store.read_state(SCORE_CELLS_STATE)
    scored = store.state_path(SCORED_MEMBERSHIP_STATE)
    if cells is None or cells.is_empty() or not scored.is_file():
        return None
    basis = _basis(stamp, scored)
    if not (cells.get_column("basis") == basis).all():
        return None
    return KeptCells(cells.drop("basis"), pl.read_parquet(scored, columns=PAIR_COLUMNS))


def keep_cells(store: ArtifactStore, cells: pl.DataFrame, stamp: str, membership: Path) -> None:
    """Keep this run's cells and the membership file they were counted from: the cells
    first, naming the file, then the file itself (a link)."""
    basis = _basis(stamp, membership)
    store.write_state(SCORE_CELLS_STATE, cells.with_columns(pl.lit(basis).alias("basis")))
    store.share_state(SCORED_MEMBERSHIP_STATE, membership)


def forget_kept_cells(store: ArtifactStore) -> None:
    """Drop the kept cells and membership (the membership names forgotten records): the
    next run counts every cell again."""
    store.state_path(SCORE_CELLS_STATE).unlink(missing_ok=True)
    store.state_path(SCORED_MEMBERSHIP_STATE).unlink(missing_ok=True)


def updated_cells(kept: KeptCells, membership: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """The cells of ``membership`` (entity_key, resolved_id) against ``truth``
    (entity_key, person_id): the kept cells, less the records that left theirs, plus
    the records that entered one. Equal, as a set of rows, to :func:`score_cells`.

    A record keeps its cell when its (entity_key, resolved_id) is found on the other
    side (:func:`~customer360.core.keys.placement_changes`); only the changed records
    are joined to the truth."""
    gone, came = placement_changes(kept.membership, membership)
    left = kept.membership.filter(gone)
    entered = membership.select(PAIR_COLUMNS).filter(came)
    change = (
        pl.concat([left.with_columns(d=pl.lit(-1)), entered.with_columns(d=pl.lit(1))])
        .join(_persons(truth), on="entity_key")
        .group_by("resolved_id", "person_id")
        .agg(pl.col("d").sum().cast(pl.Int64))
    )
    return (
        kept.cells.join(change, on=["resolved_id", "person_id"], how="full", coalesce=True)
        .select(
            "resolved_id",
            "person_id",
            (pl.col("n").fill_null(0) + pl.col("d").fill_null(0)).alias("n"),
        )
        .filter(pl.col("n") > 0)
    )


def cells_for(
    membership: pl.DataFrame, truth: pl.DataFrame, kept: KeptCells | None
) -> pl.DataFrame:
    """The cells of ``membership``: updated from ``kept`` when there are kept cells,
    else counted from every record."""
    if kept is None:
        return score_cells(membership, truth)
    return updated_cells(kept, membership, truth)


def _persons(truth: pl.DataFrame) -> pl.DataFrame:
    return truth.select("entity_key", pl.col("person_id").cast(pl.String))


def _basis(stamp: str, membership: Path) -> str:
    """The truth stamp and the identity of the membership file (a link shares it)."""
    stat = os.stat(membership)
    return f"{stamp}|{stat.st_ino}|{stat.st_size}|{stat.st_mtime_ns}"
