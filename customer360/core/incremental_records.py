"""``records`` again only for the batches that arrived since the last run.

A record's row depends on nothing but its source row, the spec, the code and the list of
forgotten people — except, within one source, for a repeated record key (the latest
batch wins) and for the order (update order; see :mod:`customer360.core.records`). So a
source whose batches are the last run's, each with the same content, has the last run's
rows, and a source whose batches were only added to has them too, merged in update order
with the new batches' rows — as long as no new batch brings a record key the source
already has (the duplicate rule could then move an old row to quarantine) or a column it
did not have (the raw row of a quarantined record shows every column). Such sources are
neither read nor mapped again: their rows are taken from the last run's ``records`` and
``quarantine``, and their tables stay as they are.

What decides it is kept between runs as the *records basis*: every source's batches
(size, modification time, content hash), its columns as read and its rows of forgotten
people, with a fingerprint of the spec, this code, the Polars version and the forgotten
keys. Any other fingerprint, no basis, or a full run maps every source; so does a
changed or removed batch for its own source, and a source with hashed identifiers
(never kept as read: see :mod:`customer360.core.batch_cache`). The basis is dropped
before the outputs it describes are replaced and written after them, so a run that
stops half-way leaves the next one mapping everything.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import polars as pl

from customer360.core import ingest, readers, records
from customer360.core.batch_cache import BatchCache, keeps
from customer360.core.batches import Fingerprint, fingerprint_source
from customer360.core.ingest import Ingested
from customer360.core.readers import BATCH_COLUMN, list_batches
from customer360.core.records import (
    UPDATE_ORDER,
    as_record_rows,
    build_records,
    stack_by_trust,
    stack_quarantine,
    stage_source,
)
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore
from customer360.core.touched_clusters import spec_fingerprint

BASIS_STATE = "records_basis"
# The positions of the records a run mapped, when it took others over: the identifiers
# stage classifies only theirs (see core.incremental_identifiers).
MAPPED_ROWS_STATE = "records_mapped_rows"
MAPPED = "_mapped"  # marks, while records are stacked, the rows mapped this run
# the code that reads and maps rows (read as files: this module imports them)
_CODE = hashlib.blake2b(
    b"".join(Path(module.__file__).read_bytes() for module in (readers, records, ingest))
    + Path(__file__).read_bytes(),
    digest_size=8,
).hexdigest()


class SourceBasis(NamedTuple):
    batches: dict[str, Fingerprint]
    """Batch name → [size, mtime_ns, content hash]."""
    columns: list[str]
    """The source's columns as read, every batch stacked."""
    forgotten_rows_dropped: int


class RecordsBasis(NamedTuple):
    fingerprint: str
    sources: dict[str, SourceBasis]
    """The sources that may be taken over (kept as read), by name."""


class RecordsPlan(NamedTuple):
    unchanged: set[str]
    """Sources whose rows are the last run's: not read, not mapped, tables left alone."""
    added: dict[str, list[str]]
    """Sources whose batches were only added to: the new batches, by name."""
    basis: RecordsBasis | None
    """What the plan compared against (None: every source is mapped)."""

    def to_read(self, spec: Spec) -> list[str]:
        """The sources read this run (their tables are written again)."""
        return [source.name for source in spec.sources if source.name not in self.unchanged]


class MappedRecords(NamedTuple):
    records: pl.DataFrame
    quarantine: pl.DataFrame
    rows_mapped: int
    """Rows mapped this run (the rest are the last run's)."""
    mapped_rows: pl.Series
    """The positions in ``records`` of the records mapped this run."""


def basis_fingerprint(spec: Spec, forgotten: pl.Series) -> str:
    """What a basis must have been made under for its rows to be taken over."""
    keys = hashlib.blake2b("\n".join(forgotten.sort().to_list()).encode(), digest_size=16)
    text = f"{spec_fingerprint(spec)}|{_CODE}|{pl.__version__}|{keys.hexdigest()}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def plan_records(spec: Spec, store: ArtifactStore, basis: RecordsBasis | None) -> RecordsPlan:
    """Which sources keep the last run's rows, and which only gained batches."""
    if basis is None or not (store.exists("records") and store.exists("quarantine")):
        return RecordsPlan(set(), {}, None)
    unchanged, added = set(), {}
    for source in spec.sources:
        before = basis.sources.get(source.name)
        if before is None or not keeps(spec, source):
            continue
        now = fingerprint_source(spec, source, before.batches)
        if any(now.get(name, [None] * 3)[2] != fp[2] for name, fp in before.batches.items()):
            continue  # a batch changed or went: the source is mapped whole
        new = [name for name in now if name not in before.batches]
        if new:
            added[source.name] = new
        elif store.exists(source.name):
            unchanged.add(source.name)
    return RecordsPlan(unchanged, added, basis)


