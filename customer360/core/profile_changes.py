"""Which customers survivorship resolved again, handed on to the golden profiles.

A golden profile depends on nothing but its cluster's winners and records (and the
run's latest update, for its quality score): survivorship knows which clusters it
resolved again (see :mod:`customer360.core.touched_clusters`), and every other profile
can be taken from the last table — provided that table was built from the very winners
this survivorship started from. So each survivorship output is a *generation*, a random
token that names the generation before it, kept with the customers it touched; golden
profiles keep the generation they were built from. A run that stopped between the two
steps, a survivorship that resolved everything, golden profiles materialized on their
own, or code of the golden profiles changed since they were built: the chain is broken,
and every profile is built again.

Each record is dropped before the output it describes is replaced and written after it.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import polars as pl

from customer360.core import golden
from customer360.core.storage import ArtifactStore

# The last survivorship: its generation and the one before it (JSON), and the
# resolved_ids it touched, of that run or the one before (Parquet).
CHANGES_STATE = "survivorship_changes"
TOUCHED_STATE = "survivorship_touched"
# The generation the golden profiles were last built from, and under which code.
GOLDEN_BASIS_STATE = "golden_profiles_basis"
_GOLDEN_CODE = hashlib.blake2b(Path(golden.__file__).read_bytes(), digest_size=8).hexdigest()


def last_generation(store: ArtifactStore) -> str | None:
    """The generation of the winners last written, if their record is whole."""
    kept = store.read_json_state(CHANGES_STATE)
    return None if kept is None else kept.get("generation")


def forget_changes(store: ArtifactStore) -> None:
    """Before the winners are replaced: no golden profiles are built on a stale record."""
    store.drop_json_state(CHANGES_STATE)


def keep_changes(store: ArtifactStore, previous: str | None, touched: pl.Series | None) -> None:
    """Once the winners are written: a new generation, following ``previous`` (the
    generation they were resolved from) when only the ``touched`` customers changed;
    None for either means everything counts as changed."""
    follows = previous if touched is not None else None
    if touched is not None:
        store.write_state(TOUCHED_STATE, touched.alias("resolved_id").to_frame())
    else:
        store.state_path(TOUCHED_STATE).unlink(missing_ok=True)
    store.write_json_state(CHANGES_STATE, {"generation": uuid.uuid4().hex, "previous": follows})


def changed_since(store: ArtifactStore, built_from: str | None) -> pl.Series | None:
    """The customers touched by the last survivorship, when it followed ``built_from``
    (the generation the golden profiles were built from); None when everything counts as
    changed."""
    kept = store.read_json_state(CHANGES_STATE)
    if built_from is None or kept is None or kept.get("previous") != built_from:
        return None
    touched = store.read_state(TOUCHED_STATE)
    return None if touched is None else touched.get_column("resolved_id")


def golden_built_from(store: ArtifactStore) -> str | None:
    """The generation the stored golden profiles were built from, under this code."""
    kept = store.read_json_state(GOLDEN_BASIS_STATE)
    if kept is None or kept.get("code") != _GOLDEN_CODE or not store.exists("golden_profiles"):
        return None
    return kept.get("generation")


def forget_golden_basis(store: ArtifactStore) -> None:
    """Before the golden profiles are replaced."""
    store.drop_json_state(GOLDEN_BASIS_STATE)


def keep_golden_basis(store: ArtifactStore, generation: str | None) -> None:
    """Once the golden profiles are written: the generation of winners they hold."""
    if generation is not None:
        store.write_json_state(GOLDEN_BASIS_STATE, {"generation": generation, "code": _GOLDEN_CODE})
