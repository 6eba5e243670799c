"""Survivorship only where something changed: clusters untouched since the last run keep
their winning values; the others are resolved again.

A cluster's winners depend on nothing but its own records' observations and their
trust and time (ranks are compared only inside a cluster), so a cluster whose members
are the same records as last run, each unchanged, under the same spec, has the same
winners. What the last winners were resolved over is kept as *profile inputs* (see
:mod:`customer360.core.profile_changes`): the membership they were resolved over (a
link to its file) and the records basis of the records (every batch's content hash),
under a fingerprint of the spec, the identifiers' classification and the traits code.
A record is unchanged when its batch is (see
:mod:`customer360.core.unchanged_batches`: told by the records basis, without reading
a value), and it stayed in its cluster when its (entity_key, resolved_id) is found on
both sides. A new, removed, moved or changed record touches the cluster it is in now
and the one it was in before; another fingerprint, or no kept inputs, touches
everything (a full run).
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import polars as pl

from customer360.core.keys import placement_changes
from customer360.core.spec import Spec
from customer360.core.survivorship import resolve_traits
from customer360.core.unchanged_batches import in_batches

# The state file (under artifacts/state/) that holds the profile inputs of the last run.
PROFILE_INPUTS_STATE = "profile_inputs"
# The provenance of records that shapes their observations (see core.traits).
OBSERVED_PROVENANCE = ["entity_key", "source", "trust", "updated_at"]
# The columns of records survivorship reads: the provenance, and the batch that tells
# whether a record may have changed.
RECORD_COLUMNS = [*OBSERVED_PROVENANCE, "batch"]


class Survivorship(NamedTuple):
    resolved: pl.LazyFrame  # the winning observations of every cluster, as a plan
    reused_clusters: int  # clusters whose winners were carried over unchanged
    touched: pl.Series | None  # the resolved_ids resolved again or gone; None: every one


class KeptInputs(NamedTuple):
    membership: pl.DataFrame
    """entity_key and resolved_id of every record the last winners were resolved over."""
    batches: dict[str, list[str]]
    """Per source, the batches whose records are unchanged since."""


def spec_fingerprint(spec: Spec) -> str:
    """Any change of the spec (strategies, mappings, normalizers …) counts as a change."""
    return hashlib.blake2b(spec.model_dump_json().encode(), digest_size=16).hexdigest()


def kept_under(kept: pl.DataFrame | None, fingerprint: str) -> bool:
    """Whether inputs kept by the last run can be compared with this run's: kept, and
    every row made under ``fingerprint`` (another spec means everything changed)."""
    if kept is None or kept.is_empty():
        return False
    return bool((kept.get_column("spec_fingerprint") == fingerprint).all())


def touched_clusters(
    previous: KeptInputs, records: pl.DataFrame, membership: pl.DataFrame
) -> pl.Series:
    """The resolved_ids, of last run or this one, that hold a new, removed, moved or
    changed record. ``records`` need entity_key, source and batch.

    Moves are found by :func:`~customer360.core.keys.placement_changes` (hashed pairs,
    no join on text keys). A changed record is one outside the unchanged batches, and
    touches its cluster even where it stayed.
    """
    changed = records.filter(~in_batches(previous.batches)).get_column("entity_key")
    left, entered = placement_changes(previous.membership, membership)
    return pl.concat(
        [
            previous.membership.get_column("resolved_id").filter(left),
            membership.get_column("resolved_id").filter(entered),
            membership.filter(pl.col("entity_key").is_in(changed.implode())).get_column(
                "resolved_id"
            ),
        ]
    ).unique()


def resolve_touched_traits(
    spec: Spec,
    traits: pl.DataFrame | pl.LazyFrame,
    records: pl.DataFrame | pl.LazyFrame,
    membership: pl.DataFrame,
    previous: KeptInputs | None = None,
    previous_resolved: pl.DataFrame | pl.LazyFrame | None = None,
) -> Survivorship:
    """The winners of every cluster: carried over from ``previous_resolved`` for clusters
    untouched since the ``previous`` inputs, resolved again for the rest. Equal, as a
    set of rows, to :func:`resolve_traits` over everything. ``records`` needs every one
    of ``RECORD_COLUMNS``. ``previous_resolved`` may be a scan of the stored table: the
    carried rows then stream from it into the new table, never held."""
    if previous is None or previous_resolved is None:
        # the batch only tells what changed: not held when everything is resolved
        records = records.lazy().select(OBSERVED_PROVENANCE).collect()
        return Survivorship(resolve_traits(spec, traits, records, membership), 0, None)
    records = records.lazy().select(RECORD_COLUMNS).collect()
    touched = touched_clusters(previous, records, membership)
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
        membership.get_column("resolved_id").n_unique()
        - touched_members.get_column("resolved_id").n_unique()
    )
    return Survivorship(resolved, reused, touched)
