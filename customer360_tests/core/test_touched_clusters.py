"""Survivorship over touched clusters only: which clusters count as touched, and that
carrying the others over gives what resolving everything gives."""

from __future__ import annotations

import polars as pl

from customer360.core.storage import ArtifactStore
from customer360.core.survivorship import resolve_traits
from customer360.core.touched_clusters import (
    digested_records,
    profile_inputs,
    resolve_touched_traits,
    touched_clusters,
)
from customer360.core.traits import build_traits

from .conftest import make_spec, records_frame, spec_dict

SPEC = make_spec(spec_dict())
COLUMNS = ["email", "phone", "first_name"]


def records(*rows: tuple[str, str]) -> pl.DataFrame:
    """Records (entity_key, first_name), in canonical order."""
    return records_frame([{"entity_key": key, "first_name": name} for key, name in rows], COLUMNS)


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
    traits = build_traits(SPEC, recs, no_identifiers())
    return resolve_touched_traits(SPEC, traits, recs, members, *kept), traits


BEFORE = records(("crm:1", "Ann"), ("crm:2", "Anne"), ("crm:3", "Bob"), ("crm:4", "Cy"))
CLUSTERS = {"crm:1": "crm:1", "crm:2": "crm:1", "crm:3": "crm:3", "crm:4": "crm:4"}


def touched(after: pl.DataFrame, clusters_after: dict[str, str]) -> set[str]:
    previous = profile_inputs(SPEC, digested_records(SPEC, BEFORE), membership(CLUSTERS))
    current = profile_inputs(SPEC, digested_records(SPEC, after), membership(clusters_after))
    found = touched_clusters(previous, current)
    assert found is not None
    return set(found) & set(clusters_after.values())


def test_nothing_changed_touches_nothing():
    assert touched(BEFORE, CLUSTERS) == set()


def test_a_new_record_touches_only_the_cluster_it_joins():
    after = pl.concat([BEFORE, records(("crm:5", "Bobby"))])
    assert touched(after, {**CLUSTERS, "crm:5": "crm:3"}) == {"crm:3"}


def test_a_changed_record_touches_its_cluster():
    after = records(("crm:1", "Ann"), ("crm:2", "Anna"), ("crm:3", "Bob"), ("crm:4", "Cy"))
    assert touched(after, CLUSTERS) == {"crm:1"}


def test_a_moved_record_touches_the_cluster_it_left_and_the_one_it_joined():
    assert touched(BEFORE, {**CLUSTERS, "crm:2": "crm:4"}) == {"crm:1", "crm:4"}


def test_a_removed_record_touches_the_cluster_it_left():
    after = BEFORE.filter(pl.col("entity_key") != "crm:2")
    assert touched(after, {k: v for k, v in CLUSTERS.items() if k != "crm:2"}) == {"crm:1"}


def test_moving_a_record_in_its_batch_touches_nothing():
    after = BEFORE.with_columns(pl.lit("other.csv").alias("batch"), pl.lit(9).alias("row_number"))
    assert touched(after, CLUSTERS) == set()


def test_another_spec_touches_everything():
    previous = profile_inputs(SPEC, digested_records(SPEC, BEFORE), membership(CLUSTERS))
    other = make_spec(spec_dict(survivorship={"default": "most_recent"}))
    current = profile_inputs(other, digested_records(other, BEFORE), membership(CLUSTERS))
    assert touched_clusters(previous, current) is None
    assert touched_clusters(None, current) is None


def test_carried_over_winners_equal_resolving_everything():
    first, _ = resolve(BEFORE, membership(CLUSTERS))
    assert first.reused_clusters == 0
    after = records(("crm:1", "Ann"), ("crm:2", "Anna"), ("crm:3", "Bob"), ("crm:4", "Cy"))
    second, traits = resolve(after, membership(CLUSTERS), (first.inputs, first.resolved))
    assert second.reused_clusters == 2  # crm:3 and crm:4; crm:1 changed
    everything = resolve_traits(SPEC, traits, after, membership(CLUSTERS)).collect()
    carried_and_fresh = second.resolved.collect()
    assert sorted(carried_and_fresh.rows()) == sorted(everything.rows())
    assert carried_and_fresh.schema == everything.schema


def test_winners_carried_from_the_stored_table_stream_into_its_new_version(tmp_path):
    store = ArtifactStore(tmp_path)
    first, _ = resolve(BEFORE, membership(CLUSTERS))
    store.write("resolved_traits", first.resolved)
    after = records(("crm:1", "Ann"), ("crm:2", "Anna"), ("crm:3", "Bob"), ("crm:4", "Cy"))
    kept = (first.inputs, store.scan("resolved_traits"))
    second, traits = resolve(after, membership(CLUSTERS), kept)
    assert second.reused_clusters == 2
    store.write("resolved_traits", second.resolved)  # over the file the carried rows come from
    everything = resolve_traits(SPEC, traits, after, membership(CLUSTERS)).collect()
    assert sorted(store.read("resolved_traits").rows()) == sorted(everything.rows())
