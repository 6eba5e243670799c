"""Batch files already read, kept by content: a run re-reads only new or changed files.

Parsing a large CSV or Excel batch costs far more than loading the same rows from
Parquet, and most batches of a source never change once they have landed. Each batch
is therefore kept, as read, under ``artifacts/state/batches/<source>/`` in a file named
by what decides its rows: the file's content hash, its batch name, the source's reading
settings, the reader's own code and the Polars version. Any of those changing gives a
new name, so a stale entry is never used — it is only deleted. A file whose size and
modification time did not move is not hashed again (the index keeps the last
fingerprint of every file).

Sources with hashed identifiers are never kept: their rows as read still hold the plain
text that hashing exists to keep off disk.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl

from customer360.core import readers
from customer360.core.batches import content_hash
from customer360.core.spec import Source, Spec
from customer360.core.storage import PARQUET_OPTIONS, ArtifactStore

CACHE_FOLDER = "batches"
INDEX_FILE = "index.json"
_READER_CODE = hashlib.blake2b(Path(readers.__file__).read_bytes(), digest_size=8).hexdigest()


class BatchCache:
    """Batches as read, per source, named by content. ``writable=False`` (the dry run)
    uses what is kept but never adds, removes or re-indexes anything; ``reuse=False`` (a
    full reconciliation) reads every file again and keeps what it read."""

    def __init__(self, store: ArtifactStore, *, writable: bool = True, reuse: bool = True) -> None:
        self.folder = store.root / "state" / CACHE_FOLDER
        self.writable = writable
        self.reuse = reuse
        self.batches = 0  # batches asked for
        self.files_read = 0  # batches read from their files (not found in the cache)
        self._fingerprints: dict[Path, list] = {}  # of each batch read: size, mtime, hash
        self._files: dict[str, list[Path | None]] = {}  # per source: each batch's kept file

    def read(
        self,
        spec: Spec,
        source: Source,
        paths: list[Path],
        read: Callable[[Path], pl.DataFrame],
        *,
        every_batch: bool = True,
    ) -> list[pl.DataFrame]:
        """Each batch's rows, kept or freshly read with ``read`` (counted in
        ``files_read``).

        ``paths`` are all the source's batches unless ``every_batch`` is False (one
        batch ingested on its own): then entries of the other batches are left alone
        rather than removed as gone."""
        folder = self.folder / source.name
        self.batches += len(paths)
        if not keeps(spec, source):
            if self.writable:  # kept before hashing was turned on: plain text must go
                shutil.rmtree(folder, ignore_errors=True)
            self.files_read += len(paths)
            self._files[source.name] = []
            return [read(path) for path in paths]
        index = _load_index(folder)
        settings = _settings_digest(source)
        frames, used, files = [], {}, []
        for path in paths:
            fingerprint = _fingerprint(path, index.get(str(path)))
            used[str(path)] = fingerprint
            self._fingerprints[path] = fingerprint
            entry = folder / f"{_entry_name(spec, source, path, fingerprint[2], settings)}.parquet"
            frame = _read_entry(entry) if self.reuse else None
            holds_frame = frame is not None or self.writable
            if frame is None:
                frame = read(path)
                self.files_read += 1
                if self.writable:
                    _write_entry(frame, entry)
            frames.append(frame)
            files.append(entry if holds_frame else None)
        self._files[source.name] = files
        if self.writable and every_batch:
            _save_index(folder, used)
            _remove_unused(folder, spec, source, used, settings)
        elif self.writable:
            _save_index(folder, {**index, **used})
        return frames

    def single_file(self, source: Source) -> Path | None:
        """The kept file holding all the rows :meth:`read` gave for a source — when it
        read one batch, kept — so that a table of exactly those rows can share the file
        instead of writing them again."""
        files = self._files.get(source.name, [])
        return files[0] if len(files) == 1 else None

    def content_hash(self, path: Path) -> str:
        """The content hash of a batch read through this cache: the one its fingerprint
        already holds (hashing a large file again costs a read of it), else hashed now (a
        source that is never kept is not fingerprinted)."""
        known = self._fingerprints.get(path)
        return known[2] if known else content_hash(path)

    def fingerprint(self, path: Path) -> list | None:
        """[size, mtime_ns, content hash] of a batch read through this cache, taken before
        it was read (None for a source that is never kept)."""
        return self._fingerprints.get(path)


def clear_batch_cache(store: ArtifactStore) -> None:
    """Drop every kept batch (forgetting a person must not leave their rows here)."""
    shutil.rmtree(store.root / "state" / CACHE_FOLDER, ignore_errors=True)


def keeps(spec: Spec, source: Source) -> bool:
    """Whether a source's batches may be kept: not when it hashes identifiers."""
    return not any(name in spec.hashed_identifier_types for name in source.identifiers)


def _settings_digest(source: Source) -> str:
    """What of the source decides how a file is read, the reader's code and the version
    of the library that parses it."""
    settings = source.model_dump(
        mode="json", include={"name", "format", "encoding", "sheet", "table", "aliases"}
    )
    text = json.dumps([settings, _READER_CODE, pl.__version__], sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _entry_name(spec: Spec, source: Source, path: Path, digest: str, settings: str) -> str:
    batch = readers.batch_name(spec, source, path)
    named = hashlib.blake2b(f"{batch}\0{settings}".encode(), digest_size=8).hexdigest()
    return f"{digest}-{named}"


def _fingerprint(path: Path, known: list | None) -> list:
    """[size, mtime_ns, content hash]; the hash is reused while size and mtime hold."""
    stat = path.stat()
    if known and known[0] == stat.st_size and known[1] == stat.st_mtime_ns:
        return known
    return [stat.st_size, stat.st_mtime_ns, content_hash(path)]


def _read_entry(entry: Path) -> pl.DataFrame | None:
    if not entry.is_file():
        return None
    try:
        return pl.read_parquet(entry)
    except (OSError, pl.exceptions.PolarsError):  # a damaged entry is read again from its file
        return None


def _write_entry(frame: pl.DataFrame, entry: Path) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    temporary = entry.with_name(f".{entry.name}.tmp")
    frame.write_parquet(temporary, statistics=False, **PARQUET_OPTIONS)  # never queried
    temporary.replace(entry)


def _load_index(folder: Path) -> dict[str, list]:
    try:
        return json.loads((folder / INDEX_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _save_index(folder: Path, used: dict[str, list]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{INDEX_FILE}.tmp"
    temporary.write_text(json.dumps(used, sort_keys=True))
    temporary.replace(folder / INDEX_FILE)


def _remove_unused(
    folder: Path, spec: Spec, source: Source, used: dict[str, list], settings: str
) -> None:
    """Entries of batches that are gone, replaced or read under other settings."""
    current = {
        f"{_entry_name(spec, source, Path(path), fingerprint[2], settings)}.parquet"
        for path, fingerprint in used.items()
    }
    for entry in folder.glob("*.parquet"):
        if entry.name not in current:
            entry.unlink(missing_ok=True)
