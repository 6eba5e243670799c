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
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

ARTIFACTS_ENV_VAR = "CUSTOMER360_ARTIFACTS"
DATABASE_FILE = "customer360.duckdb"
LOCK_FILE = ".customer360.lock"
# A person may hold the DuckDB file open in the CLI for a while; wait this long for it.
LOCK_WAIT_SECONDS = 60.0
# The newest DuckDB shell on PyPI (duckdb-cli 1.5) reads storage formats up to 1.4: keep
# the catalogue readable by it, so `duckdb artifacts/customer360.duckdb` works.
STORAGE_COMPATIBILITY = "v1.4.0"


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

    def write(self, table: str, frame: pl.DataFrame) -> Path:
        """Atomically replace a table's Parquet file, then make sure its view exists."""
        target = self.path(table)
        _write_atomically(frame, target)
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
            _write_atomically(combined, target)
        self._ensure_view(table, target)
        return target

    def state_path(self, name: str) -> Path:
        return self.root / "state" / f"{name}.parquet"

    def write_state(self, name: str, frame: pl.DataFrame) -> None:
        """Internal state kept between runs (no DuckDB view: it is not an output)."""
        _write_atomically(frame, self.state_path(name))

    def read_state(self, name: str) -> pl.DataFrame | None:
        path = self.state_path(name)
        return pl.read_parquet(path) if path.is_file() else None

    def read(self, table: str, columns: list[str] | None = None) -> pl.DataFrame:
        if not self.exists(table):
            raise StorageError(
                f"table '{table}' has not been materialized yet ({self.path(table)} is missing); "
                "materialize it (and its upstream assets) first"
            )
        return pl.read_parquet(self.path(table), columns=columns)

    def row_count(self, table: str) -> int:
        """Rows of a table, read from the Parquet footer without loading the data."""
        return pq.ParquetFile(self.path(table)).metadata.num_rows

    def _ensure_view(self, table: str, target: Path) -> None:
        sql = f"CREATE OR REPLACE VIEW \"{table}\" AS SELECT * FROM read_parquet('{target}')"
        with self._locked_connection() as con:
            current = con.execute(
                "SELECT sql FROM duckdb_views() WHERE view_name = ? AND NOT internal", [table]
            ).fetchone()
            if current is None or str(target) not in current[0]:
                con.execute(sql)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """An exclusive lock shared by every process writing to this folder."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_FILE, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    @contextmanager
    def _locked_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write connection, serialised with every other writer of this folder."""
        with self._lock():
            con = _connect_with_retry(self.database)
            try:
                yield con
            finally:
                con.close()


def _write_atomically(frame: pl.DataFrame, target: Path) -> None:
    """Write to a temporary file beside the target, then rename it over the target."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        frame.write_parquet(temporary, compression="zstd", statistics=True)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


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
