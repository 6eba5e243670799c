"""Appending accepted records to the inbox durably, and turning them into batch files.

A record is accepted only once its line is on disk: the line is written with one
``write`` and flushed with ``fdatasync`` before the service answers. Lines go to a hidden
file (:data:`~customer360.core.inbox.ACCEPTING_FILE`) that no reader or sensor looks at;
rotation renames it to ``accepted-<UTC time>.ndjson``, an atomic step, so a batch file
only ever holds complete lines and never changes after it appears. A write that fails
counts for nothing (the next line overwrites it), and a line left half-written by a crash
is cut off when the service starts again (its request was never answered).

One service owns an inbox at a time: it holds an exclusive lock on a file in the folder.
The writer is not thread-safe; the resolver calls it under its own lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from customer360.core.inbox import ACCEPTING_FILE, LOCK_FILE

BATCH_PREFIX = "accepted-"
RESERVE_BYTES = 4 << 20
_sync = getattr(os, "fdatasync", os.fsync)  # fdatasync is Linux-only


class InboxBusyError(RuntimeError):
    """Another service process is writing this inbox."""


class InboxWriteError(RuntimeError):
    """A line could not be made durable; nothing of it was kept."""


class InboxWriter:
    """Durable appends to one inbox folder, rotated into batch files."""

    def __init__(
        self,
        folder: Path,
        rotate_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = folder
        self.rotate_seconds = rotate_seconds
        self._clock = clock
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = open(folder / LOCK_FILE, "w")  # noqa: SIM115 - held for the writer's life
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise InboxBusyError(
                f"another customer360 serve is writing the inbox {folder}; stop it first "
                "(one service per inbox)"
            ) from None
        self.accepting = folder / ACCEPTING_FILE
        self._fd: int | None = None
        self._size = 0  # bytes of complete lines; the file may be longer (reserved space)
        self._reserved = 0
        self._preallocate = hasattr(os, "posix_fallocate")
        self._opened_at = 0.0
        self._recover()

    def append(self, line: bytes) -> None:
        """Write one complete line and make it durable, or keep nothing of it."""
        if self._fd is None:
            self._open()
        assert self._fd is not None
        try:
            self._reserve(len(line))
            if os.pwrite(self._fd, line, self._size) != len(line):
                raise OSError("short write")
            _sync(self._fd)
        except OSError as exc:
            self._blank(len(line))
            raise InboxWriteError(f"could not write to {self.accepting}: {exc}") from exc
        self._size += len(line)

    def _blank(self, length: int) -> None:
        """Zero what a failed write may have left after the last line, so that no part
        of it can ever be read back as a line (recovery stops at the first zero byte)."""
        with contextlib.suppress(OSError):
            os.pwrite(self._fd, bytes(length), self._size)

    def rotate_if_due(self) -> Path | None:
        """Rotate when the open file has held lines for ``rotate_seconds``."""
        if self._size and self._clock() - self._opened_at >= self.rotate_seconds:
            return self.rotate()
        return None

    def rotate(self) -> Path | None:
        """Turn the open file into a batch file (none when it holds no line)."""
        if self._fd is not None:
            os.ftruncate(self._fd, self._size)  # the space reserved ahead is not data
            _sync(self._fd)
            os.close(self._fd)
            self._fd = None
        if not self.accepting.is_file() or self.accepting.stat().st_size == 0:
            return None
        target = self._batch_name()
        os.replace(self.accepting, target)
        self._sync_folder()
        self._size = 0
        return target

    def close(self) -> None:
        """Rotate what was accepted and release the inbox."""
        self.rotate()
        self._lock.close()

    def _open(self) -> None:
        self._fd = os.open(self.accepting, os.O_RDWR | os.O_CREAT, 0o644)
        self._size = self._reserved = os.fstat(self._fd).st_size
        self._opened_at = self._clock()
        self._sync_folder()  # the file's name must survive a crash as well as its lines

    def _reserve(self, length: int) -> None:
        """Allocate file space ahead of the lines, a few MB at a time: writing into space
        the file already has makes each sync flush the line alone, not the file's size
        too — about half the time of an append, and far steadier. A crash leaves zeros
        after the last line, which recovery cuts off like a half-written line."""
        if self._size + length <= self._reserved or not self._preallocate:
            return
        try:
            os.posix_fallocate(self._fd, self._reserved, RESERVE_BYTES)
        except OSError:  # a file system without it: plain appends, slower but the same
            self._preallocate = False
            return
        _sync(self._fd)
        self._reserved += RESERVE_BYTES

    def _recover(self) -> None:
        """Cut off a line a crash left half-written, and hand over what a previous run
        of the service accepted as a batch file."""
        if not self.accepting.is_file():
            return
        content = self.accepting.read_bytes().split(b"\0", 1)[0]  # JSON lines hold no NUL
        complete = content[: content.rfind(b"\n") + 1]
        if len(complete) != self.accepting.stat().st_size:
            with open(self.accepting, "r+b") as handle:
                handle.truncate(len(complete))
                _sync(handle.fileno())
        self.rotate()

    def _batch_name(self) -> Path:
        """``accepted-<UTC time to the microsecond>.ndjson``: names sort in the order the
        batches were made (a name already taken moves on by a microsecond)."""
        moment = datetime.now(UTC)
        while True:
            target = self.folder / f"{BATCH_PREFIX}{moment:%Y%m%dT%H%M%S%fZ}.ndjson"
            if not target.exists():
                return target
            moment += timedelta(microseconds=1)

    def _sync_folder(self) -> None:
        descriptor = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