def update_records(
    spec: Spec,
    plan: RecordsPlan,
    extracts: dict[str, pl.DataFrame],
    previous: tuple[pl.DataFrame, pl.DataFrame] | None,
) -> MappedRecords:
    """Records and quarantine: the last run's rows (``previous``: its records and
    quarantine) of the plan's unchanged sources, with the rows of the new batches of the
    sources that only gained some, merged in; every other source in ``extracts`` (every
    batch of each source read, as :func:`~customer360.core.ingest.ingest_source` reads
    it) is mapped whole. Equal to :func:`~customer360.core.records.build_records` over
    every source's extract.

    Takes the extracts over, as ``build_records`` does: each source's raw rows leave
    ``extracts`` once staged.
    """
    if previous is None:  # nothing to take over: every row is mapped, none marked
        records, quarantine = build_records(spec, extracts)
        return MappedRecords(
            records,
            quarantine,
            records.height + quarantine.height,
            pl.int_range(records.height, dtype=pl.get_index_type(), eager=True),
        )
    last_records, last_quarantine = previous
    accepted: dict[str, pl.DataFrame] = {}
    rejected: list[pl.DataFrame] = []
    rows_mapped = 0
    for name in list(extracts):
        source, raw = spec.source(name), extracts.pop(name)
        new = plan.added.get(name)
        before = plan.basis.sources[name] if new and plan.basis else None
        if before is not None and raw.columns == before.columns:
            fresh = raw.filter(pl.col(BATCH_COLUMN).is_in(new))
            rows, quarantined = stage_source(spec, source, fresh)
            old = _rows_of(spec, last_records, name)
            if not _shares_a_key(old, rows):
                rows_mapped += fresh.height
                accepted[name] = _merged(
                    _taken_over(old), as_record_rows(spec, _mapped(rows), (MAPPED,))
                )
                rejected += [last_quarantine.filter(pl.col("source") == name), quarantined]
                continue
        rows_mapped += raw.height  # a new batch repeats a record key: the source again
        rows, quarantined = stage_source(spec, source, raw)
        accepted[name] = _mapped(rows)
        rejected.append(quarantined)
    in_order = {}
    if plan.unchanged:
        for trust, names in _sources_by_trust(spec).items():
            if names <= plan.unchanged:
                in_order[trust] = _taken_over(_trust_slice(last_records, trust))
            else:
                for name in names & plan.unchanged:
                    accepted[name] = _taken_over(_rows_of(spec, last_records, name))
        kept = last_quarantine.filter(pl.col("source").is_in(sorted(plan.unchanged)))
        rejected.append(kept)
    marked = stack_by_trust(spec, accepted, in_order, (MAPPED,))
    return MappedRecords(
        marked.drop(MAPPED),
        stack_quarantine(rejected),
        rows_mapped,
        marked.get_column(MAPPED).arg_true(),
    )


def kept_basis(store: ArtifactStore, fingerprint: str) -> RecordsBasis | None:
    """The last run's records basis, if it was made under ``fingerprint``."""
    kept = store.read_json_state(BASIS_STATE)
    if kept is None or kept.get("fingerprint") != fingerprint:
        return None
    return RecordsBasis(
        fingerprint,
        {name: SourceBasis(**source) for name, source in kept["sources"].items()},
    )


