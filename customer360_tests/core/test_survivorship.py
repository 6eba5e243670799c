"""Survivorship: each golden field is chosen by its strategy, with deterministic ties."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from customer360.core.golden import build_golden_profiles as golden_from_traits
from customer360.core.identifiers import build_identifiers
from customer360.core.storage import ArtifactStore
from customer360.core.survivorship import resolve_traits
from customer360.core.traits import build_traits

from .conftest import make_spec, records_frame

ATTRIBUTES = ["first_name", "city", "nickname", "middle_name"]
COLUMNS = ["email", "phone", *ATTRIBUTES]


def build_golden_profiles(spec, records, identifiers, membership) -> pl.DataFrame:
    """The profiles chain: traits → resolved traits → golden profiles."""
    traits = build_traits(spec, records, identifiers)
    resolved = resolve_traits(spec, traits, records, membership)
    return golden_from_traits(spec, resolved, records, membership)


def golden_spec(strategies: dict[str, str] | None = None, default: str = "trust"):
    raw = {
        "identifier_types": {
            "email": {
                "normalizer": "email",
                "exclusions": [{"like": "noreply@%", "reason": "no-reply"}],
            },
            "phone": {"normalizer": "phone"},
        },
        "sources": [
            {
                "name": "crm",
                "path": "crm.csv",
                "format": "csv",
                "key": "id",
                "trust": 1,
                "identifiers": {"email": "email", "phone": "phone"},
                "attributes": {a: a for a in ATTRIBUTES},
            },
        ],
        "survivorship": {"default": default, "attributes": strategies or {}},
    }
    return make_spec(raw)


def profiles(spec, rows: list[dict], clusters: dict[str, list[str]]) -> dict[str, dict]:
    """Golden profiles keyed by resolved_id; ``clusters`` maps resolved_id → members."""
    records = records_frame(rows, columns=COLUMNS)
    membership = pl.DataFrame(
        [(key, rid) for rid, keys in clusters.items() for key in keys],
        schema={"entity_key": pl.String, "resolved_id": pl.String},
        orient="row",
    )
    identifiers = build_identifiers(spec, records)
    golden = build_golden_profiles(spec, records, identifiers, membership)
    return {row["resolved_id"]: row for row in golden.iter_rows(named=True)}


STRATEGIES = {"city": "most_recent", "nickname": "most_frequent", "middle_name": "longest"}
ONE_PERSON = [
    {
        "entity_key": "crm:1",
        "trust": 1,
        "updated_at": "2024-01-01",
        "email": "ANN@Example.com",
        "phone": "212-555-0101",
        "first_name": "Ann",
        "city": "Boston",
        "nickname": "Nan",
        "middle_name": "M",
    },
    {
        "entity_key": "crm:2",
        "trust": 1,
        "updated_at": "2024-03-01",
        "email": "noreply@example.com",
        "first_name": "Anne",
        "middle_name": "Marie",
    },
    {
        "entity_key": "shop:3",
        "trust": 2,
        "updated_at": "2024-06-01",
        "email": "ann@example.com",
        "phone": "(212) 555-0199",
        "first_name": "Annabel",
        "city": "Chicago",
        "nickname": "Annie",
    },
    {
        "entity_key": "web:4",
        "trust": 3,
        "updated_at": "2024-02-01",
        "email": "not-an-email",
        "city": "Denver",
        "nickname": "Annie",
        "middle_name": "Margaret",
    },
]
ALL_FOUR = {"crm:1": ["crm:1", "crm:2", "shop:3", "web:4"]}


def test_each_strategy_picks_its_winner():
    (golden,) = profiles(golden_spec(STRATEGIES), ONE_PERSON, ALL_FOUR).values()
    # trust: rank 1 first; between the two rank-1 records the more recent one.
    assert (golden["first_name"], golden["first_name_source"]) == ("Anne", "crm")
    # most_recent: the June record, although its source is less trusted.
    assert (golden["city"], golden["city_source"]) == ("Chicago", "shop")
    # most_frequent: 'Annie' twice beats the trusted 'Nan' once; among the two
    # 'Annie' observations the more trusted (shop, rank 2) is reported.
    assert (golden["nickname"], golden["nickname_source"]) == ("Annie", "shop")
    # longest: 'Margaret' from the least trusted source beats 'Marie' and 'M'.
    assert (golden["middle_name"], golden["middle_name_source"]) == ("Margaret", "web")


def test_identifier_primary_uses_normalized_non_excluded_values():
    (golden,) = profiles(golden_spec(STRATEGIES), ONE_PERSON, ALL_FOUR).values()
    # crm:2 is as trusted as crm:1 and more recent, but its address is excluded;
    # web:4 is invalid. The winner is crm:1's address, normalized.
    assert (golden["email_primary"], golden["email_primary_source"]) == (
        "ann@example.com",
        "crm",
    )
    assert (golden["phone_primary"], golden["phone_primary_source"]) == ("+12125550101", "crm")


def test_primary_from_a_less_trusted_source_when_the_trusted_value_is_invalid():
    rows = [
        {"entity_key": "crm:1", "trust": 1, "email": "n/a@", "phone": "junk"},
        {"entity_key": "shop:2", "trust": 2, "email": "Bob@X.io", "phone": "212 555 0102"},
    ]
    (golden,) = profiles(golden_spec(), rows, {"crm:1": ["crm:1", "shop:2"]}).values()
    assert golden["email_primary"] == "bob@x.io"
    assert golden["phone_primary"] == "+12125550102"
    assert golden["email_primary_source"] == "shop"


def two_records(field: str, first: dict, second: dict) -> list[dict]:
    return [
        {"entity_key": "a:1", field: "x" * 3, **first},
        {"entity_key": "b:2", field: "y" * 3, **second},
    ]


@pytest.mark.parametrize(
    ("strategy", "first", "second", "winner"),
    [
        # trust: same rank → most recent; same rank and time → smaller entity_key.
        (
            "trust",
            {"trust": 1, "updated_at": "2024-01-01"},
            {"trust": 1, "updated_at": "2024-02-01"},
            "b:2",
        ),
        (
            "trust",
            {"trust": 1, "updated_at": "2024-01-01"},
            {"trust": 1, "updated_at": "2024-01-01"},
            "a:1",
        ),
        (
            "trust",
            {"trust": 2, "updated_at": "2024-05-01"},
            {"trust": 1, "updated_at": "2020-01-01"},
            "b:2",
        ),
        # most_recent: a dated value beats an undated one even from a better source;
        # same time → more trusted.
        ("most_recent", {"trust": 1}, {"trust": 5, "updated_at": "2020-01-01"}, "b:2"),
        (
            "most_recent",
            {"trust": 3, "updated_at": "2024-01-01"},
            {"trust": 2, "updated_at": "2024-01-01"},
            "b:2",
        ),
        # most_frequent / longest with one observation each of equal length → trust.
        ("most_frequent", {"trust": 2}, {"trust": 1}, "b:2"),
        ("longest", {"trust": 2}, {"trust": 1}, "b:2"),
        (
            "longest",
            {"trust": 1, "updated_at": "2024-01-01"},
            {"trust": 1, "updated_at": "2024-01-02"},
            "b:2",
        ),
    ],
)
def test_tie_breaks(strategy, first, second, winner):
    rows = two_records("city", first, second)
    (golden,) = profiles(golden_spec({"city": strategy}), rows, {"a:1": ["a:1", "b:2"]}).values()
    assert golden["city"] == {"a:1": "xxx", "b:2": "yyy"}[winner]
    assert golden["city_source"] == winner.split(":")[0]


def test_conflict_rules_list_only_fields_whose_values_differ():
    rows = [
        {"entity_key": "crm:1", "email": "ANN@x.io", "first_name": "Ann", "city": "Oslo"},
        {
            "entity_key": "shop:2",
            "email": "ann@x.io",
            "first_name": "Anne",
            "city": "Oslo",
            "middle_name": "Marie",
        },
        {"entity_key": "crm:3", "email": "bob@x.io", "first_name": "Bob", "city": "Rome"},
        {"entity_key": "crm:4", "first_name": "Cat", "city": "Lima"},
        {"entity_key": "shop:5", "first_name": "Cat", "city": "Kyiv"},
    ]
    golden = profiles(
        golden_spec({"city": "most_recent"}),
        rows,
        {"crm:1": ["crm:1", "shop:2"], "crm:3": ["crm:3"], "crm:4": ["crm:4", "shop:5"]},
    )
    # Same email after normalization, same city, one middle name: only first_name differs.
    assert golden["crm:1"]["conflict_rules_applied"] == ["first_name:trust"]
    assert golden["crm:3"]["conflict_rules_applied"] == []
    assert golden["crm:4"]["conflict_rules_applied"] == ["city:most_recent"]


def test_conflict_rules_sorted_by_field():
    golden = profiles(golden_spec(STRATEGIES), ONE_PERSON, ALL_FOUR)["crm:1"]
    # email is the same address everywhere once normalized and filtered: no conflict.
    assert golden["conflict_rules_applied"] == [
        "city:most_recent",
        "first_name:trust",
        "middle_name:longest",
        "nickname:most_frequent",
        "phone_primary:trust",
    ]


def test_audit_columns():
    golden = profiles(golden_spec(STRATEGIES), ONE_PERSON, ALL_FOUR)["crm:1"]
    assert golden["record_count"] == 4
    assert golden["source_systems"] == ["crm", "shop", "web"]
    assert golden["created_at"] == datetime(2024, 1, 1)
    assert golden["last_updated_at"] == datetime(2024, 6, 1)


def test_quality_score_is_higher_for_a_complete_recent_profile():
    rows = [
        {
            "entity_key": "crm:1",
            "updated_at": "2024-06-01",
            "email": "a@x.io",
            "phone": "2125550101",
            "first_name": "Ann",
            "city": "Oslo",
            "nickname": "Nan",
            "middle_name": "M",
        },
        # One field of six, updated 73 days before the newest record.
        {"entity_key": "crm:2", "updated_at": "2024-03-20", "first_name": "Bob"},
        {"entity_key": "crm:3", "first_name": "Cat", "city": "Rome"},  # never dated
    ]
    golden = profiles(
        golden_spec(), rows, {"crm:1": ["crm:1"], "crm:2": ["crm:2"], "crm:3": ["crm:3"]}
    )
    scores = {rid: row["quality_score"] for rid, row in golden.items()}
    assert all(0.0 <= score <= 1.0 for score in scores.values())
    assert scores["crm:1"] == pytest.approx(1.0)  # every field, as recent as it gets
    assert scores["crm:1"] > scores["crm:2"] > scores["crm:3"]
    # 0.8 × completeness + 0.2 × recency: 0.8 × 1/6 + 0.2 × (1 - 73/365) = 0.2933
    assert scores["crm:2"] == pytest.approx(0.8 / 6 + 0.2 * 0.8, abs=1e-3)
    assert scores["crm:3"] == pytest.approx(0.8 * 2 / 6, abs=1e-3)  # undated: no recency


def test_profile_columns_and_one_row_per_cluster():
    spec = golden_spec(STRATEGIES)
    rows = [*ONE_PERSON, {"entity_key": "solo:9", "first_name": "Zoe"}]
    golden = profiles(spec, rows, {**ALL_FOUR, "solo:9": ["solo:9"]})
    assert sorted(golden) == ["crm:1", "solo:9"]
    solo = golden["solo:9"]
    assert list(solo) == [
        "resolved_id",
        *spec.golden_fields,
        *(f"{f}_source" for f in spec.golden_fields),
        "record_count",
        "source_systems",
        "conflict_rules_applied",
        "quality_score",
        "created_at",
        "last_updated_at",
    ]
    assert solo["first_name"] == "Zoe"
    assert solo["email_primary"] is None and solo["email_primary_source"] is None


def test_spec_with_identifiers_only():
    # A source may map identifiers and no attributes; golden profiles then hold only
    # the <type>_primary fields.
    spec = make_spec(
        {
            "identifier_types": {"email": {"normalizer": "email"}},
            "sources": [
                {
                    "name": "crm",
                    "path": "crm.csv",
                    "format": "csv",
                    "key": "id",
                    "trust": 1,
                    "identifiers": {"email": "email"},
                }
            ],
        }
    )
    records = records_frame(
        [{"entity_key": "crm:1", "email": "A@X.io"}, {"entity_key": "crm:2", "email": "a@x.io"}],
        columns=["email"],
    )
    membership = pl.DataFrame({"entity_key": ["crm:1", "crm:2"], "resolved_id": ["crm:1"] * 2})
    golden = build_golden_profiles(spec, records, build_identifiers(spec, records), membership)
    assert golden.select("resolved_id", "email_primary", "record_count").rows() == [
        ("crm:1", "a@x.io", 2),
    ]


def test_traits_and_resolved_traits_keep_every_observation_and_the_winner():
    spec = golden_spec(STRATEGIES)
    records = records_frame(ONE_PERSON, columns=COLUMNS)
    identifiers = build_identifiers(spec, records)
    traits = build_traits(spec, records, identifiers).collect()
    emails = traits.filter(pl.col("attribute") == "email_primary")
    # the excluded noreply address is no observation; both real ones are
    assert sorted(emails.get_column("value")) == ["ann@example.com", "ann@example.com"]
    assert traits.filter(pl.col("attribute") == "first_name").height == 3
    membership = pl.DataFrame(
        {"entity_key": ["crm:1", "crm:2", "shop:3"], "resolved_id": ["crm:1"] * 3}
    )
    resolved = resolve_traits(spec, traits, records, membership).collect()
    city = resolved.filter(pl.col("attribute") == "city").row(0, named=True)
    assert (city["value"], city["strategy"], city["entity_key"]) == (
        "Chicago",
        "most_recent",
        "shop:3",
    )
    assert city["observed_at"] == datetime(2024, 6, 1)
    assert city["conflict"] is True


def test_traits_stream_into_their_table_attribute_by_attribute_then_identifiers(tmp_path):
    spec = golden_spec(STRATEGIES)
    records = records_frame(ONE_PERSON, columns=COLUMNS)
    plan = build_traits(spec, records, build_identifiers(spec, records))
    store = ArtifactStore(tmp_path)
    store.write("traits", plan)
    traits = store.read("traits")
    assert traits.equals(plan.collect())
    # each attribute's observations in the records' order, then the usable identifiers
    assert traits.select("attribute", "entity_key", "source", "trust").rows() == [
        ("first_name", "crm:1", "crm", 1),
        ("first_name", "crm:2", "crm", 1),
        ("first_name", "shop:3", "shop", 2),
        ("city", "crm:1", "crm", 1),
        ("city", "shop:3", "shop", 2),
        ("city", "web:4", "web", 3),
        ("nickname", "crm:1", "crm", 1),
        ("nickname", "shop:3", "shop", 2),
        ("nickname", "web:4", "web", 3),
        ("middle_name", "crm:1", "crm", 1),
        ("middle_name", "crm:2", "crm", 1),
        ("middle_name", "web:4", "web", 3),
        ("email_primary", "crm:1", "crm", 1),  # the no-reply and invalid ones are left out
        ("email_primary", "shop:3", "shop", 2),
        ("phone_primary", "crm:1", "crm", 1),
        ("phone_primary", "shop:3", "shop", 2),
    ]
