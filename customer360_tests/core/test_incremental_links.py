"""Linking again only the groups a batch touched, through the artifact store as a run
does: the last edges read as a scan, the spliced ones streamed over their own table."""

from __future__ import annotations

import polars as pl

from customer360.core.edges import build_edges, skipped_groups
from customer360.core.identifiers import build_identifiers
from customer360.core.incremental_links import (
    LINK_INDEX_STATE,
    keep_link_inputs,
    kept_links,
    update_edges,
)
from customer360.core.storage import ArtifactStore

from .test_incremental_clusters import EDGE, SPEC, records_of, rows

FINGERPRINT = "spec"
FIRST = {
    "b1": [
        ("K", "a@x.io", "2125550101", "Ann", 1),
        ("L", "a@x.io", "2125550102", "Anne", 2),
        ("M", "b@x.io", "2125550102", "Bob", 3),
        ("N", "c@x.io", "2125550103", "Bob", 4),
    ]
}
# a new record joins the first email's group, and the third email's record leaves
SECOND = {
    "b1": FIRST["b1"][:3],
    "b2": [("O", "a@x.io", "2125550103", "Ann", 5)],
}


def link_and_keep(store: ArtifactStore, batches: dict[str, list[tuple]], full: bool):
    """One link_records step: update, write both tables, keep the inputs."""
    records = records_of(batches)
    identifiers = build_identifiers(SPEC, records)
    update = update_edges(
        records,
        identifiers.lazy(),
        SPEC.corroboration,
        FINGERPRINT,
        None if full else kept_links(store),
        full_above=1.0,
    )
    store.write("identity_edges", update.links.edges)
    store.write("skipped_groups", skipped_groups(identifiers, update.links.guarded_groups))
    keep_link_inputs(store, update.inputs)
    return records, identifiers, update


def test_spliced_edges_streamed_over_their_table_equal_linking_everything(tmp_path):
    store = ArtifactStore(tmp_path)
    link_and_keep(store, FIRST, full=True)
    records, identifiers, update = link_and_keep(store, SECOND, full=False)
    assert isinstance(update.links.edges, pl.LazyFrame)  # a plan, never held whole
    assert update.relinked_groups is not None
    everything = build_edges(records, identifiers, SPEC.corroboration)
    assert rows(store.read("identity_edges"), *EDGE) == rows(everything.edges, *EDGE)
    assert rows(update.links.guarded_groups) == rows(everything.guarded_groups)


def test_inputs_kept_with_text_groups_are_not_compared_with(tmp_path):
    store = ArtifactStore(tmp_path)
    link_and_keep(store, FIRST, full=True)
    index = store.read_state(LINK_INDEX_STATE)
    text_index = index.select(
        pl.lit("email").alias("identifier_type"), pl.lit("a@x.io").alias("value"), "row_hash"
    )
    store.write_state(LINK_INDEX_STATE, text_index)  # the layout kept before
    assert kept_links(store) is None
    records, identifiers, update = link_and_keep(store, SECOND, full=False)
    assert update.relinked_groups is None  # everything linked again
    everything = build_edges(records, identifiers, SPEC.corroboration)
    assert rows(update.links.edges, *EDGE) == rows(everything.edges, *EDGE)
