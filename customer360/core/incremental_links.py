"""``identity_edges`` again only for the identifier groups that changed since the last run.

A group's edges depend on nothing but its own members: which records hold the value and
with what status, their order (trust, then update, then entity_key — a total order, so
two records keep their relative order unless one of them changes) and, for a guarded
type, their corroborating attribute. A group none of whose members came, went or
changed has the same edges, and the same verdict of the guard, as last run. What
decides that is kept between runs as *link inputs*: a hash of every identifier row
(record, type, value, status) and of every record's order keys and corroborating
attributes, with a fingerprint of the spec. The groups of every changed row are linked
again and spliced into the last run's edges; no kept inputs, or another spec, means
linking everything.
"""

from __future__ import annotations

from typing import NamedTuple

import polars as pl

from customer360.core.edges import IdentifierLinks, build_edges, is_guarded
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore
from customer360.core.touched_clusters import kept_under, spec_fingerprint

# The state files (under artifacts/state/) of the link inputs of the last run.
LINK_INDEX_STATE = "link_index"
LINK_RECORDS_STATE = "link_records"
ORDER_COLUMNS = ["trust", "updated_at"]
"""What orders records besides entity_key (see core.records): star anchors follow it."""
GROUP = ["identifier_type", "value"]
RELINK_SHARE = 0.5
"""Above this share of identifier rows in touched groups, linking everything is cheaper."""


def inputs_fingerprint(spec: Spec) -> str:
    """What kept inputs must have been made under to be compared with: the same spec and
    the same Polars (whose row hashes they hold)."""
    return f"{spec_fingerprint(spec)}/polars-{pl.__version__}"


def fingerprint_column(fingerprint: str) -> pl.Expr:
    """The spec fingerprint beside every kept row, as a Categorical: one string and a
    code per row, where text would be read back as ten million copies of it (0.4 GB)."""
    return pl.lit(fingerprint, dtype=pl.Categorical).alias("spec_fingerprint")


def group_hash() -> pl.Expr:
    """One 64-bit hash per identifier group (identifier_type, value)."""
    return pl.struct(GROUP).hash().alias("group_hash")


class LinkInputs(NamedTuple):
    index: pl.DataFrame
    """group_hash and row_hash (of the whole row), per identifier with a value."""
    records: pl.DataFrame
    """record_hash (of its key, order keys and corroborating attributes) and
    spec_fingerprint, per record in canonical order."""


class PreviousLinks(NamedTuple):
    inputs: LinkInputs
    edges: pl.DataFrame | pl.LazyFrame
    """The last run's edges: a scan of the table in a run, read only as it is spliced."""
    guarded_groups: pl.DataFrame


class LinkUpdate(NamedTuple):
    links: IdentifierLinks
    """Its edges are a plan when spliced into the last run's (see :func:`update_edges`)."""
    inputs: LinkInputs
    """What the next run compares against."""
    relinked_groups: int | None
    """Identifier groups linked again; None when everything was (a full run)."""


def link_record_columns(corroborate: dict[str, str]) -> list[str]:
    """The columns of records that linking reads."""
    return ["entity_key", *ORDER_COLUMNS, *dict.fromkeys(corroborate.values())]


def link_inputs(
    records: pl.DataFrame,
    identifiers: pl.DataFrame | pl.LazyFrame,
    corroborate: dict[str, str],
    fingerprint: str,
) -> LinkInputs:
    """The inputs of this run's links, to tell the next run which groups changed.

    Integers only: a record's hash covers its entity_key, so a record that came, went
    or changed shows as a hash found in one run only, and a removed record's groups are
    found among the identifier rows found in one run only."""
    rows = pl.struct("entity_key", "identifier_type", "value", "status")
    index = (
        identifiers.lazy()
        .filter(pl.col("value").is_not_null())
        .select(group_hash(), rows.hash().alias("row_hash"))
        .collect()
    )
    content = pl.struct(link_record_columns(corroborate))
    keyed = records.select(content.hash().alias("record_hash"), fingerprint_column(fingerprint))
    return LinkInputs(index, keyed)


