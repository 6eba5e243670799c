"""Identifiers: normalized values with a status saying whether they may link records."""

from __future__ import annotations

import polars as pl

from customer360.core.identifiers import IDENTIFIER_SCHEMA, build_identifiers

from .conftest import make_spec, records_frame


def spec_with(email: dict | None = None, phone: dict | None = None):
    raw = {
        "identifier_types": {
            "email": {"normalizer": "email", **(email or {})},
            "phone": {"normalizer": "phone", **(phone or {})},
        },
        "sources": [
            {
                "name": "s",
                "path": "s.csv",
                "format": "csv",
                "key": "id",
                "trust": 1,
                "identifiers": {"email": "email", "phone": "phone"},
            },
        ],
    }
    return make_spec(raw)


def records(*rows: tuple[str, str | None, str | None]) -> pl.DataFrame:
    return records_frame(
        [{"entity_key": key, "email": email, "phone": phone} for key, email, phone in rows],
        columns=["email", "phone"],
    )


def by_key(frame: pl.DataFrame, id_type: str) -> dict[str, dict]:
    rows = frame.filter(pl.col("identifier_type") == id_type).iter_rows(named=True)
    return {row["entity_key"]: row for row in rows}


def test_linkable_values_and_group_sizes():
    table = build_identifiers(
        spec_with(),
        records(
            ("s:1", "Ann@Example.com", "212-555-0101"),
            ("s:2", " ann@example.com", "(212) 555-0101"),
            ("s:3", "ann@example.com", "212-555-0199"),
            ("s:4", "bob@example.com", None),
        ),
    )
    assert table.schema == pl.Schema(IDENTIFIER_SCHEMA)
    emails = by_key(table, "email")
    assert {k: (r["value"], r["status"], r["group_size"]) for k, r in emails.items()} == {
        "s:1": ("ann@example.com", "linkable", 3),
        "s:2": ("ann@example.com", "linkable", 3),
        "s:3": ("ann@example.com", "linkable", 3),
        "s:4": ("bob@example.com", "linkable", 1),
    }
    assert emails["s:2"]["value_raw"] == " ann@example.com"
    assert all(r["reason"] is None for r in emails.values())
    phones = by_key(table, "phone")
    assert set(phones) == {"s:1", "s:2", "s:3"}  # a null raw value gives no row
    assert phones["s:1"]["group_size"] == phones["s:2"]["group_size"] == 2
    assert phones["s:3"]["group_size"] == 1


def test_invalid_values():
    table = build_identifiers(
        spec_with(),
        records(
            ("s:1", "not-an-email", "junk"),
            ("s:2", "not-an-email", "junk"),
        ),
    )
    for row in table.iter_rows(named=True):
        assert row["status"] == "invalid"
        assert row["value"] is None
        assert row["group_size"] is None  # invalid values do not form groups
    assert by_key(table, "email")["s:1"]["reason"] == "not a valid email value"
    assert by_key(table, "phone")["s:1"]["reason"] == "not a valid phone value"


def test_exclusion_by_exact_value_is_normalized_like_the_data():
    spec = spec_with(
        email={"exclusions": [{"value": "NoReply@Shop.COM", "reason": "no-reply"}]},
        phone={"exclusions": [{"value": "5555555555", "reason": "placeholder phone"}]},
    )
    table = build_identifiers(
        spec,
        records(
            ("s:1", "noreply@shop.com", "(555) 555-5555"),
            ("s:2", " NOREPLY@shop.com ", "555.555.5555"),
            ("s:3", "reply@shop.com", "212-555-0101"),
        ),
    )
    emails, phones = by_key(table, "email"), by_key(table, "phone")
    for key in ("s:1", "s:2"):
        assert (emails[key]["status"], emails[key]["reason"]) == ("excluded", "no-reply")
        assert (phones[key]["status"], phones[key]["reason"]) == ("excluded", "placeholder phone")
        assert emails[key]["group_size"] is None  # excluded values do not form groups
    assert emails["s:3"]["status"] == "linkable"
    assert phones["s:3"]["status"] == "linkable"


