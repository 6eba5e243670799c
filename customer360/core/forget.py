"""The right to be forgotten: a person's records leave every output and stay out.

Forgetting adds the person's entity_keys to a suppression list kept in the artifacts'
state; source extracts drop those rows as they are read, so the next run rebuilds every
table without them. What a run cannot rebuild — the golden-profile history, the lineage
of ids, the dry-run tables and the history's membership state — is purged here, and so
is the published membership, so that the next run does not record their removal. The
batches kept as read (see :mod:`customer360.core.batch_cache`) still hold the rows, so
they are dropped whole: the next run reads every batch file once more. So are the
inputs that let survivorship carry winners over (see
:mod:`customer360.core.profile_changes`) and those that let linking and clustering
work on the change only: the next run resolves every cluster again, and the cells of
the pairwise scores with the membership they score (see
:mod:`customer360.core.kept_scores`): the next run scores every record again. So are the
identifier values kept normalized (see :mod:`customer360.core.normalized_values`),
which hold raw text: the next run normalizes every value again. The audit row records
when, by what kind of selector and how many records, never the values.
The suppression list and the registry of issued ids keep entity keys (source-system
keys, no personal values): the first to keep the rows out, the second so that an id is
never issued twice.

Records the resolve service accepted that no run has read yet are the person's too: they
are found in the inbox (by the id the service assigned, or by the identifier value) and
their lines are cut out of the inbox files (see :func:`customer360.core.inbox.drop_inbox_lines`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import polars as pl

from customer360.core.batch_cache import clear_batch_cache
from customer360.core.identifiers import ValueClassifier
from customer360.core.inbox import (
    ASSIGNED_ID_COLUMN,
    data_columns,
    drop_inbox_lines,
    inbox_source,
    pending_records,
    unserved_inbox,
)
from customer360.core.incremental_clusters import forget_cluster_inputs
from customer360.core.incremental_links import forget_link_inputs
from customer360.core.ingest import hash_identifiers
from customer360.core.kept_scores import forget_kept_cells
from customer360.core.normalized_values import clear_normalized_values
from customer360.core.privacy import lookup_value
from customer360.core.profile_changes import forget_inputs
from customer360.core.records import mapped_fields
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore

FORGOTTEN_STATE = "forgotten_records"
AUDIT_TABLE = "forget_audit"
# Tables that accumulate across runs and so must be purged, not rebuilt.
PURGED_BY_ENTITY_KEY = ["membership", "cluster_lineage", "dry_run_results"]
PURGED_BY_RESOLVED_ID = ["golden_profile_history"]
PURGED_STATE = ["history_membership"]


class ForgetError(ValueError):
    """Nothing matches the request, or it is malformed; the message says which."""


def select_records(
    spec: Spec,
    store: ArtifactStore,
    resolved_id: str | None = None,
    identifier_type: str | None = None,
    value: str | None = None,
) -> pl.DataFrame:
    """The (entity_key, resolved_id) of every record of the person(s) selected by a
    resolved_id or by an identifier value (normalized, and hashed, like the data) — in
    the published graph, and among the records the resolve service accepted since (with
    the id it assigned them)."""
    membership = store.read("membership", ["entity_key", "resolved_id"])
    pending = (
        pending_records(spec, membership.get_column("entity_key"))
        if spec.service is not None
        else pl.DataFrame(schema={"entity_key": pl.String, ASSIGNED_ID_COLUMN: pl.String})
    )
    if resolved_id is not None:
        chosen = [resolved_id]
    else:
        if identifier_type not in spec.identifier_types or value is None:
            known = ", ".join(spec.identifier_types)
            raise ForgetError(f"give --resolved-id, or an identifier type ({known}) and value")
        stored = lookup_value(spec, identifier_type, value)
        holders = store.read("identifiers", ["entity_key", "identifier_type", "value"]).filter(
            (pl.col("identifier_type") == identifier_type) & (pl.col("value") == stored)
        )
        chosen = [
            *holders.join(membership, on="entity_key").get_column("resolved_id").unique(),
            *_pending_holders(spec, pending, identifier_type, stored),
        ]
    selected = pl.concat(
        [
            membership.filter(pl.col("resolved_id").is_in(chosen)),
            pending.filter(pl.col(ASSIGNED_ID_COLUMN).is_in(chosen)).select(
                "entity_key", pl.col(ASSIGNED_ID_COLUMN).alias("resolved_id")
            ),
        ]
    )
    if selected.is_empty():
        raise ForgetError("no customer matches the request; nothing was changed")
    return selected


def _pending_holders(
    spec: Spec, pending: pl.DataFrame, identifier_type: str, stored: str | None
) -> pl.Series:
    """The ids the service assigned to unread inbox records holding the value, read
    through the batch's own ingestion, mappings and normalizer."""
    if pending.is_empty() or identifier_type not in inbox_source(spec).identifiers:
        return pl.Series(ASSIGNED_ID_COLUMN, [], pl.String)
    inbox = inbox_source(spec)
    ingested, _ = hash_identifiers(spec, inbox, pending)
    mapping = next(
        field
        for field in mapped_fields(spec, inbox, data_columns(inbox))
        if field.meta.output_name() == identifier_type
    )
    id_type = spec.identifier_types[identifier_type]
    classifier = ValueClassifier(identifier_type, id_type, spec.settings.default_region)
    values = classifier.normalize(ingested.select(mapping).to_series())
    return pending.filter((values == stored).fill_null(False)).get_column(ASSIGNED_ID_COLUMN)


