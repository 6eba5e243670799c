"""Where outputs live: one Parquet file per table under the artifacts folder, and one
DuckDB file whose views make every table queryable by name.

Writes are atomic: a table is written to a temporary file and renamed over the old one,
so readers (including DuckDB views, which read the Parquet file at query time) see the
old table or the new one, never half of one. The DuckDB file is only written when a
view is created or its definition changes — a rename does not change the view — and
those writes are serialised across processes by a file lock, because DuckDB allows a
single writing process.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.parquet as pq

ARTIFACTS_ENV_VAR = "CUSTOMER360_ARTIFACTS"
DATABASE_FILE = "customer360.duckdb"
LOCK_FILE = ".customer360.lock"
RUN_LOCK_FILE = ".customer360.run.lock"
# A person may hold the DuckDB file open in the CLI for a while; wait this long for it.
LOCK_WAIT_SECONDS = 60.0
# The newest DuckDB shell on PyPI (duckdb-cli 1.5) reads storage formats up to 1.4: keep
# the catalogue readable by it, so `duckdb artifacts/customer360.duckdb` works.
STORAGE_COMPATIBILITY = "v1.4.0"
# How every table, state file and kept batch is written. Measured on the 25 tables of a
# million-record run (CPU seconds of all threads to write them all / to read them all /
# size): zstd 1 with statistics 5.0 / 1.8 / 218 MB, zstd 1 without 4.3 / 1.7 / 218 MB,
# lz4 without 4.0 / 1.4 / 376 MB, snappy without 4.1 / 1.7 / 366 MB, uncompressed
# 3.4 / 1.5 / 1,034 MB; the pyarrow writer took twice Polars' time. zstd's fastest level
# (a quarter faster than its default, files 5% larger) keeps files 40% smaller than lz4
# for a few percent more CPU. Statistics: see :func:`_statistics_help`.
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 1}


class StorageError(RuntimeError):
    """An output that cannot be written or read; the message says what to do."""


class ArtifactStore:
    """Parquet tables and their DuckDB views under one folder."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        self.database = self.root / DATABASE_FILE

    def path(self, table: str) -> Path:
        return self.root / f"{table}.parquet"

    def exists(self, table: str) -> bool:
        return self.path(table).is_file()

    def write(self, table: str, frame: pl.DataFrame | pl.LazyFrame) -> Path:
        """Atomically replace a table's Parquet file, then make sure its view exists.

        A lazy frame is streamed to the file in its plan's order, never held whole — for
        tables far larger than their inputs (the observations of every record); it may
        read the very table it replaces (the old file stays until the new one is renamed
        over it). Its statistics are left out: whether it is sorted by its key (see
        :func:`_statistics_help`) cannot be seen without holding it.
        """
        target = self.path(table)
        if isinstance(frame, pl.LazyFrame):
            _replace_atomically(
                target,
                lambda temporary: frame.sink_parquet(
                    temporary, statistics=False, engine="streaming", **PARQUET_OPTIONS
                ),
            )
        else:
            _write_atomically(frame, target, statistics=_statistics_help(frame))
        self._ensure_view(table, target)
        return target

    def share(self, table: str, file: Path) -> Path:
        """Make an existing Parquet file the table without writing its rows again: a hard
        link renamed over the table, as atomic as :meth:`write`. The two names share
        their bytes safely because every file here is only ever replaced, never changed
        in place (a copy where a link cannot be made)."""
        target = self.path(table)
        _replace_atomically(target, lambda temporary: _link_or_copy(file, temporary))
        self._ensure_view(table, target)
        return target

    def append(self, table: str, rows: pl.DataFrame) -> Path:
        """Add rows to a table, serialised with every other writer of this folder (two
        processes appending at once must not lose each other's rows)."""
        with self._lock():
            existing = self.read(table) if self.exists(table) else None
            combined = (
                rows if existing is None else pl.concat([existing, rows], how="diagonal_relaxed")
            )
            target = self.path(table)
            _write_atomically(combined, target, statistics=_statistics_help(combined))
        self._ensure_view(table, target)
        return target

    def state_path(self, name: str) -> Path:
        return self.root / "state" / f"{name}.parquet"

    def write_state(self, name: str, frame: pl.DataFrame) -> None:
        """Internal state kept between runs (no DuckDB view: it is not an output)."""
        _write_atomically(frame, self.state_path(name), statistics=False)

    def share_state(self, name: str, file: Path) -> None:
        """Keep an existing Parquet file (a table just read) as state without writing its
        rows again: a hard link, as :meth:`share` makes for tables."""
        _replace_atomically(self.state_path(name), lambda temporary: _link_or_copy(file, temporary))

    def read_state(self, name: str, columns: list[str] | None = None) -> pl.DataFrame | None:
        path = self.state_path(name)
        return pl.read_parquet(path, columns=columns) if path.is_file() else None

    def json_state_path(self, name: str) -> Path:
        return self.root / "state" / f"{name}.json"

    def write_json_state(self, name: str, data: dict) -> None:
        """A small record of what a run was made of, kept for the next run to compare
        against; replaced atomically like every table."""
        _replace_atomically(
            self.json_state_path(name), lambda temporary: temporary.write_text(json.dumps(data))
        )

    def read_json_state(self, name: str) -> dict | None:
        """The record kept by :meth:`write_json_state`; None when there is none or it
        cannot be read (the next run then starts over, as with no record)."""
        try:
            return json.loads(self.json_state_path(name).read_text())
        except (OSError, ValueError):
            return None

    def drop_json_state(self, name: str) -> None:
        self.json_state_path(name).unlink(missing_ok=True)

    def read(self, table: str, columns: list[str] | None = None) -> pl.DataFrame:
        return pl.read_parquet(self._existing(table), columns=columns)

    def scan(self, table: str) -> pl.LazyFrame:
        """A table read lazily: only the columns and rows a query needs are loaded."""
        return pl.scan_parquet(self._existing(table))

    def _existing(self, table: str) -> Path:
        if not self.exists(table):
            raise StorageError(
                f"table '{table}' has not been materialized yet ({self.path(table)} is missing); "
                "materialize it (and its upstream assets) first"
            )
        return self.path(table)

    def row_count(self, table: str) -> int:
        """Rows of a table, read from the Parquet footer without loading the data."""
        return pq.ParquetFile(self.path(table)).metadata.num_rows

    def _ensure_view(self, table: str, target: Path) -> None:
        """Create the table's view unless it already points at the file. The check reads
        the catalogue read-only, which people querying it do not block, and at most once
        per change of the catalogue file (see :class:`_ViewCache`): only a view's first
        creation takes DuckDB's single write lock, briefly — or waits for the end of the
        block of :meth:`views_created_together`."""
        if _VIEWS.points_at(self.database, table, target):
            return
        waiting = _WAITING_VIEWS.get(self.database)
        if waiting is not None:
            waiting[table] = target
            return
        self._create_views({table: target})

    @contextmanager
    def views_created_together(self) -> Iterator[None]:
        """Views that tables written in this block lack are created when it ends, in one
        connection. A first run into an empty folder writes two dozen new tables, and
        opening the catalogue for each of them costs about a second of CPU; a table that
        already has its view is queryable throughout, since a write replaces the file
        the view reads."""
        if self.database in _WAITING_VIEWS:  # an enclosing block creates them
            yield
            return
        _WAITING_VIEWS[self.database] = {}
        try:
            yield
        finally:
            waiting = _WAITING_VIEWS.pop(self.database)
            if waiting:
                self._create_views(waiting)

    def _create_views(self, targets: dict[str, Path]) -> None:
        with self._lock():
            con = _connect_with_retry(self.database)
            try:
                for table, target in targets.items():
                    con.execute(
                        f'CREATE OR REPLACE VIEW "{table}" AS '
                        f"SELECT * FROM read_parquet('{target}')"
                    )
                views = _view_definitions(con)
            finally:
                con.close()
            _VIEWS.remember(self.database, views)

    @contextmanager
    def exclusive_run(self, on_wait: Callable[[], None] = lambda: None) -> Iterator[None]:
        """Held for a whole run: runs writing to this folder take turns, whoever started
        them (the command, the UI, a sensor), so state is never updated by two at once."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / RUN_LOCK_FILE, "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                on_wait()
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def run_in_progress(self) -> bool:
        """Whether a run holds the run lock right now (looked at without waiting)."""
        path = self.root / RUN_LOCK_FILE
        if not path.is_file():
            return False
        with open(path) as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
        return False

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """An exclusive lock shared by every process writing to this folder."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_FILE, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


