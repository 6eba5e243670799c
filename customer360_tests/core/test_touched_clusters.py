"""Survivorship over touched clusters only: which clusters count as touched, and that
carrying the others over gives what resolving everything gives."""

from __future__ import annotations

import polars as pl

from customer360.core.storage import ArtifactStore
from customer360.core.survivorship import resolve_traits
from customer360.core.touched_clusters import (
    KeptInputs,
    resolve_touched_traits,
    touched_clusters,
)
from customer360.core.traits import build_traits

from .conftest import make_spec, records_frame, spec_dict

SPEC = make_spec(spec_dict())
COLUMNS = ["email", "phone", "first_name"]


def records(*rows: tuple[str, str], batch: str = "day1.csv") -> pl.DataFrame:
    """Records (entity_key, first_name) of one batch, in canonical order."""
    return records_frame(
        [{"entity_key": key, "first_name": name, "batch": batch} for key, name in rows], COLUMNS
    )


def membership(clusters: dict[str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"entity_key": list(clusters), "resolved_id": list(clusters.values())},
        schema={"entity_key": pl.String, "resolved_id": pl.String},
    )


def no_identifiers() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "entity_key": pl.String,
            "identifier_type": pl.String,
            "value": pl.String,
            "status": pl.String,
        }
    )


def resolve(recs: pl.DataFrame, members: pl.DataFrame, kept=(None, None)):
    """Survivorship over ``recs``; ``kept``: the last inputs and winners."""
    traits = build_traits(SPEC, recs, no_identifiers())
    return resolve_touched_traits(SPEC, traits, recs, members, *kept), traits


BEFORE = records(("crm:1", "Ann"), ("crm:2", "Anne"), ("crm:3", "Bob"), ("crm:4", "Cy"))
CLUSTERS = {"crm:1": "crm:1", "crm:2": "crm:1", "crm:3": "crm:3", "crm:4": "crm:4"}
# the CRM records of day1.csv are as they were last run
UNCHANGED = KeptInputs(membership(CLUSTERS), {"crm": ["day1.csv"]})


def touched(after: pl.DataFrame, clusters_after: dict[str, str], kept=UNCHANGED) -> set[str]:
    found = touched_clusters(kept, after, membership(clusters_after))
    return set(found) & set(clusters_after.values())


def test_nothing_changed_touches_nothing():
    assert touched(BEFORE, CLUSTERS) == set()


def test_a_new_record_touches_only_the_cluster_it_joins():
    after = pl.concat([BEFORE, records(("crm:5", "Bobby"), batch="day2.csv")])
    assert touched(after, {**CLUSTERS, "crm:5": "crm:3"}) == {"crm:3"}


def test_a_record_of_a_changed_batch_touches_its_cluster():
    after = pl.concat(
        [
            records(("crm:1", "Ann"), ("crm:3", "Bob"), ("crm:4", "Cy")),
            records(("crm:2", "Anna"), batch="day2.csv"),  # its key again, in a new batch
        ]
    )
    assert touched(after, CLUSTERS) == {"crm:1"}
    assert touched(BEFORE, CLUSTERS, KeptInputs(membership(CLUSTERS), {})) == set(CLUSTERS.values())


def test_a_moved_record_touches_the_cluster_it_left_and_the_one_it_joined():
    assert touched(BEFORE, {**CLUSTERS, "crm:2": "crm:4"}) == {"crm:1", "crm:4"}


def test_a_removed_record_touches_the_cluster_it_left():
    after = BEFORE.filter(pl.col("entity_key") != "crm:2")
    found = touched_clusters(
        UNCHANGED, after, membership({k: v for k, v in CLUSTERS.items() if k != "crm:2"})
    )
    assert set(found) == {"crm:1"}


def test_without_kept_inputs_every_cluster_is_resolved():
    result, _ = resolve(BEFORE, membership(CLUSTERS))
    assert result.touched is None
    assert result.reused_clusters == 0


def test_carried_over_winners_equal_resolving_everything():
    first, _ = resolve(BEFORE, membership(CLUSTERS))
    after = pl.concat(
        [
            records(("crm:1", "Ann"), ("crm:3", "Bob"), ("crm:4", "Cy")),
            records(("crm:2", "Anna"), batch="day2.csv"),
        ]
    )
    second, traits = resolve(after, membership(CLUSTERS), (UNCHANGED, first.resolved))
    assert second.reused_clusters == 2  # crm:3 and crm:4; crm:1 changed
    assert set(second.touched) == {"crm:1"}
    everything = resolve_traits(SPEC, traits, after, membership(CLUSTERS)).collect()
    carried_and_fresh = second.resolved.collect()
    assert sorted(carried_and_fresh.rows()) == sorted(everything.rows())
    assert carried_and_fresh.schema == everything.schema


def test_winners_carried_from_the_stored_table_stream_into_its_new_version(tmp_path):
    store = ArtifactStore(tmp_path)
    first, _ = resolve(BEFORE, membership(CLUSTERS))
    store.write("resolved_traits", first.resolved)
    after = pl.concat([BEFORE, records(("crm:5", "Bobby"), batch="day2.csv")])
    clusters = {**CLUSTERS, "crm:5": "crm:3"}
    second, traits = resolve(
        after, membership(clusters), (UNCHANGED, store.scan("resolved_traits"))
    )
    assert second.reused_clusters == 2
    store.write("resolved_traits", second.resolved)  # over the file the carried rows come from
    everything = resolve_traits(SPEC, traits, after, membership(clusters)).collect()
    assert sorted(store.read("resolved_traits").rows()) == sorted(everything.rows())
