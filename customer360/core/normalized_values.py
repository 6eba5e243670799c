"""Identifier values already normalized, kept between runs: a run normalizes only values
it has not seen before.

A raw value's normalized form, status and reason (before group sizes) depend on nothing
but the value, its identifier type's settings in the spec and the normalizing code, so a
value classified once is classified the same way again. Most of a run's records are last
run's records, so most of its values were classified before: looking them up costs a
fraction of normalizing them again (emails through a regex, phones through a parser).

Values are kept under ``artifacts/state/normalized_values/`` in segments, each holding
the values one run classified for the first time, so that a run adding a batch writes
only the batch's new values. Each row carries the fingerprint of its type (settings,
default region, normalizing code, library versions), so a changed spec or upgrade never
uses a stale value: its type is normalized again. Rows are found by a 64-bit key of the
raw value and then compared with the raw value itself, so a key that two values share
never lends one value the other's form. When segments pile up, or kept values carry a
fingerprint the spec no longer gives (a type switched to hashing must leave no plain
text behind), the values the run used are written as one segment and the others are
deleted, which also drops the values of records that have gone.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path

import phonenumbers
import polars as pl

from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore

STATE_FOLDER = "normalized_values"
# Segments kept before they are merged into one (each run that meets new values adds one).
MAX_SEGMENTS = 8
_CLASSIFYING_CODE = ("identifiers.py", "normalize.py")
KEPT_SCHEMA = {
    "fingerprint": pl.UInt64,
    "key": pl.UInt64,
    "value_raw": pl.String,
    "value": pl.String,
    "status": pl.String,
    "reason": pl.String,
}
# the code that classifies values (read as files: the identifiers module imports this one)
_CODE = hashlib.blake2b(
    b"".join((Path(__file__).parent / name).read_bytes() for name in _CLASSIFYING_CODE),
    digest_size=8,
).hexdigest()
_KEY_SEED = 0x5EED
_GROUP_SETTINGS = {"max_group_size", "corroborate"}


def value_key(raw: pl.Expr) -> pl.Expr:
    """The 64-bit key a raw value is looked up by (stable within one Polars version,
    which is part of every fingerprint)."""
    return raw.hash(_KEY_SEED).alias("key")


def type_fingerprints(spec: Spec) -> dict[str, int]:
    """Per identifier type, a digest of everything its values' classification depends
    on: its name (reasons quote it), settings, the default region, code and versions —
    not its group limits, which are applied to the whole table every run."""
    versions = f"{_CODE}|{pl.__version__}|{phonenumbers.__version__}"
    region = spec.settings.default_region
    return {
        name: int.from_bytes(
            hashlib.blake2b(
                f"{name}|{id_type.model_dump_json(exclude=_GROUP_SETTINGS)}|{region}|{versions}".encode(),
                digest_size=8,
            ).digest()
        )
        for name, id_type in spec.identifier_types.items()
    }


def _folder(store: ArtifactStore) -> Path:
    return store.root / "state" / STATE_FOLDER


def load_normalized_values(
    store: ArtifactStore, keys: pl.Series | None = None
) -> pl.DataFrame | None:
    """Every kept value, or only those under ``keys`` (see :func:`value_key`); None when
    nothing is kept. A run keeps only values it did not find, so segments do not overlap
    (but for a merge cut short; lookups allow for it)."""
    segments = sorted(_folder(store).glob("*.parquet"))
    if not segments:
        return None
    kept = pl.scan_parquet(segments, schema=KEPT_SCHEMA)
    if keys is not None:
        kept = kept.filter(pl.col("key").is_in(keys.implode()))
    return kept.collect()


def keep_normalized_values(
    store: ArtifactStore,
    spec: Spec,
    kept: pl.DataFrame | None,
    fresh: pl.DataFrame,
    used: pl.LazyFrame,
) -> None:
    """Add ``fresh`` (values classified for the first time) as a segment; or replace
    every segment by ``used`` (all values the run classified or looked up) when nothing
    was ``kept`` (a first or full run), when values of another spec or code are kept (a
    changed type: they may be the plain text of a type hashed now), or when segments
    pile up."""
    folder = _folder(store)
    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.glob("*.parquet"))
    current = pl.Series(list(type_fingerprints(spec).values()), dtype=pl.UInt64)
    merge = (
        kept is None
        or not kept.get_column("fingerprint").unique().is_in(current.implode()).all()
        or len(existing) + 1 > MAX_SEGMENTS
    )
    rows = used.collect() if merge else fresh
    if rows.height:
        store.write_state(f"{STATE_FOLDER}/{uuid.uuid4().hex}", rows.select(list(KEPT_SCHEMA)))
    if merge:
        for segment in existing:
            segment.unlink(missing_ok=True)


def clear_normalized_values(store: ArtifactStore) -> None:
    """Forget every kept value (they include raw identifier text)."""
    shutil.rmtree(_folder(store), ignore_errors=True)