class _ViewCache:
    """The views of each catalogue this process has looked at, with the identity (inode,
    size, modification time) of the catalogue file and its write-ahead log when they were
    read.

    A run writes two dozen tables; opening the catalogue for every one of them costs more
    than writing a small table. While the file is unchanged its views are too, so they
    are read again only after someone — this process or another — changed the file.
    """

    def __init__(self) -> None:
        self._known: dict[Path, tuple[object, dict[str, str]]] = {}

    def points_at(self, database: Path, table: str, target: Path) -> bool:
        stamp = _file_stamp(database)
        if stamp is None:
            return False
        known = self._known.get(database)
        if known is None or known[0] != stamp:
            try:
                with duckdb.connect(str(database), read_only=True) as con:
                    views = _view_definitions(con)
            except duckdb.IOException:
                return False  # a writer holds it now; decide under the write lock
            self._known[database] = (stamp, views)
            known = self._known[database]
        return str(target) in known[1].get(table, "")

    def remember(self, database: Path, views: dict[str, str]) -> None:
        """The views just written (under the write lock, so nobody changed them since)."""
        stamp = _file_stamp(database)
        if stamp is not None:
            self._known[database] = (stamp, views)


_VIEWS = _ViewCache()
_WAITING_VIEWS: dict[Path, dict[str, Path]] = {}
"""Per catalogue inside a :meth:`ArtifactStore.views_created_together` block: the views
waiting for its end, by table."""


