"""Golden profiles' audit columns: record counts, sources and dates per customer."""

from __future__ import annotations

import polars as pl
import pytest

from customer360.core import golden
from customer360.core.golden import build_golden_profiles
from customer360.core.survivorship import resolve_traits
from customer360.core.traits import build_traits

from .conftest import make_spec, records_frame, spec_dict

SPEC = make_spec(spec_dict())
COLUMNS = ["email", "phone", "first_name"]
RECORDS = records_frame(
    [
        {"entity_key": "web:1", "first_name": "Ann", "updated_at": "2024-03-01"},
        {"entity_key": "crm:2", "first_name": "Ann", "updated_at": "2024-01-01"},
        {"entity_key": "web:3", "first_name": "Ann", "updated_at": "2024-02-01"},
        {"entity_key": "pos:4", "first_name": "Bob", "updated_at": "2023-05-01"},
        {"entity_key": "crm:5", "first_name": "Cy", "updated_at": "2023-06-01"},
    ],
    COLUMNS,
)
MEMBERSHIP = pl.DataFrame(
    {
        "entity_key": ["web:1", "crm:2", "web:3", "pos:4", "crm:5"],
        "resolved_id": ["z", "z", "z", "a", "m"],
    }
)
NO_IDENTIFIERS = pl.DataFrame(
    schema={
        "entity_key": pl.String,
        "identifier_type": pl.String,
        "value": pl.String,
        "status": pl.String,
    }
)


def audit() -> list[tuple]:
    traits = build_traits(SPEC, RECORDS, NO_IDENTIFIERS)
    resolved = resolve_traits(SPEC, traits, RECORDS, MEMBERSHIP)
    profiles = build_golden_profiles(SPEC, resolved, RECORDS, MEMBERSHIP)
    return profiles.select(
        "resolved_id",
        "first_name",
        "record_count",
        "source_systems",
        pl.col("created_at").dt.date().cast(pl.String),
        pl.col("last_updated_at").dt.date().cast(pl.String),
    ).rows()


EXPECTED = [
    ("a", "Bob", 1, ["pos"], "2023-05-01", "2023-05-01"),
    ("m", "Cy", 1, ["crm"], "2023-06-01", "2023-06-01"),
    ("z", "Ann", 3, ["crm", "web"], "2024-01-01", "2024-03-01"),
]


def test_profiles_in_id_order_with_each_clusters_distinct_sorted_sources():
    assert audit() == EXPECTED


def test_more_sources_than_mask_bits_give_the_same_sources(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(golden, "SOURCE_MASK_BITS", 2)  # three sources here
    assert audit() == EXPECTED


def profiles_of(
    records: pl.DataFrame, membership: pl.DataFrame
) -> tuple[pl.LazyFrame, pl.DataFrame]:
    traits = build_traits(SPEC, records, NO_IDENTIFIERS)
    resolved = resolve_traits(SPEC, traits, records, membership)
    return resolved, build_golden_profiles(SPEC, resolved, records, membership)


def test_updating_only_the_touched_profiles_equals_building_every_one():
    _, before = profiles_of(RECORDS, MEMBERSHIP)
    later = records_frame(
        [
            {"entity_key": "web:1", "first_name": "Ann", "updated_at": "2024-03-01"},
            {"entity_key": "crm:2", "first_name": "Ann", "updated_at": "2024-01-01"},
            {"entity_key": "pos:4", "first_name": "Bob", "updated_at": "2023-05-01"},
            {"entity_key": "crm:5", "first_name": "Cy", "updated_at": "2023-06-01"},
            {"entity_key": "web:6", "first_name": "Di", "updated_at": "2024-09-01"},
        ],
        COLUMNS,
    )
    # web:3 left "z"; "d" is new, with an update that moves every profile's recency
    members = pl.DataFrame(
        {
            "entity_key": ["web:1", "crm:2", "pos:4", "crm:5", "web:6"],
            "resolved_id": ["z", "z", "a", "m", "d"],
        }
    )
    resolved, everything = profiles_of(later, members)
    touched = pl.Series(["z", "d"])
    updated = golden.update_golden_profiles(SPEC, before, resolved, later, members, touched)
    assert updated.equals(everything)
    assert before.get_column("quality_score").to_list() != [
        s for s in everything.filter(pl.col("resolved_id") != "d").get_column("quality_score")
    ]


def test_a_customer_gone_leaves_the_profiles_and_an_untouched_one_stays_as_it_was():
    _, before = profiles_of(RECORDS, MEMBERSHIP)
    later = RECORDS.filter(pl.col("entity_key") != "pos:4")
    members = MEMBERSHIP.filter(pl.col("entity_key") != "pos:4")
    resolved, everything = profiles_of(later, members)
    updated = golden.update_golden_profiles(
        SPEC, before.lazy(), resolved, later.lazy(), members.lazy(), pl.Series(["a"])
    )
    assert updated.equals(everything)
    assert updated.get_column("resolved_id").to_list() == ["m", "z"]
    assert updated.drop("quality_score").row(0) == before.drop("quality_score").row(1)