def test_exclusion_by_like_and_regex_on_the_normalized_value():
    spec = spec_with(
        email={
            "exclusions": [
                {"like": "test_@%", "reason": "numbered test address"},
                {"regex": "^(no-?reply|donotreply)@", "reason": "no-reply mailbox"},
                {"like": "%@example.invalid", "reason": "invalid domain"},
            ]
        },
        phone={"exclusions": [{"regex": r"^\+1(0{10}|2{10})$", "reason": "repeated digit"}]},
    )
    table = build_identifiers(
        spec,
        records(
            ("s:1", "TEST1@shop.com", "(222) 222-2222"),
            ("s:2", "no-reply@shop.com", "212-555-0101"),
            ("s:3", "DoNotReply@shop.com", None),
            ("s:4", "ann@example.invalid", None),
            ("s:5", "test12@shop.com", None),  # 'test_' is exactly one character
            ("s:6", "contest1@shop.com", None),  # LIKE is anchored at the start
        ),
    )
    emails = by_key(table, "email")
    assert {k: (r["status"], r["reason"]) for k, r in emails.items()} == {
        "s:1": ("excluded", "numbered test address"),
        "s:2": ("excluded", "no-reply mailbox"),
        "s:3": ("excluded", "no-reply mailbox"),
        "s:4": ("excluded", "invalid domain"),
        "s:5": ("linkable", None),
        "s:6": ("linkable", None),
    }
    phones = by_key(table, "phone")
    assert (phones["s:1"]["status"], phones["s:1"]["reason"]) == ("excluded", "repeated digit")
    assert phones["s:2"]["status"] == "linkable"


def test_first_matching_exclusion_gives_the_reason():
    spec = spec_with(
        email={
            "exclusions": [
                {"like": "info@%", "reason": "first"},
                {"value": "info@shop.com", "reason": "second"},
            ]
        }
    )
    table = build_identifiers(spec, records(("s:1", "info@shop.com", None)))
    assert table.row(0, named=True)["reason"] == "first"


def test_oversize_groups():
    spec = spec_with(email={"max_group_size": 2})
    table = build_identifiers(
        spec,
        records(
            ("s:1", "shared@shop.com", None),
            ("s:2", "Shared@Shop.com", None),
            ("s:3", "shared@shop.com", None),
            ("s:4", "pair@shop.com", None),
            ("s:5", "pair@shop.com", None),
        ),
    )
    emails = by_key(table, "email")
    for key in ("s:1", "s:2", "s:3"):
        assert emails[key]["status"] == "oversize"
        assert emails[key]["group_size"] == 3
        assert emails[key]["reason"] == "shared by 3 records, above max_group_size 2"
    for key in ("s:4", "s:5"):  # exactly at the limit: still linkable
        assert (emails[key]["status"], emails[key]["group_size"]) == ("linkable", 2)


def test_group_size_counts_only_linkable_records():
    # Two records share a value that an exclusion removes for one type only: the
    # limit applies to linkable records, so excluded ones do not push a group over.
    spec = spec_with(
        email={
            "max_group_size": 2,
            "exclusions": [
                {"value": "x@shop.com", "reason": "placeholder"},
            ],
        }
    )
    table = build_identifiers(
        spec,
        records(
            ("s:1", "x@shop.com", None),
            ("s:2", "x@shop.com", None),
            ("s:3", "x@shop.com", None),
            ("s:4", "y@shop.com", None),
            ("s:5", "y@shop.com", None),
        ),
    )
    emails = by_key(table, "email")
    assert [emails[k]["status"] for k in ("s:1", "s:2", "s:3")] == ["excluded"] * 3
    assert [emails[k]["group_size"] for k in ("s:4", "s:5")] == [2, 2]


def test_inactive_identifier_type():
    spec = spec_with(phone={"active": False})
    table = build_identifiers(
        spec,
        records(
            ("s:1", "ann@example.com", "212-555-0101"),
            ("s:2", "ann@example.com", "212-555-0101"),
            ("s:3", "bob@example.com", "junk"),
        ),
    )
    phones = by_key(table, "phone")
    for row in phones.values():
        assert row["status"] == "inactive"
        assert row["reason"] == "identifier type 'phone' is inactive in the spec"
        assert row["group_size"] is None
    assert phones["s:1"]["value"] == "+12125550101"  # still normalized, for the record
    assert {r["status"] for r in by_key(table, "email").values()} == {"linkable"}


def test_identifier_type_not_mapped_by_any_source_is_skipped():
    spec = spec_with()
    frame = records_frame([{"entity_key": "s:1", "email": "a@x.com"}], columns=["email"])
    table = build_identifiers(spec, frame)
    assert table.get_column("identifier_type").to_list() == ["email"]


def test_no_identifier_columns_gives_an_empty_table():
    spec = spec_with()
    frame = records_frame([{"entity_key": "s:1"}], columns=[])
    table = build_identifiers(spec, frame)
    assert table.is_empty()
    assert table.schema == pl.Schema(IDENTIFIER_SCHEMA)


def test_an_all_zero_phone_is_no_phone_number_at_all():
    table = build_identifiers(spec_with(), records(("s:1", "a@b.co", "(000) 000-0000")))
    assert by_key(table, "phone")["s:1"]["status"] == "invalid"