def _file_stamp(database: Path) -> tuple[tuple[int, int, int], ...] | None:
    """What changes whenever the catalogue does; None while there is no catalogue."""
    stamps = []
    for path in (database, database.with_name(database.name + ".wal")):
        try:
            stat = path.stat()
        except FileNotFoundError:
            if path == database:
                return None
            continue
        stamps.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(stamps)


def _view_definitions(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    rows = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall()
    return dict(rows)


def _statistics_help(frame: pl.DataFrame) -> bool:
    """Whether a table's Parquet statistics (min/max per row group of ~128k rows) can
    serve a query: only when the table is sorted by its first column, its key, so that a
    lookup such as ``where resolved_id = …`` skips the row groups that cannot hold it.
    In any other order every row group spans nearly the whole range of values, and
    writing statistics costs a sixth of the writing for nothing."""
    return frame.width > 0 and frame.to_series(0).is_sorted()


def _write_atomically(frame: pl.DataFrame, target: Path, *, statistics: bool) -> None:
    _replace_atomically(
        target,
        lambda temporary: frame.write_parquet(temporary, statistics=statistics, **PARQUET_OPTIONS),
    )


def _replace_atomically(target: Path, make: Callable[[Path], object]) -> None:
    """Have ``make`` create a temporary file beside the target, then rename it over the
    target: readers see the old file or the new one, never half of one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        make(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    _remove_orphans(target)


def _link_or_copy(file: Path, temporary: Path) -> None:
    """A hard link to ``file`` (a copy where a link cannot be made)."""
    try:
        os.link(file, temporary)
    except OSError:
        shutil.copyfile(file, temporary)


def _remove_orphans(target: Path) -> None:
    """Temporary files of processes that died mid-write (their pid is gone)."""
    for orphan in target.parent.glob(f".{target.name}.*.tmp"):
        pid = orphan.name.removeprefix(f".{target.name}.").removesuffix(".tmp")
        if pid.isdigit() and not _alive(int(pid)):
            orphan.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _connect_with_retry(database: Path) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file for writing, waiting while another process holds it."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    delay = 0.05
    while True:
        try:
            return duckdb.connect(
                str(database), config={"storage_compatibility_version": STORAGE_COMPATIBILITY}
            )
        except duckdb.IOException as exc:
            if time.monotonic() > deadline:
                raise StorageError(
                    f"{database} is locked by another process ({exc}); close other DuckDB "
                    "sessions on it (e.g. a `duckdb` shell) and run again"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