def next_basis(
    spec: Spec,
    cache: BatchCache,
    fingerprint: str,
    plan: RecordsPlan,
    ingested: dict[str, Ingested],
) -> RecordsBasis:
    """What this run's records are made of, for the next run to compare against: the
    unchanged sources as they were (with their files' fingerprints now), and each source
    read through ``cache`` with the fingerprints the cache took before reading."""
    sources = {}
    for source in spec.sources:
        if source.name in plan.unchanged and plan.basis is not None:
            before = plan.basis.sources[source.name]
            now = fingerprint_source(spec, source, before.batches)
            sources[source.name] = before._replace(batches=now)
        elif source.name in ingested and keeps(spec, source):
            paths = list_batches(spec, source)
            batches = {
                readers.batch_name(spec, source, path): cache.fingerprint(path) for path in paths
            }
            if all(batches.values()):  # else a file came after the read: mapped again
                result = ingested[source.name]
                sources[source.name] = SourceBasis(
                    batches, result.frame.columns, result.forgotten_rows_dropped
                )
    return RecordsBasis(fingerprint, sources)


def keep_basis(store: ArtifactStore, basis: RecordsBasis, mapped: MappedRecords) -> None:
    """Keep the basis for the next run, once the outputs it describes are written, and
    the positions of the records mapped this run when others were taken over."""
    if mapped.mapped_rows.len() < mapped.records.height:
        store.write_state(MAPPED_ROWS_STATE, mapped.mapped_rows.alias("row").to_frame())
    sources = {name: source._asdict() for name, source in basis.sources.items()}
    store.write_json_state(BASIS_STATE, {"fingerprint": basis.fingerprint, "sources": sources})


def forget_basis(store: ArtifactStore) -> None:
    """Drop the basis and the positions of the rows last mapped (before the outputs they
    describe are replaced: a run that stops in between leaves none, and the next run maps
    every source)."""
    store.drop_json_state(BASIS_STATE)
    store.state_path(MAPPED_ROWS_STATE).unlink(missing_ok=True)


def mapped_rows(store: ArtifactStore) -> pl.Series | None:
    """The positions in ``records`` of the records the last records stage mapped, when
    it took others over from the run before; None when it mapped every record."""
    kept = store.read_state(MAPPED_ROWS_STATE)
    return None if kept is None else kept.get_column("row")


def _sources_by_trust(spec: Spec) -> dict[int, set[str]]:
    by_trust: dict[int, set[str]] = {}
    for source in spec.sources:
        by_trust.setdefault(source.trust, set()).add(source.name)
    return by_trust


def _trust_slice(records: pl.DataFrame, trust: int) -> pl.DataFrame:
    """The rows of one trust: a slice, records being sorted by trust first."""
    column = records.get_column("trust")
    start = int(column.search_sorted(trust, side="left"))
    end = int(column.search_sorted(trust, side="right"))
    return records.slice(start, end - start)


def _rows_of(spec: Spec, records: pl.DataFrame, name: str) -> pl.DataFrame:
    """A source's rows of ``records``, in their order (its update order)."""
    trust = spec.source(name).trust
    rows = _trust_slice(records, trust)
    if len(_sources_by_trust(spec)[trust]) == 1:
        return rows
    return rows.filter(pl.col("source") == name)


def _mapped(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.with_columns(pl.lit(True).alias(MAPPED))


def _taken_over(rows: pl.DataFrame) -> pl.DataFrame:
    """The last run's rows, marked as not mapped by a column computed over one of theirs
    (trust is never null): a literal column would be one chunk beside the many of a
    table read from Parquet, and Polars would copy every column to line them up."""
    return rows.with_columns(pl.col("trust").is_null().alias(MAPPED))


def _shares_a_key(old: pl.DataFrame, new: pl.DataFrame) -> bool:
    """Whether a new row's record key is one an old row of the source has."""
    keys = new.get_column("record_key")
    return bool(old.get_column("record_key").is_in(keys.implode()).any())


def _merged(old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """Two runs of one source's rows, each in update order, as one in update order.

    New batches usually hold later updates: when every new row is updated after every
    old one (none without a time), the new rows simply follow; otherwise both are
    sorted as staging sorts a source.
    """
    if new.is_empty():
        return old
    both = pl.concat([old, new], how="vertical_relaxed")
    times = old.get_column("updated_at")
    after = new.get_column("updated_at")
    if old.is_empty() or (
        times.null_count() == 0 and after.null_count() == 0 and after.min() > times.max()
    ):
        return both
    return both.sort(UPDATE_ORDER, nulls_last=True)
