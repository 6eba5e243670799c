"""Records: mapped rows with provenance, and a quarantine for every row that cannot be
accepted. Rows in = records + quarantine."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer360.core.readers import read_source
from customer360.core.records import (
    DEFAULT_TIMESTAMP_FORMATS,
    KELVIN_SIGN,
    PROVENANCE_COLUMNS,
    WHOLE_SECONDS_FORMAT,
    build_records,
    clean_text,
    placeholder_spellings,
    stack_by_trust,
)

from .conftest import CRM_HEADER, crm_source, make_spec, spec_dict, write_csv


def crm_spec(tmp_path: Path, rows: list[list[str]], header=CRM_HEADER, **settings_or_source):
    write_csv(tmp_path / "crm.csv", header, rows)
    settings = settings_or_source.pop("settings", None)
    source = crm_source(**settings_or_source)
    raw = spec_dict(source, **({"settings": settings} if settings else {}))
    return make_spec(raw, tmp_path)


def build(spec) -> tuple[pl.DataFrame, pl.DataFrame]:
    extracts = {s.name: read_source(spec, s) for s in spec.sources}
    return build_records(spec, extracts)


def test_records_carry_entity_key_mapped_fields_and_provenance(tmp_path):
    spec = crm_spec(
        tmp_path,
        [[" C1 ", "ann@example.com", "212-555-0101", "Ann", "2024-01-05"]],
        trust=3,
    )
    records, quarantine = build(spec)
    assert quarantine.is_empty()
    assert records.columns == [
        *PROVENANCE_COLUMNS,
        "email",
        "phone",
        "first_name",
    ]
    assert records.row(0, named=True) == {
        "entity_key": "crm:C1",  # source:key, with the key trimmed
        "source": "crm",
        "record_key": "C1",
        "batch": "crm.csv",
        "row_number": 1,
        "updated_at": datetime(2024, 1, 5),
        "trust": 3,
        "email": "ann@example.com",  # raw: normalization happens in identifiers
        "phone": "212-555-0101",
        "first_name": "Ann",
    }


def test_missing_key_goes_to_quarantine_with_the_raw_record(tmp_path):
    rows = [
        ["C1", "ann@example.com", "", "Ann", "2024-01-01"],
        ["", "nokey@example.com", "212-555-0199", "Nobody", "2024-01-02"],
        ["   ", "blank@example.com", "", "Blank", "2024-01-03"],
    ]
    records, quarantine = build(crm_spec(tmp_path, rows))
    assert records.get_column("entity_key").to_list() == ["crm:C1"]
    assert quarantine.get_column("row_number").to_list() == [2, 3]
    assert (
        quarantine.get_column("reason").to_list()
        == ["missing record key in column 'customer_id'"] * 2
    )
    assert json.loads(quarantine.get_column("raw_record")[0]) == {
        "customer_id": None,
        "email": "nokey@example.com",
        "phone": "212-555-0199",
        "first_name": "Nobody",
        "updated": "2024-01-02",
    }
    # The raw record keeps the value as it was, spaces included.
    assert json.loads(quarantine.get_column("raw_record")[1])["customer_id"] == "   "


def test_duplicate_key_latest_batch_wins_then_first_row(tmp_path):
    folder = tmp_path / "crm"
    write_csv(
        folder / "2024-01.csv",
        CRM_HEADER,
        [
            ["C1", "old@example.com", "", "Ann", "2024-01-01"],
            ["C2", "bob@example.com", "", "Bob", "2024-01-01"],
        ],
    )
    write_csv(
        folder / "2024-02.csv",
        CRM_HEADER,
        [
            ["C1", "new@example.com", "", "Ann", "2024-02-01"],
            ["C1", "newer@example.com", "", "Ann", "2024-02-03"],
        ],
    )
    spec = make_spec(
        spec_dict(
            {
                "name": "crm",
                "path": "crm",
                "format": "csv",
                "key": "customer_id",
                "updated_at": "updated",
                "trust": 1,
                "identifiers": {"email": "email"},
            }
        ),
        tmp_path,
    )
    records, quarantine = build(spec)

    kept = records.filter(pl.col("record_key") == "C1").row(0, named=True)
    assert (kept["batch"], kept["row_number"], kept["email"]) == (
        "2024-02.csv",
        1,
        "new@example.com",
    )
    assert records.height == 2
    assert quarantine.select("batch", "row_number", "record_key", "reason").rows() == [
        ("2024-01.csv", 1, "C1", "duplicate record key 'C1': kept 2024-02.csv row 1"),
        ("2024-02.csv", 2, "C1", "duplicate record key 'C1': kept 2024-02.csv row 1"),
    ]
    assert json.loads(quarantine.get_column("raw_record")[0])["email"] == "old@example.com"


def test_unparseable_timestamp_goes_to_quarantine(tmp_path):
    rows = [
        ["C1", "ann@example.com", "", "Ann", "yesterday"],
        ["C2", "bob@example.com", "", "Bob", "2024-13-45"],
        ["C3", "cat@example.com", "", "Cat", "2024-01-03"],
    ]
    records, quarantine = build(crm_spec(tmp_path, rows))
    assert records.get_column("record_key").to_list() == ["C3"]
    reasons = quarantine.get_column("reason").to_list()
    assert reasons[0].startswith("unparseable timestamp 'yesterday' in column 'updated'")
    assert reasons[1].startswith("unparseable timestamp '2024-13-45' in column 'updated'")
    assert "updated_at_format" in reasons[0]  # the fix


DEFAULT_FORMAT_EXAMPLES = [
    ("2024-03-04", datetime(2024, 3, 4)),
    ("2024-03-04 05:06:07", datetime(2024, 3, 4, 5, 6, 7)),
    ("2024-03-04T05:06:07Z", datetime(2024, 3, 4, 5, 6, 7)),
    ("2024-03-04T05:06:07.250+02:00", datetime(2024, 3, 4, 5, 6, 7, 250000)),
    ("2024-03-04 05:06", datetime(2024, 3, 4, 5, 6)),
    ("03/04/2024", datetime(2024, 3, 4)),  # MM/DD/YYYY
    ("03/04/2024 05:06", datetime(2024, 3, 4, 5, 6)),
]


@pytest.mark.parametrize(("text", "expected"), DEFAULT_FORMAT_EXAMPLES)
def test_default_timestamp_formats(tmp_path, text, expected):
    records, quarantine = build(crm_spec(tmp_path, [["C1", "", "", "Ann", text]]))
    assert quarantine.is_empty()
    assert records.get_column("updated_at").to_list() == [expected]


def test_default_timestamp_formats_mixed_in_one_column(tmp_path):
    examples = DEFAULT_FORMAT_EXAMPLES * 2 + [("", None)]
    rows = [[f"C{i}", "", "", "Ann", text] for i, (text, _) in enumerate(examples)]
    records, quarantine = build(crm_spec(tmp_path, rows))
    assert quarantine.is_empty()
    parsed = dict(records.select("record_key", "updated_at").iter_rows())
    assert [parsed[f"C{i}"] for i in range(len(examples))] == [e for _, e in examples]


@pytest.mark.parametrize("first", range(len(DEFAULT_FORMAT_EXAMPLES)))
def test_the_format_of_the_first_value_decides_nothing_about_the_others(tmp_path, first):
    examples = DEFAULT_FORMAT_EXAMPLES[first:] + DEFAULT_FORMAT_EXAMPLES[:first]
    rows = [[f"C{i}", "", "", "Ann", text] for i, (text, _) in enumerate(examples)]
    records, quarantine = build(crm_spec(tmp_path, rows))
    assert quarantine.is_empty()
    parsed = dict(records.select("record_key", "updated_at").iter_rows())
    assert [parsed[f"C{i}"] for i in range(len(examples))] == [e for _, e in examples]


@pytest.mark.parametrize(
    "text",
    [text for text, _ in DEFAULT_FORMAT_EXAMPLES]
    + [
        "2024-3-4",
        "2024-03-04 5:06",
        "2024-03-04 05:06:07.5",
        "3/4/2024 5:06:07",
        "3/4/2024",
        "12/31/2024 23:59",
        "2024/03/04",
        "04-03-2024",
        "2024-03-04 05",
        "20240304",
        "1:2",
    ],
)
def test_no_value_is_read_by_two_default_formats(text):
    # the formats are tried in the order the data suggests, which is right only so
    cleaned = pl.Series([text]).str.replace("T", " ").str.replace(r"(Z|[+-]\d{2}:?\d{2})$", "")
    readers = [
        fmt
        for fmt in DEFAULT_TIMESTAMP_FORMATS
        if cleaned.str.to_datetime(fmt, strict=False).item() is not None
    ]
    assert len(readers) <= 1


def padded(low: int, high: int) -> st.SearchStrategy[str]:
    """A number as timestamps write it: zero-padded to two digits or not, maybe spaced."""
    return st.tuples(st.integers(low, high), st.sampled_from(["{:02d}", "{}", " {}"])).map(
        lambda number_and_form: number_and_form[1].format(number_and_form[0])
    )


timestamp_like = st.tuples(
    padded(0, 10_000),
    padded(0, 13),
    padded(0, 32),
    st.sampled_from([" ", "  ", "T", ""]),
    padded(0, 25),
    padded(0, 61),
    padded(0, 61),
    st.sampled_from(["", "", "", ".", ".5", ".000000", ".123456789", " ", "Z"]),
).map(lambda p: f"{p[0]}-{p[1]}-{p[2]}{p[3]}{p[4]}:{p[5]}:{p[6]}{p[7]}")


@settings(deadline=None, max_examples=15)
@given(texts=st.lists(timestamp_like, min_size=20, max_size=40))
def test_whole_seconds_format_reads_what_the_first_format_reads_alike(texts):
    values = pl.Series(texts, dtype=pl.String)
    whole = values.str.to_datetime(WHOLE_SECONDS_FORMAT, strict=False, time_unit="us")
    first = values.str.to_datetime(DEFAULT_TIMESTAMP_FORMATS[0], strict=False, time_unit="us")
    read = whole.is_not_null()
    # compared as microseconds: a year 0 is a valid instant but no Python datetime
    assert (
        whole.filter(read).cast(pl.Int64).to_list() == first.filter(read).cast(pl.Int64).to_list()
    )


def test_explicit_timestamp_format(tmp_path):
    rows = [["C1", "", "", "Ann", "04.03.2024"], ["C2", "", "", "Bob", "2024-03-04"]]
    records, quarantine = build(crm_spec(tmp_path, rows, updated_at_format="%d.%m.%Y"))
    assert records.get_column("updated_at").to_list() == [datetime(2024, 3, 4)]
    assert "(expected %d.%m.%Y)" in quarantine.get_column("reason")[0]


def test_missing_timestamp_placeholder_is_null_not_quarantined(tmp_path):
    # settings.missing_values lists the tokens that mean "no value" ("" and "n/a" among
    # them by default). A record whose timestamp is such a token simply has no timestamp:
    # it is accepted with updated_at null (sorted last), like an absent timestamp is,
    # rather than quarantined as "unparseable".
    spec = crm_spec(tmp_path, [], format="ndjson", path="crm.ndjson")
    lines = [
        {"customer_id": "C1", "email": "a@x.com", "phone": "", "first_name": "A", "updated": None},
        {"customer_id": "C2", "email": "b@x.com", "phone": "", "first_name": "B", "updated": ""},
        {"customer_id": "C3", "email": "c@x.com", "phone": "", "first_name": "C", "updated": "   "},
        {"customer_id": "C4", "email": "d@x.com", "phone": "", "first_name": "D", "updated": "n/a"},
    ]
    (tmp_path / "crm.ndjson").write_text("".join(json.dumps(line) + "\n" for line in lines))
    records, quarantine = build(spec)
    assert quarantine.get_column("reason").to_list() == []
    assert records.get_column("record_key").to_list() == ["C1", "C2", "C3", "C4"]
    assert records.get_column("updated_at").to_list() == [None] * 4


def test_rows_in_equal_records_plus_quarantine(tmp_path):
    rows = [
        ["C1", "ann@example.com", "", "Ann", "2024-01-01"],
        ["", "x@example.com", "", "X", "2024-01-01"],
        ["C2", "bob@example.com", "", "Bob", "not a date"],
        ["C1", "dup@example.com", "", "Ann", "2024-01-02"],
        ["C3", "cat@example.com", "", "Cat", ""],
    ]
    records, quarantine = build(crm_spec(tmp_path, rows))
    assert records.height + quarantine.height == len(rows)
    assert sorted(records.get_column("record_key").to_list()) == ["C1", "C3"]
    assert quarantine.get_column("row_number").to_list() == [2, 3, 4]


@pytest.mark.parametrize("token", ["", "n/a", "N/A", " none ", "-", "NULL", "Unknown", "na"])
def test_placeholder_tokens_become_null(tmp_path, token):
    spec = crm_spec(
        tmp_path, [["C1", "x", "y", "z", "2024-01-01"]], format="ndjson", path="crm.ndjson"
    )
    row = {
        "customer_id": "C1",
        "email": token,
        "phone": token,
        "first_name": token,
        "updated": "2024-01-01",
    }
    (tmp_path / "crm.ndjson").write_text(json.dumps(row) + "\n")
    records, _ = build(spec)
    assert records.select("email", "phone", "first_name").row(0) == (None, None, None)


def test_mapped_values_are_trimmed_and_real_values_kept(tmp_path):
    rows = [["C1", "  ann@example.com ", "-", "  Nadia ", "2024-01-01"]]
    records, _ = build(crm_spec(tmp_path, rows))
    assert records.select("email", "phone", "first_name").row(0) == (
        "ann@example.com",
        None,
        "Nadia",
    )


def test_custom_missing_values_replace_the_defaults(tmp_path):
    rows = [["C1", "?", "n/a", "Ann", "2024-01-01"]]
    records, _ = build(crm_spec(tmp_path, rows, settings={"missing_values": ["?"]}))
    assert records.select("email", "phone").row(0) == (None, "n/a")


def test_only_ascii_letters_and_the_kelvin_sign_lower_case_to_ascii():
    # what placeholder_spellings relies on, checked against Polars' own lower-casing
    characters = pl.Series([chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c <= 0xDFFF])
    lowered = characters.str.to_lowercase()
    assert characters.filter(lowered.str.contains(r"^[\x00-\x7f]+$")).to_list() == [KELVIN_SIGN]


def test_placeholder_spellings_cover_every_case_and_give_way_to_lower_casing():
    assert placeholder_spellings(("n/a", "-")) == ["-", "N/A", "N/a", "n/A", "n/a"]
    assert len(placeholder_spellings(("ok",))) == 6  # o, O × k, K, Kelvin sign
    assert placeholder_spellings(("néant",)) is None  # not ASCII: values are lower-cased
    assert placeholder_spellings(("not applicable at all",)) is None  # too many spellings


PLACEHOLDER_ALPHABET = "nNaA/-lLuUkKoOwWeE \t" + KELVIN_SIGN + "\u0130ßẞΣσς\u0307é"
TOKEN_SETS = [
    ["", "n/a", "na", "null", "none", "-", "unknown"],  # the defaults
    ["ok", "σ", "i\u0307", "ss"],  # not ASCII: found by lower-casing
    ["not applicable at all", "n/a"],  # too many spellings: found by lower-casing
]


@st.composite
def respelled_tokens(draw: st.DrawFn) -> str:
    """A token with each letter in either case ('k' also as the Kelvin sign), padded."""
    token = draw(st.sampled_from([t for tokens in TOKEN_SETS for t in tokens]))
    chars = [draw(st.sampled_from([c, c.upper(), KELVIN_SIGN if c == "k" else c])) for c in token]
    return (
        draw(st.sampled_from(["", " ", "\t"])) + "".join(chars) + draw(st.sampled_from(["", " "]))
    )


@settings(deadline=None, max_examples=60)
@given(
    values=st.lists(
        st.one_of(
            st.none(),
            st.text(alphabet=PLACEHOLDER_ALPHABET, max_size=8),
            respelled_tokens(),
        ),
        min_size=1,
        max_size=40,
    ),
    tokens=st.sampled_from(TOKEN_SETS),
)
def test_clean_text_nulls_exactly_the_values_whose_lower_case_is_a_token(values, tokens):
    frame = pl.DataFrame({"value": values}, schema={"value": pl.String})
    cleaned = frame.select(clean_text(pl.col("value"), tokens)).to_series().to_list()
    trimmed = frame.select(pl.col("value").str.strip_chars()).to_series().to_list()
    lowered = frame.select(pl.col("value").str.strip_chars().str.to_lowercase()).to_series()
    expected = [None if low in tokens else t for t, low in zip(trimmed, lowered, strict=True)]
    assert cleaned == expected


def dated_source(name: str, trust: int) -> dict:
    """A CSV source ``<name>.csv`` of (id, mail, changed) rows at the given trust."""
    return {
        "name": name,
        "path": f"{name}.csv",
        "format": "csv",
        "key": "id",
        "updated_at": "changed",
        "trust": trust,
        "identifiers": {"email": "mail"},
    }


def test_records_sorted_by_trust_then_updated_at_nulls_last_then_key(tmp_path):
    header = ["id", "mail", "changed"]
    write_csv(
        tmp_path / "crm.csv",
        header,
        [
            ["B", "b@x.com", "2024-03-01"],
            ["A", "a@x.com", "2024-03-01"],
            ["Z", "z@x.com", "2024-01-01"],
            ["N", "n@x.com", ""],
        ],
    )
    write_csv(
        tmp_path / "shop.csv",
        header,
        [
            ["O1", "o@x.com", "2020-01-01"],  # oldest of all, but less trusted
        ],
    )

    # Listed shop first: the order of sources in the spec must not matter.
    spec = make_spec(spec_dict(dated_source("shop", 2), dated_source("crm", 1)), tmp_path)
    records, _ = build(spec)
    assert records.get_column("entity_key").to_list() == [
        "crm:Z",
        "crm:A",
        "crm:B",
        "crm:N",
        "shop:O1",
    ]


def test_sources_of_one_trust_are_merged_by_updated_at_then_key(tmp_path):
    header = ["id", "mail", "changed"]
    write_csv(
        tmp_path / "crm.csv",
        header,
        [
            ["C2", "c2@x.com", "2024-03-01"],
            ["C1", "c1@x.com", ""],
            ["C3", "c3@x.com", "2024-01-01"],
        ],
    )
    write_csv(
        tmp_path / "shop.csv",
        header,
        [["S1", "s1@x.com", "2024-02-01"], ["S0", "s0@x.com", ""], ["A", "a@x.com", "2024-03-01"]],
    )
    write_csv(tmp_path / "crm2.csv", header, [["X", "x@x.com", "2024-03-01"]])
    write_csv(tmp_path / "web.csv", header, [["W1", "w1@x.com", "2020-01-01"]])

    spec = make_spec(
        spec_dict(
            dated_source("web", 2),
            dated_source("shop", 1),
            dated_source("crm", 1),
            dated_source("crm2", 1),
        ),
        tmp_path,
    )
    records, _ = build(spec)
    assert records.get_column("entity_key").to_list() == [
        "crm:C3",
        "shop:S1",
        "crm2:X",  # the same update: "crm2:X" < "crm:C2" < "shop:A" as text
        "crm:C2",
        "shop:A",
        "crm:C1",  # no update: after every dated record of its trust
        "shop:S0",
        "web:W1",
    ]


def test_sources_of_one_trust_with_every_time_are_merged_as_the_stable_sort_merges_them(
    tmp_path,
):
    header = ["id", "mail", "changed"]
    days = ["2024-01-01", "2024-03-01", "2024-03-01", "2024-05-01"]
    for name, offset in (("crm", 0), ("shop", 1), ("crm2", 2)):
        rows = [[f"{name.upper()}{i}", f"{name}{i}@x.com", day] for i, day in enumerate(days)]
        write_csv(tmp_path / f"{name}.csv", header, rows[offset:])
    spec = make_spec(
        spec_dict(dated_source("shop", 1), dated_source("crm", 1), dated_source("crm2", 1)),
        tmp_path,
    )
    records, _ = build(spec)
    assert records.get_column("entity_key").to_list() == [
        "crm:CRM0",
        "crm2:CRM22",  # the same update: by entity_key, "crm2:" < "crm:" < "shop:"
        "crm:CRM1",
        "crm:CRM2",
        "shop:SHOP1",
        "shop:SHOP2",
        "crm2:CRM23",
        "crm:CRM3",
        "shop:SHOP3",
    ]
    assert records.equals(records.sort("updated_at", "entity_key", maintain_order=True))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.one_of(st.none(), st.integers(1, 5)), max_size=6), min_size=2, max_size=3)
)
def test_sources_of_one_trust_stack_as_sorted_by_update_nulls_last_then_key(days):
    names = ["shop", "crm", "crm2"][: len(days)]
    spec = make_spec(spec_dict(*(dated_source(name, 1) for name in names)), Path("/tmp"))
    accepted = {}
    for name, source_days in zip(names, days, strict=True):
        rows = pl.DataFrame(
            {
                "entity_key": [f"{name}:{i:02d}" for i in range(len(source_days))],
                "updated_at": [d and datetime(2024, 1, d) for d in source_days],
            },
            schema={"entity_key": pl.String, "updated_at": pl.Datetime("us")},
        )
        accepted[name] = rows.sort("updated_at", "entity_key", nulls_last=True)
    stacked = stack_by_trust(spec, accepted)
    expected = pl.concat(accepted.values()).sort("updated_at", "entity_key", nulls_last=True)
    assert stacked.select("entity_key", "updated_at").equals(expected)


def test_sql_expression_mappings(tmp_path):
    header = ["customer_id", "mail", "tel", "name", "updated"]
    rows = [["C1", "ann@example.com", "212 555 0101", "Doe/Jane", "2024-01-01"]]
    spec = crm_spec(
        tmp_path,
        rows,
        header=header,
        identifiers={"email": "upper(mail)", "phone": "replace(tel, ' ', '-')"},
        attributes={
            "first_name": "split_part(name, '/', 2)",
            "last_name": "upper(split_part(name, '/', 1))",
        },
    )
    records, quarantine = build(spec)
    assert quarantine.is_empty()
    assert records.select("email", "phone", "first_name", "last_name").row(0) == (
        "ANN@EXAMPLE.COM",
        "212-555-0101",
        "Jane",
        "DOE",
    )


def test_sources_missing_a_field_get_nulls_for_it(tmp_path):
    write_csv(tmp_path / "crm.csv", ["id", "mail", "fn"], [["C1", "a@x.com", "Ann"]])
    write_csv(tmp_path / "shop.csv", ["id", "tel"], [["O1", "2125550101"]])
    crm = {
        "name": "crm",
        "path": "crm.csv",
        "format": "csv",
        "key": "id",
        "trust": 1,
        "identifiers": {"email": "mail"},
        "attributes": {"first_name": "fn"},
    }
    shop = {
        "name": "shop",
        "path": "shop.csv",
        "format": "csv",
        "key": "id",
        "trust": 2,
        "identifiers": {"phone": "tel"},
    }
    records, _ = build(make_spec(spec_dict(crm, shop), tmp_path))
    assert records.select("entity_key", "email", "phone", "first_name").rows() == [
        ("crm:C1", "a@x.com", None, "Ann"),
        ("shop:O1", None, "2125550101", None),
    ]
    assert records.get_column("updated_at").to_list() == [None, None]


def test_a_source_without_batches_yet_adds_no_records_and_no_quarantine(tmp_path: Path) -> None:
    row = ["C1", "ann@example.com", "", "Ann", "2024-01-01"]
    write_csv(tmp_path / "crm.csv", CRM_HEADER, [row])
    inbox = crm_source(name="inbox", path="inbox/", format="ndjson", trust=2)
    spec = make_spec(spec_dict(crm_source(), inbox), tmp_path)
    extracts = {source.name: read_source(spec, source) for source in spec.sources}

    records, quarantine = build_records(spec, extracts)

    assert records.get_column("entity_key").to_list() == ["crm:C1"]
    assert quarantine.is_empty()


def test_building_records_takes_the_extracts_over_so_their_raw_rows_can_be_freed(tmp_path):
    spec = crm_spec(tmp_path, [["C1", "ann@example.com", "212-555-0101", "Ann", "2024-01-05"]])
    extracts = {s.name: read_source(spec, s) for s in spec.sources}
    records, _ = build_records(spec, extracts)
    assert records.height == 1
    assert extracts == {}  # nothing of the raw rows is left referenced by the caller's dict
