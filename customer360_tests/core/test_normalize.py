"""Normalizers: raw text in, canonical text out, null when there is no valid value."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer360.core.normalize import normalize, normalize_email, normalize_phone, phone_e164
from customer360.core.spec import IdentifierType

from .conftest import NORMALIZERS


def run(values: list[str | None], default_region: str = "US", **id_type) -> list[str | None]:
    series = pl.Series(values, dtype=pl.String)
    return normalize(series, IdentifierType(**id_type), default_region).to_list()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ann@example.com", "ann@example.com"),
        ("Ann.Lee@Example.COM", "ann.lee@example.com"),
        ("  ann@example.com\t", "ann@example.com"),
        ("mailto:ann@example.com", "ann@example.com"),
        ("MAILTO:Ann@Example.com", "ann@example.com"),
        ("<ann@example.com>", "ann@example.com"),
        ("mailto:<ann@example.com>", "ann@example.com"),
        ("ann+news@mail.example.co.uk", "ann+news@mail.example.co.uk"),  # no tag rewriting
        ("a.n.n@gmail.com", "a.n.n@gmail.com"),  # no provider-specific dot removal
    ],
)
def test_email_canonical_form(raw, expected):
    assert normalize_email(pl.Series([raw])).to_list() == [expected]


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "ann",
        "ann@",
        "@example.com",
        "ann@example",
        "ann@example.c",
        "ann lee@example.com",
        "ann@@example.com",
        "ann@exa mple.com",
        "ann@-example.com",
        "ann@example-.com",
        "ann@example..com",
        "ann,lee@example.com",
        "n/a",
    ],
)
def test_invalid_email_becomes_null(raw):
    assert normalize_email(pl.Series([raw])).to_list() == [None]


def test_email_keeps_nulls_and_positions():
    result = normalize_email(pl.Series("email", [None, "A@B.io", "bad", None]))
    assert result.to_list() == [None, "a@b.io", None, None]
    assert result.name == "email"


US_FORMATS = [
    "212-555-0187",
    "(212) 555-0187",
    "212.555.0187",
    "212 555 0187",
    "2125550187",
    "1-212-555-0187",
    "1 (212) 555-0187",
    "+1 212 555 0187",
    "+1 (212) 555-0187",
    "+12125550187",
    "  212/555/0187  ",
    "212-555-0187 ext. 12",
]


def test_many_us_formats_give_the_same_e164():
    assert normalize_phone(pl.Series(US_FORMATS), "US").to_list() == ["+12125550187"] * len(
        US_FORMATS
    )


def test_uk_numbers():
    uk = ["+44 20 7946 0958", "+44 (0)20 7946 0958", "+442079460958"]
    assert normalize_phone(pl.Series(uk), "US").to_list() == ["+442079460958"] * 3
    # Without a country code the region decides: a UK national number read as GB.
    assert normalize_phone(pl.Series(["020 7946 0958"]), "GB").to_list() == ["+442079460958"]
    assert normalize_phone(pl.Series(["020 7946 0958"]), "US").to_list() == [None]


@pytest.mark.parametrize("raw", ["", "   ", "junk", "n/a", "12345", "x", "+", "-", "1-800-FLOWERS"])
def test_phone_junk_becomes_null(raw):
    assert normalize_phone(pl.Series([raw]), "US").to_list() == [None]


def test_local_number_without_area_code_is_not_a_phone_number():
    # A 7-digit US local number has no area code: it is not a complete number, has no
    # E.164 form, and the same local number exists in every area code, so linking on it
    # would merge strangers. '+18675309' (what a bare '867-5309' would become) is not a
    # dialable E.164 number; the normalizer must answer null.
    values = pl.Series(["867-5309", "555-0187"])
    assert normalize_phone(values, "US", "possible").to_list() == [None, None]
    assert normalize_phone(values, "US", "valid").to_list() == [None, None]


def test_phone_validation_possible_vs_valid():
    # Area code 555 is not assigned: a possible (right length) but not a valid number.
    values = pl.Series(["555-123-4567", "212-555-0187", None])
    assert normalize_phone(values, "US", "possible").to_list() == [
        "+15551234567",
        "+12125550187",
        None,
    ]
    assert normalize_phone(values, "US", "valid").to_list() == [None, "+12125550187", None]


def test_phone_via_normalize_uses_type_region_over_default():
    assert run(["020 7946 0958"], "US", normalizer="phone", region="GB") == ["+442079460958"]
    assert run(["020 7946 0958"], "GB", normalizer="phone") == ["+442079460958"]
    assert run(["555-123-4567"], "US", normalizer="phone", phone_validation="valid") == [None]


def test_phone_repeated_values_share_one_result_in_place():
    values = ["212-555-0187", None, "(212) 555-0187", "junk", "212-555-0187"]
    assert normalize_phone(pl.Series(values), "US").to_list() == [
        "+12125550187",
        None,
        "+12125550187",
        None,
        "+12125550187",
    ]


def test_upper_lower_trim_collapse_whitespace():
    raw = ["  ab  Cd\tEf ", "x", "", "   ", None]
    assert run(raw, normalizer="upper") == ["AB CD EF", "X", None, None, None]
    assert run(raw, normalizer="lower") == ["ab cd ef", "x", None, None, None]
    assert run(raw, normalizer="trim") == ["ab Cd Ef", "x", None, None, None]


def test_digits_keeps_only_digits():
    raw = ["LY-00 12", "(555) 010", "abc", "", None]
    assert run(raw, normalizer="digits") == ["0012", "555010", None, None, None]


def test_expression_normalizer_over_value():
    expression = "regexp_replace(upper(value), '[^A-Z0-9]', '', 'g')"
    raw = ["ly-100", "LY 100", " ly.100 ", "--", None]
    assert run(raw, normalizer="expression", expression=expression) == [
        "LY100",
        "LY100",
        "LY100",
        None,
        None,
    ]


MESSY = [
    "  Ann.Lee@Example.COM ",
    "mailto:X@Y.org",
    "<a@b.co>",
    "MAILTO:<Q@W.io>",
    "a@b",
    "",
    "   ",
    "n/a",
    "(212) 555-0187",
    "+1 212.555.0187 x12",
    "+44 (0)20 7946 0958",
    "555-123-4567",
    "0000000000",
    "1-800-FLOWERS",
    "++1 212 555 0187",
    "LY-00 12",
    " ab\t\tCD ",
    "ß straße",
    "İstanbul",
    "x",
    "#12",
    None,
]
TYPES = NORMALIZERS


@pytest.mark.parametrize("name", list(TYPES))
def test_normalizing_twice_changes_nothing(name):
    once = run(MESSY, **TYPES[name])
    twice = run(once, **TYPES[name])
    assert twice == once
    assert any(value is not None for value in once)  # the list exercises real values


@settings(max_examples=300, deadline=None)
@given(
    digits=st.text(alphabet="0123456789", min_size=7, max_size=12),
    layout=st.sampled_from(["{}", "+{}", "+1{}", "1-{}", "({})", "{} x12", "+44 {}", " {} "]),
)
def test_north_american_fast_path_agrees_with_phonenumbers(digits: str, layout: str) -> None:
    raw = layout.format(digits)
    reduced = pl.Series([raw]).str.replace_all(r"[^0-9+xX#]", "").str.to_lowercase()[0]
    expected = phone_e164(reduced, "US") if reduced else None
    assert normalize_phone(pl.Series([raw]), "US")[0] == expected
