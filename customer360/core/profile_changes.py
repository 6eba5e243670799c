"""What the profile steps keep between runs: the inputs the last winners were resolved
over, and which customers survivorship resolved again, handed on to the golden profiles.

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
from customer360.core.incremental_traits import records_basis, traits_fingerprint
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore
from customer360.core.touched_clusters import PROFILE_INPUTS_STATE, KeptInputs
from customer360.core.unchanged_batches import unchanged_batches

# The last survivorship: its generation and the one before it (JSON), and the
# resolved_ids it touched, of that run or the one before (Parquet).
CHANGES_STATE = "survivorship_changes"
TOUCHED_STATE = "survivorship_touched"
# What the last winners were resolved over: the records basis, under a fingerprint
# (JSON; the membership itself is the Parquet state PROFILE_INPUTS_STATE).
INPUTS_BASIS_STATE = "profile_inputs_basis"
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


def kept_inputs(store: ArtifactStore, spec: Spec) -> KeptInputs | None:
    """What the last winners were resolved over, compared with the records now; None
    when every cluster counts as touched (nothing kept, another spec or classification,
    records made under another fingerprint)."""
    basis = store.read_json_state(INPUTS_BASIS_STATE)
    now = records_basis(store)
    if basis is None or now is None or basis.get("fingerprint") != traits_fingerprint(spec):
        return None
    batches = unchanged_batches(basis["records_basis"], now)
    if batches is None:
        return None
    membership = store.read_state(PROFILE_INPUTS_STATE, ["entity_key", "resolved_id"])
    return None if membership is None else KeptInputs(membership, batches)


def forget_inputs(store: ArtifactStore) -> None:
    """Before the winners are replaced: a run that stops in between resolves everything
    next time rather than trust inputs that do not match them."""
    store.state_path(PROFILE_INPUTS_STATE).unlink(missing_ok=True)
    store.drop_json_state(INPUTS_BASIS_STATE)


def keep_inputs(store: ArtifactStore, spec: Spec) -> None:
    """Once the winners are written: the membership they were resolved over (a link to
    the table's file, not a copy of its rows) and the records basis of the records."""
    basis = records_basis(store)
    if basis is None:
        return
    store.share_state(PROFILE_INPUTS_STATE, store.path("membership"))
    state = {"fingerprint": traits_fingerprint(spec), "records_basis": basis}
    store.write_json_state(INPUTS_BASIS_STATE, state)
