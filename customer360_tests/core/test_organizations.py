"""Organizations: work-email domains, company names and account ids link person records."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from customer360.core.identifiers import build_identifiers
from customer360.core.organizations import (
    free_mail_with_typos,
    normalize_company,
    resolve_organizations,
)
from customer360.core.spec import Organizations

from .conftest import make_spec, records_frame

COLUMNS = ["email", "company", "account", "title"]
SETTINGS = Organizations(account_attribute="account", role_attribute="title")
SPEC = make_spec(
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
                "attributes": {"company": "company", "account": "account", "title": "title"},
            },
        ],
    }
)


def resolve(
    rows: list[dict],
    clusters: dict[str, list[str]] | None = None,
    settings: Organizations = SETTINGS,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Organizations and memberships; ``clusters`` maps resolved_id → entity_keys
    (default: every record its own person)."""
    records = records_frame(rows, columns=COLUMNS)
    clusters = clusters or {key: [key] for key in records.get_column("entity_key")}
    membership = pl.DataFrame(
        [(key, rid) for rid, keys in clusters.items() for key in keys],
        schema={"entity_key": pl.String, "resolved_id": pl.String},
        orient="row",
    )
    return resolve_organizations(settings, records, build_identifiers(SPEC, records), membership)


def test_two_people_at_one_work_domain_make_one_organization():
    organizations, memberships = resolve(
        [
            {"entity_key": "crm:1", "email": "ann@acme.com", "updated_at": "2024-01-01"},
            {"entity_key": "crm:2", "email": "Bob@ACME.com", "updated_at": "2024-02-01"},
        ]
    )
    assert organizations.columns == [
        "organization_id",
        "name",
        "domains",
        "account_ids",
        "person_count",
        "record_count",
        "first_seen",
        "last_seen",
    ]
    assert organizations.rows() == [
        (
            "org:acme.com",
            "acme.com",  # no company text: named after its domain
            ["acme.com"],
            [],
            2,
            2,
            datetime(2024, 1, 1),
            datetime(2024, 2, 1),
        )
    ]
    assert memberships.columns == [
        "resolved_id",
        "organization_id",
        "role",
        "first_seen",
        "last_seen",
        "record_count",
    ]
    assert memberships.select("resolved_id", "organization_id", "record_count").rows() == [
        ("crm:1", "org:acme.com", 1),
        ("crm:2", "org:acme.com", 1),
    ]


def test_free_mail_domains_create_no_organization():
    organizations, memberships = resolve(
        [
            {"entity_key": "crm:1", "email": "ann@gmail.com"},
            {"entity_key": "crm:2", "email": "bob@gmail.com"},
            {"entity_key": "crm:3", "email": "cat@Hotmail.com"},
        ]
    )
    assert organizations.is_empty()
    assert memberships.is_empty()
    assert organizations.schema["domains"] == pl.List(pl.String)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("ACME, Inc.", "acme"),
        ("Acme Inc", "acme"),
        ("acme", "acme"),
        ("  Acme   Widgets Co., Ltd. ", "acme widgets"),
        ("O'Brien & Sons LLC", "obrien sons"),
        ("Incorporated Holdings", "incorporated holdings"),  # only trailing words go
        ("Company", "company"),  # a lone suffix word is the name
        ("Inc.", "inc"),
        ("...", None),
    ],
)
def test_company_names_are_normalized(raw: str, normalized: str | None):
    assert pl.select(normalize_company(pl.lit(raw))).item() == normalized


def test_company_name_variants_link():
    organizations, memberships = resolve(
        [
            {"entity_key": "crm:1", "company": "ACME, Inc.", "trust": 2},
            {"entity_key": "crm:2", "company": "Acme Inc", "trust": 1},
            {"entity_key": "crm:3", "company": "acme", "trust": 3},
            {"entity_key": "crm:4", "company": "Acme Inc", "trust": 3},
            {"entity_key": "crm:5", "company": "Globex Corporation"},
        ]
    )
    assert organizations.select("organization_id", "name", "person_count").rows() == [
        # 'Acme Inc' is the most frequent raw text.
        ("org:acme", "Acme Inc", 4),
        ("org:globex", "Globex Corporation", 1),
    ]
    assert memberships.height == 5


def test_name_ties_go_to_the_most_trusted_record():
    organizations, _ = resolve(
        [
            {"entity_key": "crm:1", "company": "ACME, Inc.", "trust": 2},
            {"entity_key": "crm:2", "company": "Acme Inc", "trust": 1},
        ]
    )
    assert organizations.get_column("name").to_list() == ["Acme Inc"]


def test_account_ids_link_records_without_emails():
    organizations, memberships = resolve(
        [
            {"entity_key": "crm:1", "account": " a-100 ", "company": "Initech"},
            {"entity_key": "crm:2", "account": "A-100"},
            {"entity_key": "crm:3", "account": "A-200", "email": "x@initrode.com"},
        ]
    )
    assert organizations.select(
        "organization_id", "name", "account_ids", "person_count"
    ).rows() == [
        ("org:A-100", "Initech", ["A-100"], 2),
        ("org:initrode.com", "initrode.com", ["A-200"], 1),
    ]
    assert memberships.select("resolved_id", "organization_id").rows() == [
        ("crm:1", "org:A-100"),
        ("crm:2", "org:A-100"),
        ("crm:3", "org:initrode.com"),
    ]