def forget(
    spec: Spec, store: ArtifactStore, selected: pl.DataFrame, selector: str
) -> dict[str, int]:
    """Suppress the selected records from now on, purge what runs cannot rebuild, cut
    their lines out of the service's inbox, and write the audit row. Returns the audit
    figures."""
    keys = selected.get_column("entity_key").unique()
    ids = selected.get_column("resolved_id").unique()
    suppressed = pl.concat(
        [
            frame
            for frame in (store.read_state(FORGOTTEN_STATE), keys.to_frame())
            if frame is not None
        ]
    ).unique()
    store.write_state(FORGOTTEN_STATE, suppressed)
    for table in PURGED_BY_ENTITY_KEY:
        if store.exists(table):
            store.write(
                table, store.read(table).filter(~pl.col("entity_key").is_in(keys.implode()))
            )
    for table in PURGED_BY_RESOLVED_ID:
        if store.exists(table):
            store.write(
                table, store.read(table).filter(~pl.col("resolved_id").is_in(ids.implode()))
            )
    for name in PURGED_STATE:
        state = store.read_state(name)
        if state is not None:
            store.write_state(name, state.filter(~pl.col("entity_key").is_in(keys.implode())))
    if spec.service is not None:
        with unserved_inbox(spec) as no_service_running:
            drop_inbox_lines(spec, keys, include_open_file=no_service_running)
    clear_batch_cache(store)
    clear_normalized_values(store)  # kept raw identifier values may be the person's
    # survivorship's kept membership names the person's records: the next run resolves
    # every cluster again
    forget_inputs(store)
    # so are the kept link and cluster inputs (they hold the person's values and keys,
    # and the purged membership no longer names the clusters they were in)
    forget_link_inputs(store)
    forget_cluster_inputs(store)
    forget_kept_cells(store)  # the scored membership names the person's records
    figures = {"records_forgotten": keys.len(), "customers_forgotten": ids.len()}
    store.append(
        AUDIT_TABLE,
        pl.DataFrame(
            {
                "request_id": [uuid.uuid4().hex],
                "requested_at": [datetime.now(UTC).replace(tzinfo=None)],
                "selector": [selector],
                **{name: [count] for name, count in figures.items()},
            }
        ),
    )
    return figures


def suppressed_keys(store: ArtifactStore) -> pl.Series:
    """Entity keys that must never be read again."""
    state = store.read_state(FORGOTTEN_STATE)
    return (
        pl.Series("entity_key", [], pl.String) if state is None else state.get_column("entity_key")
    )
