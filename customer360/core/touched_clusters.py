"""Survivorship only where something changed: clusters untouched since the last run keep
their winning values; the others are resolved again.

A cluster's winners depend on nothing but its own records' observations and their
trust and time (ranks are compared only inside a cluster), so a cluster whose members
are the same records as last run, each with the same content, under the same spec,
has the same winners. What decides that is kept between runs as *profile inputs*:
every record's resolved_id and a digest of its content, with a fingerprint of the spec.
A new, removed, moved or changed record touches the cluster it is in now and the one
it was in before; a different spec, or no kept inputs, touches everything (a full run).
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import polars as pl

from customer360.core.frames import aligned_or_joined
from customer360.core.spec import Spec
from customer360.core.survivorship import resolve_traits

# The state file (under artifacts/state/) that holds the profile inputs of the last run.
PROFILE_INPUTS_STATE = "profile_inputs"
# The provenance of records that shapes their observations (see core.traits).
OBSERVED_PROVENANCE = ["entity_key", "source", "trust", "updated_at"]


class Survivorship(NamedTuple):
    resolved: pl.LazyFrame  # the winning observations of every cluster, as a plan
    inputs: pl.DataFrame  # the profile inputs to keep for the next run
    reused_clusters: int  # clusters whose winners were carried over unchanged
    touched: pl.Series | None  # the resolved_ids resolved again or gone; None: every one


def spec_fingerprint(spec: Spec) -> str:
    """Any change of the spec (strategies, mappings, normalizers …) counts as a change."""
    return hashlib.blake2b(spec.model_dump_json().encode(), digest_size=16).hexdigest()


def kept_under(kept: pl.DataFrame | None, fingerprint: str) -> bool:
    """Whether inputs kept by the last run can be compared with this run's: kept, and
    every row made under ``fingerprint`` (another spec means everything changed)."""
    if kept is None or kept.is_empty():
        return False
    return bool((kept.get_column("spec_fingerprint") == fingerprint).all())


def observed_columns(spec: Spec) -> list[str]:
    """The columns of records that a record's observations are made of."""
    return [*OBSERVED_PROVENANCE, *spec.identifier_types, *spec.attribute_names]


def digested_records(spec: Spec, records: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Each record's provenance (entity_key, source, trust, updated_at) and a digest of
    its content, every one of :func:`observed_columns`.

    One streamed pass over ``records`` (a scan of the stored table, in a run): the
    content is hashed as it is read and never held whole — at ten million records its
    dozen text columns take about 1.7 GB that survivorship has no other use for."""
    content = pl.struct(observed_columns(spec))
    return (
        records.lazy()
        .select(*OBSERVED_PROVENANCE, content.hash().alias("digest"))
        .collect(engine="streaming")
    )


def profile_inputs(spec: Spec, digested: pl.DataFrame, membership: pl.DataFrame) -> pl.DataFrame:
    """entity_key, resolved_id, the digest of the record's content and the spec
    fingerprint; ``digested`` as :func:`digested_records` makes it."""
    return aligned_or_joined(
        membership.select("entity_key", "resolved_id"),
        digested.select("entity_key", "digest"),
        on="entity_key",
    ).with_columns(pl.lit(spec_fingerprint(spec)).alias("spec_fingerprint"))


def touched_clusters(previous: pl.DataFrame | None, current: pl.DataFrame) -> pl.Series | None:
    """The resolved_ids, of last run or this one, that hold a new, removed, moved or
    changed record; None when everything counts as touched (no kept inputs, or another
    spec).

    A record is unchanged when its (entity_key, resolved_id, digest) is found on the
    other side. Each side's triples are hashed to one integer and looked up in the
    other side's, so the million-row comparison is two integer ``is_in`` instead of a
    full join on text keys. Like the digest itself, a 64-bit hash could only hide a
    change by colliding with another record's state: about n / 2**64 per record.
    """
    if current.is_empty() or not kept_under(
        previous, current.get_column("spec_fingerprint").first()
    ):
        return None
    before, now = _record_states(previous), _record_states(current)
    return pl.concat(
        [
            previous.get_column("resolved_id").filter(~before.is_in(now.implode())),
            current.get_column("resolved_id").filter(~now.is_in(before.implode())),
        ]
    ).unique()


def _record_states(inputs: pl.DataFrame) -> pl.Series:
    """Each record's (entity_key, resolved_id, digest) as one UInt64."""
    return inputs.select(pl.struct("entity_key", "resolved_id", "digest").hash()).to_series()


def resolve_touched_traits(
    spec: Spec,
    traits: pl.DataFrame | pl.LazyFrame,
    records: pl.DataFrame | pl.LazyFrame,
    membership: pl.DataFrame,
    previous_inputs: pl.DataFrame | None = None,
    previous_resolved: pl.DataFrame | pl.LazyFrame | None = None,
) -> Survivorship:
    """The winners of every cluster: carried over from ``previous_resolved`` for clusters
    untouched since ``previous_inputs`` were kept, resolved again for the rest. Equal,
    as a set of rows, to :func:`resolve_traits` over everything. ``records`` needs every
    one of :func:`observed_columns`; of them only the provenance is held.
    ``previous_resolved`` may be a scan of the stored table: the carried rows then
    stream from it into the new table, never held."""
    records = digested_records(spec, records)
    inputs = profile_inputs(spec, records, membership)
    touched = touched_clusters(previous_inputs, inputs) if previous_resolved is not None else None
    if touched is None:
        return Survivorship(resolve_traits(spec, traits, records, membership), inputs, 0, None)
    # The touched clusters are few in an incremental run: their records' observations
    # are read from the table once, and the winners resolved on that small frame.
    in_touched = pl.col("resolved_id").is_in(touched.implode())
    touched_members = membership.filter(in_touched)
    touched_keys = pl.col("entity_key").is_in(touched_members.get_column("entity_key").implode())
    fresh = resolve_traits(
        spec,
        traits.lazy().filter(touched_keys).collect(),
        records.filter(touched_keys),
        touched_members,
    )
    schema = fresh.collect_schema()
    carried = previous_resolved.lazy().filter(~in_touched).select(schema.names()).cast(schema)
    resolved = pl.concat([carried, fresh])
    reused = (
        inputs.get_column("resolved_id").n_unique()
        - touched_members.get_column("resolved_id").n_unique()
    )
    return Survivorship(resolved, inputs, reused, touched)