def touched_groups(
    previous: LinkInputs,
    current: LinkInputs,
    records: pl.DataFrame,
    identifiers: pl.DataFrame | pl.LazyFrame,
) -> pl.Series:
    """The group hashes of every group with a member that came, went or changed: the
    groups of identifier rows found in one run only, and the current groups of records
    (``current.records`` is row for row with ``records``) whose order keys or
    corroborating attributes changed."""
    before, now = previous.index.get_column("row_hash"), current.index.get_column("row_hash")
    changed_rows = [
        current.index.filter(~pl.col("row_hash").is_in(before.implode())),
        previous.index.filter(~pl.col("row_hash").is_in(now.implode())),
    ]
    kept = previous.records.get_column("record_hash").implode()
    changed = ~current.records.get_column("record_hash").is_in(kept)
    changed_keys = records.get_column("entity_key").filter(changed)
    their_groups = (
        identifiers.lazy()
        .filter(pl.col("value").is_not_null(), pl.col("entity_key").is_in(changed_keys.implode()))
        .select(group_hash())
        .collect()
    )
    groups = [frame.get_column("group_hash") for frame in [*changed_rows, their_groups]]
    return pl.concat(groups).unique()


def update_edges(
    records: pl.DataFrame,
    identifiers: pl.DataFrame | pl.LazyFrame,
    corroborate: dict[str, str],
    fingerprint: str,
    previous: PreviousLinks | None = None,
    full_above: float = RELINK_SHARE,
) -> LinkUpdate:
    """This run's links: the last run's, with the touched groups linked again — equal, as
    a set of rows, to :func:`build_edges` over everything.

    ``records`` are in canonical order with :func:`link_record_columns`; ``previous``
    holds the last run's inputs, edges and guarded groups (none: link everything). Above
    ``full_above`` of the identifier rows in touched groups, everything is linked again.
    ``identifiers`` may be a scan, read in passes that each load only the rows and
    columns they use: the whole table is never held (2.3 GB at ten million records).
    Linking everything gives the edges as a frame; splicing, as a plan over the last
    run's edges (``previous.edges``, which may be a scan) that drops the touched groups'
    edges and adds theirs anew.
    """
    inputs = link_inputs(records, identifiers, corroborate, fingerprint)
    if previous is None or not kept_under(previous.inputs.records, fingerprint):
        return LinkUpdate(build_edges(records, identifiers, corroborate), inputs, None)
    touched = touched_groups(previous.inputs, inputs, records, identifiers).implode()
    members = identifiers.lazy().filter(group_hash().is_in(touched)).collect()
    if members.height > full_above * identifiers.lazy().select(pl.len()).collect().item():
        return LinkUpdate(build_edges(records, identifiers, corroborate), inputs, None)
    # a filter keeps the canonical order: each group's anchor is the same as in a full run
    holders = records.filter(pl.col("entity_key").is_in(members.get_column("entity_key").implode()))
    fresh = build_edges(holders, members, corroborate)
    untouched = ~group_hash().is_in(touched)
    edges = pl.concat([previous.edges.lazy().filter(untouched), fresh.edges.lazy()])
    guarded = pl.concat([previous.guarded_groups.filter(untouched), fresh.guarded_groups])
    return LinkUpdate(IdentifierLinks(edges, guarded), inputs, touched.list.len().item())


def kept_links(store: ArtifactStore) -> PreviousLinks | None:
    """The last run's link inputs, guarded groups and edges (a scan), if all were kept.
    Inputs kept in another layout (text groups, keyed records) are not kept ones."""
    index, keyed = store.read_state(LINK_INDEX_STATE), store.read_state(LINK_RECORDS_STATE)
    if index is None or keyed is None or "group_hash" not in index.columns:
        return None
    if not (store.exists("identity_edges") and store.exists("skipped_groups")):
        return None
    guarded = store.read("skipped_groups").filter(is_guarded(pl.col("reason")))
    return PreviousLinks(
        LinkInputs(index, keyed), guarded_groups=guarded, edges=store.scan("identity_edges")
    )


def forget_link_inputs(store: ArtifactStore) -> None:
    """Drop the kept inputs (before the outputs they describe are replaced: a run that
    stops in between leaves none, and the next run links everything)."""
    store.state_path(LINK_RECORDS_STATE).unlink(missing_ok=True)
    store.state_path(LINK_INDEX_STATE).unlink(missing_ok=True)


def keep_link_inputs(store: ArtifactStore, inputs: LinkInputs) -> None:
    """Keep the inputs for the next run, once the outputs they describe are written."""
    store.write_state(LINK_INDEX_STATE, inputs.index)
    store.write_state(LINK_RECORDS_STATE, inputs.records)  # last: it marks the pair whole