def test_most_frequent_domain_names_the_organization():
    organizations, _ = resolve(
        [
            {"entity_key": "crm:1", "email": "a@acme.com", "company": "Acme"},
            {"entity_key": "crm:2", "email": "b@acme-corp.com", "company": "Acme"},
            {"entity_key": "crm:3", "email": "c@acme-corp.com"},
            {"entity_key": "crm:4", "email": "d@zeta.com", "company": "Zeta"},
            {"entity_key": "crm:5", "email": "e@alpha.com", "company": "Zeta"},
        ]
    )
    assert organizations.select("organization_id", "domains", "record_count").rows() == [
        ("org:acme-corp.com", ["acme-corp.com", "acme.com"], 3),
        ("org:alpha.com", ["alpha.com", "zeta.com"], 2),  # one each: alphabetical
    ]


def test_role_is_the_most_recent_stated_role():
    organizations, memberships = resolve(
        [
            {
                "entity_key": "crm:1",
                "email": "ann@acme.com",
                "title": "Analyst",
                "updated_at": "2023-01-01",
            },
            {
                "entity_key": "web:1",
                "email": "ann@acme.com",
                "title": "Director",
                "updated_at": "2024-01-01",
            },
            {"entity_key": "web:2", "email": "ann@acme.com", "updated_at": "2024-06-01"},
            {"entity_key": "crm:2", "email": "bob@acme.com"},
        ],
        clusters={"crm:1": ["crm:1", "web:1", "web:2"], "crm:2": ["crm:2"]},
    )
    assert organizations.select("person_count", "record_count").row(0) == (2, 4)
    assert memberships.rows() == [
        ("crm:1", "org:acme.com", "Director", datetime(2023, 1, 1), datetime(2024, 6, 1), 3),
        ("crm:2", "org:acme.com", None, None, None, 1),
    ]


def test_a_person_can_belong_to_several_organizations():
    _, memberships = resolve(
        [
            {"entity_key": "crm:1", "email": "ann@acme.com"},
            {"entity_key": "web:1", "email": "ann@globex.com"},
        ],
        clusters={"crm:1": ["crm:1", "web:1"]},
    )
    assert memberships.select("resolved_id", "organization_id").rows() == [
        ("crm:1", "org:acme.com"),
        ("crm:1", "org:globex.com"),
    ]


ROWS = [
    {
        "entity_key": "crm:1",
        "email": "ann@acme.com",
        "company": "Acme",
        "title": "CEO",
        "updated_at": "2024-01-01",
    },
    {"entity_key": "crm:2", "email": "bob@gmail.com", "company": "ACME Inc."},
    {"entity_key": "crm:3", "account": "G-1", "company": "Globex", "updated_at": "2024-02-01"},
    {"entity_key": "shop:4", "email": "cat@globex.com", "account": "g-1"},
    {"entity_key": "shop:5", "email": "dan@yahoo.com"},
    {"entity_key": "shop:6", "company": "Umbrella Corp", "title": "CTO"},
]
CLUSTERS = {
    "crm:1": ["crm:1", "shop:5"],
    "crm:2": ["crm:2"],
    "crm:3": ["crm:3", "shop:4"],
    "shop:6": ["shop:6"],
}


def test_memberships_refer_to_known_people_and_organizations():
    organizations, memberships = resolve(ROWS, CLUSTERS)
    assert set(memberships.get_column("resolved_id")) <= set(CLUSTERS)
    assert set(memberships.get_column("organization_id")) == set(
        organizations.get_column("organization_id")
    )
    assert organizations.get_column("organization_id").to_list() == [
        "org:acme.com",  # crm:2 joins by company name; its gmail address does not count
        "org:globex.com",  # the domain wins over the account id G-1
        "org:umbrella",
    ]
    # Record counts add up: shop:5 (free mail only) belongs to no organization.
    assert organizations.get_column("record_count").sum() == 5
    assert memberships.get_column("record_count").sum() == 5


def test_organization_ids_do_not_depend_on_row_order():
    organizations, memberships = resolve(ROWS, CLUSTERS)
    reversed_organizations, reversed_memberships = resolve(ROWS[::-1], CLUSTERS)
    assert_frame_equal(organizations, reversed_organizations)
    assert_frame_equal(memberships, reversed_memberships)


def test_kinds_switched_off_or_missing_are_skipped():
    settings = Organizations(
        email_identifier=None, company_attribute=None, account_attribute="no_such_column"
    )
    organizations, memberships = resolve(ROWS, CLUSTERS, settings=settings)
    assert organizations.is_empty()
    assert memberships.is_empty()


def test_typos_of_free_mail_domains_found_no_organization():
    variants = free_mail_with_typos(["gmail.com", "yahoo.com"])
    assert {"gmail.com", "gmial.com", "gmal.com", "gmaill.com", "yahco.com"} <= variants
    assert "acme.com" not in variants and "gmail.org" not in variants
