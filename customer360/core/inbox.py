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
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from customer360.core.readers import SourceReadError, list_batches, read_batch
from customer360.core.spec import SERVICE_COLUMNS, Source, Spec

ASSIGNED_ID_COLUMN, DATA_HASH_COLUMN = SERVICE_COLUMNS
# The file the service is appending to: hidden, so no reader or sensor sees it half-done.
ACCEPTING_FILE = ".accepting.ndjson"
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
