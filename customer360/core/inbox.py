"""The resolve service's inbox: records accepted in real time, kept as ndjson batch files
of the spec's inbox source so that the next batch run folds them into the graph.

One line per accepted record: the request's data fields (the columns the inbox source
maps), the record key ``<caller source>:<external_id>`` under the source's ``key``
column, the time it was received under its ``updated_at`` column, the resolved_id the
service assigned (``assigned_resolved_id``) and a hash of the data (``data_hash``), so
that a replay with different data is told apart from a true replay.

The batch reads the lines like any source's; the assigned ids tell its stable-id
assignment which ids were handed out in real time (see
:func:`customer360.core.stable_ids.with_realtime_assignments`). The service appends to
a hidden file that readers and the sensor skip and renames it into a batch file when it
rotates, so a batch file is always complete.

A person who asks to be forgotten leaves the inbox too: their lines are cut out of the
batch files (and of the open file, when no service holds it; a running service cuts
them out of its own when it sees the suppression list change).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from customer360.core.readers import SourceReadError, list_batches, read_batch
from customer360.core.spec import SERVICE_COLUMNS, Source, Spec

ASSIGNED_ID_COLUMN, DATA_HASH_COLUMN = SERVICE_COLUMNS
# The file the service is appending to: hidden, so no reader or sensor sees it half-done.
ACCEPTING_FILE = ".accepting.ndjson"
# Held by the service that writes the inbox: one writer at a time.
LOCK_FILE = ".service.lock"
KEY_SEPARATOR = ":"
ASSIGNMENT_SCHEMA = {"entity_key": pl.String, "resolved_id": pl.String}


class InboxError(ValueError):
    """The spec has no inbox for the service; the message says what to add."""


def inbox_source(spec: Spec) -> Source:
    """The source that receives the service's records (``service.inbox_source``)."""
    if spec.service is None:
        raise InboxError(
            f"the spec {spec.base_dir} has no 'service' section; add one naming the inbox "
            "source (service: {inbox_source: <an ndjson folder source>}) — see the README"
        )
    return spec.source(spec.service.inbox_source)


def inbox_folder(spec: Spec) -> Path:
    return spec.resolve(inbox_source(spec).path)


def record_key(source_system: str, external_id: str) -> str:
    """The inbox record key of a caller's record; source names hold no ':', so it splits
    back unambiguously."""
    return f"{source_system}{KEY_SEPARATOR}{external_id}"


def entity_key(spec: Spec, source_system: str, external_id: str) -> str:
    """The entity_key the batch will give the record: ``<inbox source>:<record key>``."""
    return f"{inbox_source(spec).name}:{record_key(source_system, external_id)}"


def data_columns(inbox: Source) -> list[str]:
    """The columns the inbox source's mappings read: the fields a request's data may hold."""
    mappings = [*inbox.identifiers.values(), *inbox.attributes.values(), *inbox.measures.values()]
    return sorted({column for m in mappings for column in pl.sql_expr(m).meta.root_names()})


def read_inbox(spec: Spec, files: list[Path]) -> pl.DataFrame:
    """Every line of the given inbox files with its ``entity_key``, the service's columns
    and the data columns (null where a line lacks them), in file order. Files that cannot
    be read are left out: the batch quarantines them with the reason."""
    inbox = inbox_source(spec)
    columns = [ASSIGNED_ID_COLUMN, DATA_HASH_COLUMN, *data_columns(inbox)]
    frames = []
    for path in files:
        try:
            frames.append(read_batch(spec, inbox, path))
        except SourceReadError:
            continue
    if not frames:
        return pl.DataFrame(schema={"entity_key": pl.String, **dict.fromkeys(columns, pl.String)})
    lines = pl.concat(frames, how="diagonal_relaxed")
    missing = [c for c in [inbox.key, *columns] if c not in lines.columns]
    lines = lines.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in missing)
    return lines.select(
        (pl.lit(f"{inbox.name}:") + pl.col(inbox.key).str.strip_chars()).alias("entity_key"),
        *columns,
    ).filter(pl.col("entity_key").is_not_null())


def realtime_assignments(spec: Spec) -> pl.DataFrame:
    """(entity_key, resolved_id) the service assigned to the records of the inbox's batch
    files; empty when the spec has no service."""
    if spec.service is None:
        return pl.DataFrame(schema=ASSIGNMENT_SCHEMA)
    lines = read_inbox(spec, list_batches(spec, inbox_source(spec)))
    return (
        lines.filter(pl.col(ASSIGNED_ID_COLUMN).is_not_null())
        .unique("entity_key", keep="last", maintain_order=True)
        .select("entity_key", pl.col(ASSIGNED_ID_COLUMN).alias("resolved_id"))
    )


def pending_records(spec: Spec, published: pl.Series) -> pl.DataFrame:
    """Inbox lines no run has read yet (their entity_key is not in ``published``), with
    their data and assigned id — in batch files and in the service's open file."""
    files = list_batches(spec, inbox_source(spec))
    accepting = inbox_folder(spec) / ACCEPTING_FILE
    if not accepting.is_file():
        lines = read_inbox(spec, files)
    else:  # its complete lines, without the space reserved ahead, as a hidden file
        # beside it (a batch is named by its place in the folder; no reader looks at it)
        content = accepting.read_bytes().split(b"\0", 1)[0]
        folder = accepting.parent
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".", suffix=".ndjson") as copy:
            copy.write(content[: content.rfind(b"\n") + 1])
            copy.flush()
            lines = read_inbox(spec, [*files, Path(copy.name)])
    return lines.filter(~pl.col("entity_key").is_in(published.implode()))


@contextlib.contextmanager
def unserved_inbox(spec: Spec) -> Iterator[bool]:
    """Holds the service's lock while no service runs: yields whether it got it (then
    the open file may be changed; otherwise a running service owns it)."""
    folder = inbox_folder(spec)
    if not folder.is_dir():
        yield False
        return
    with open(folder / LOCK_FILE, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def drop_inbox_lines(spec: Spec, keys: pl.Series, include_open_file: bool) -> int:
    """Cut the lines of these entity keys out of the inbox's batch files (and its open
    file), each rewritten atomically; a file left with no line is removed. Returns the
    number of lines cut."""
    inbox = inbox_source(spec)
    folder = inbox_folder(spec)
    files = list_batches(spec, inbox)
    if include_open_file and (folder / ACCEPTING_FILE).is_file():
        files.append(folder / ACCEPTING_FILE)
    removed = 0
    for path in files:
        content = path.read_bytes().split(b"\0", 1)[0]  # the open file reserves zeros
        lines = pl.Series("line", content.decode("utf-8").splitlines(keepends=True), pl.String)
        key = lines.str.json_path_match(f"$.{inbox.key}").str.strip_chars()
        dropped = (pl.lit(f"{inbox.name}:") + key).is_in(keys.implode())
        keep = lines.filter(~pl.select(dropped.fill_null(False)).to_series())
        if keep.len() == lines.len():
            continue
        removed += lines.len() - keep.len()
        _rewrite(path, "".join(keep.to_list()).encode("utf-8"))
    return removed


def _rewrite(path: Path, content: bytes) -> None:
    if not content:
        path.unlink()
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.forget")
    with open(temporary, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
