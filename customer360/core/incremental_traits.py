"""``traits`` again only for the records that are new or changed since the last table.

A record's observations depend on nothing but its own row and its identifiers' values
and statuses — and of a status only whether it is usable, which group sizes never
change (an over-size value is usable like a linkable one) — under the spec and the
code. A record's row, in turn, depends only on its batch's content, the spec, the code
and the forgotten keys (see :mod:`customer360.core.incremental_records`). So the records
of a batch that has not changed since the last table was built, in a source read the
same way, still have the observations that table holds for them: those rows are carried
over, streamed from the last table into the new one, and only the other records'
observations are made.

What the last table was built from is kept as the *traits basis*: a fingerprint of the
spec, the identifiers' classification and this code; the records basis the table was
built over (every source's batches and their content hashes); and how many records it
held. No basis, another fingerprint, a records basis made under another fingerprint, or a
full run: every observation is made again. The basis is dropped before the table is
replaced and written after it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import NamedTuple

import polars as pl

from customer360.core import traits
from customer360.core.incremental_records import BASIS_STATE as RECORDS_BASIS_STATE
from customer360.core.normalized_values import type_fingerprints
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore
from customer360.core.touched_clusters import spec_fingerprint
from customer360.core.traits import build_traits
from customer360.core.unchanged_batches import in_batches, unchanged_batches

BASIS_STATE = "traits_basis"
_CODE = hashlib.blake2b(Path(traits.__file__).read_bytes(), digest_size=8).hexdigest()


class KeptTraits(NamedTuple):
    batches: dict[str, list[str]]
    """Per source, the batches whose records' observations the last table holds as they
    would be made now."""
    records: int
    """The records the last table was built from."""


class Traits(NamedTuple):
    table: pl.LazyFrame  # every observation, as a plan to stream into the table
    records_built: int  # records whose observations were made this run


def traits_fingerprint(spec: Spec) -> str:
    """What the last table must have been made under."""
    text = json.dumps([spec_fingerprint(spec), type_fingerprints(spec), _CODE], sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def records_basis(store: ArtifactStore) -> dict | None:
    """The records basis of the records stored now (None while they are being replaced,
    or when the records stage kept none)."""
    return store.read_json_state(RECORDS_BASIS_STATE)


def kept_traits(store: ArtifactStore, spec: Spec) -> KeptTraits | None:
    """What of the last table still holds, compared with the records basis now; None
    when nothing can be carried over."""
    kept = store.read_json_state(BASIS_STATE)
    now = records_basis(store)
    if kept is None or now is None or not store.exists("traits"):
        return None
    if kept["fingerprint"] != traits_fingerprint(spec):
        return None
    batches = unchanged_batches(kept["records_basis"], now)
    return None if batches is None else KeptTraits(batches, kept["records"])


def update_traits(
    spec: Spec,
    records: pl.DataFrame | pl.LazyFrame,
    identifiers: pl.DataFrame | pl.LazyFrame,
    previous: pl.LazyFrame,
    kept: KeptTraits,
) -> Traits:
    """Every observation: those of the records of ``kept`` batches carried over from
    ``previous`` (a scan of the last table), the others' made from ``records`` (with
    their ``batch``) and ``identifiers``. Equal, as a set of rows, to
    :func:`~customer360.core.traits.build_traits` over every record.

    ``records`` and ``identifiers`` may be scans of the stored tables: of the records
    carried over only the source and batch are read (and their keys when some were
    removed), and only the other records' identifier values. When the records carried
    over are as many as the last table was built from, they are all of them (none was
    removed or mapped again), and the last table is carried whole; otherwise its rows
    are kept by their record's key.
    """
    records = records.lazy()
    carried = in_batches(kept.batches)
    height, carried_count = records.select(pl.len(), carried.sum()).collect().row(0)
    fresh = records.filter(~carried).collect()
    keys = fresh.get_column("entity_key").implode()
    observed = build_traits(
        spec, fresh, identifiers.lazy().filter(pl.col("entity_key").is_in(keys))
    )
    old = previous.select(observed.collect_schema().names())
    if carried_count != kept.records:
        kept_keys = records.filter(carried).select("entity_key").collect().to_series()
        old = old.filter(pl.col("entity_key").is_in(kept_keys.implode()))
    return Traits(pl.concat([old, observed]), height - carried_count)


def forget_traits_basis(store: ArtifactStore) -> None:
    """Before the table is replaced (a run that stops in between leaves none, and the
    next run makes every observation)."""
    store.drop_json_state(BASIS_STATE)


def keep_traits_basis(store: ArtifactStore, spec: Spec, records: int) -> None:
    """Once the table is written: what it was built from, if the records basis says."""
    basis = records_basis(store)
    if basis is not None:
        state = {
            "fingerprint": traits_fingerprint(spec),
            "records_basis": basis,
            "records": records,
        }
        store.write_json_state(BASIS_STATE, state)
