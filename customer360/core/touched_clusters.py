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

from customer360.core.spec import Spec
from customer360.core.survivorship import resolve_traits

# The state file (under artifacts/state/) that holds the profile inputs of the last run.
PROFILE_INPUTS_STATE = "profile_inputs"
# The provenance of records that shapes their observations (see core.traits).
OBSERVED_PROVENANCE = ["entity_key", "source", "trust", "updated_at"]


class Survivorship(NamedTuple):
    resolved: pl.DataFrame  # the winning observations of every cluster
    inputs: pl.DataFrame  # the profile inputs to keep for the next run
    reused_clusters: int  # clusters whose winners were carried over unchanged


def spec_fingerprint(spec: Spec) -> str:
    """Any change of the spec (strategies, mappings, normalizers …) counts as a change."""
    return hashlib.blake2b(spec.model_dump_json().encode(), digest_size=16).hexdigest()


def observed_columns(spec: Spec) -> list[str]:
    """The columns of records that a record's observations are made of."""
    return [*OBSERVED_PROVENANCE, *spec.identifier_types, *spec.attribute_names]


def profile_inputs(spec: Spec, records: pl.DataFrame, membership: pl.DataFrame) -> pl.DataFrame:
    """entity_key, resolved_id, a digest of the record's content and the spec fingerprint.
    ``records`` needs every one of :func:`observed_columns`."""
    content = pl.struct(observed_columns(spec))
    digests = records.select("entity_key", content.hash().alias("digest"))
    return (
        membership.select("entity_key", "resolved_id")
        .join(digests, on="entity_key", how="left")
        .with_columns(pl.lit(spec_fingerprint(spec)).alias("spec_fingerprint"))
    )


def unchanged_clusters(previous: pl.DataFrame | None, current: pl.DataFrame) -> pl.Series:
    """resolved_ids whose records are exactly last run's, each with the same content."""
    if previous is None or previous.is_empty():
        return pl.Series("resolved_id", [], pl.String)
    fingerprints = previous.get_column("spec_fingerprint").unique()
    if fingerprints.to_list() != current.get_column("spec_fingerprint").unique().to_list():
        return pl.Series("resolved_id", [], pl.String)
    both = previous.select("entity_key", "resolved_id", "digest").join(
        current.select("entity_key", "resolved_id", "digest"),
        on="entity_key",
        how="full",
        suffix="_now",
    )
    same = (pl.col("resolved_id") == pl.col("resolved_id_now")) & (
        pl.col("digest") == pl.col("digest_now")
    )
    differing = both.filter(~same.fill_null(False))
    touched = pl.concat(
        [differing.get_column("resolved_id"), differing.get_column("resolved_id_now")]
    ).drop_nulls()
    return (
        current.select("resolved_id")
        .unique()
        .filter(~pl.col("resolved_id").is_in(touched.implode()))
        .get_column("resolved_id")
    )


def resolve_touched_traits(
    spec: Spec,
    traits: pl.DataFrame | pl.LazyFrame,
    records: pl.DataFrame,
    membership: pl.DataFrame,
    previous_inputs: pl.DataFrame | None = None,
    previous_resolved: pl.DataFrame | None = None,
) -> Survivorship:
    """The winners of every cluster: carried over from ``previous_resolved`` for clusters
    untouched since ``previous_inputs`` were kept, resolved again for the rest. Equal,
    as a set of rows, to :func:`resolve_traits` over everything."""
    inputs = profile_inputs(spec, records, membership)
    kept = (
        unchanged_clusters(previous_inputs, inputs)
        if previous_resolved is not None
        else pl.Series("resolved_id", [], pl.String)
    )
    if kept.is_empty():
        return Survivorship(resolve_traits(spec, traits, records, membership), inputs, 0)
    touched_members = membership.filter(~pl.col("resolved_id").is_in(kept.implode()))
    touched_keys = touched_members.get_column("entity_key").implode()
    fresh = resolve_traits(
        spec,
        traits.lazy().filter(pl.col("entity_key").is_in(touched_keys)),
        records.filter(pl.col("entity_key").is_in(touched_keys)),
        touched_members,
    )
    carried = previous_resolved.filter(pl.col("resolved_id").is_in(kept.implode()))
    resolved = pl.concat([carried.select(fresh.columns).cast(fresh.schema), fresh])
    return Survivorship(resolved, inputs, kept.len())
