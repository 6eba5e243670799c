"""Ingestion: hashed identifiers are hashed in the extract, before anything is written."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import polars as pl
import pytest

from customer360.core.identifiers import build_identifiers
from customer360.core.ingest import WITHHELD_LINE, ingest_batch, ingest_source
from customer360.core.readers import RAW_LINE_COLUMN, SourceReadError
from customer360.core.records import build_records
from customer360.core.spec import Spec, SpecError, load_spec
from customer360_tests.core.conftest import (
    CRM_HEADER,
    crm_source,
    make_spec,
    spec_dict,
    write_csv,
    write_spec,
)

SALT = "an-ingestion-test-salt"
NOBODY_FORGOTTEN = pl.Series("entity_key", [], pl.String)
ROWS = [
    ["C1", " ANN@Example.com ", "212-555-0101", "Ann", "2024-01-01"],
    ["C2", "ann@example.com", "(212) 555-0101", "Ann", "2024-01-02"],
    ["C3", "noreply@shop.com", "not a phone", "Bob", "2024-01-03"],
    ["C4", "not an email", "N/A", "Cat", "2024-01-04"],
    ["C5", "N/A", "", "Dan", "2024-01-05"],
]


def reference_hash(value: str) -> str:
    return hmac.new(SALT.encode(), value.encode(), hashlib.sha256).hexdigest()


def hashing_spec(**source_overrides: object) -> dict:
    raw = spec_dict(crm_source(**source_overrides))
    raw["identifier_types"]["email"].update(
        hash=True, exclusions=[{"like": "noreply@%", "reason": "no-reply mailbox"}]
    )
    raw["identifier_types"]["phone"]["hash"] = True
    return raw


@pytest.fixture(autouse=True)
def _salt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMER360_SALT", SALT)


@pytest.fixture
def spec(tmp_path: Path) -> Spec:
    write_csv(tmp_path / "crm.csv", CRM_HEADER, ROWS)
    return make_spec(hashing_spec(), base_dir=tmp_path)


def test_hashed_columns_hold_the_keyed_hash_of_the_normalized_value(spec: Spec) -> None:
    ingested = ingest_source(spec, spec.sources[0], NOBODY_FORGOTTEN)
    frame = ingested.frame
    ann, ann_phone = reference_hash("ann@example.com"), reference_hash("+12125550101")
    assert frame.get_column("email").to_list() == [ann, ann, None, None, None]
    assert frame.get_column("phone").to_list() == [ann_phone, ann_phone, None, None, None]
    assert frame.get_column("first_name").to_list() == ["Ann", "Ann", "Bob", "Cat", "Dan"]
    assert frame.get_column("customer_id").to_list() == ["C1", "C2", "C3", "C4", "C5"]


def test_one_batch_alone_is_ingested_as_with_the_others(tmp_path: Path) -> None:
    write_csv(tmp_path / "crm" / "day1.csv", CRM_HEADER, ROWS[:2])
    write_csv(tmp_path / "crm" / "day2.csv", CRM_HEADER, ROWS[2:])
    spec = make_spec(hashing_spec(path="crm"), base_dir=tmp_path)
    source, forgotten = spec.sources[0], pl.Series("entity_key", ["crm:C3"])
    together = ingest_source(spec, source, forgotten)
    alone = ingest_batch(spec, source, tmp_path / "crm" / "day2.csv", forgotten)
    assert alone.frame.equals(together.frame.filter(pl.col("_batch") == "day2.csv"))
    assert alone.forgotten_rows_dropped == together.forgotten_rows_dropped == 1


def test_values_that_could_never_link_are_dropped_and_counted_placeholders_are_not(
    spec: Spec,
) -> None:
    dropped = ingest_source(spec, spec.sources[0], NOBODY_FORGOTTEN).hashed_values_dropped
    assert dropped == {
        "email": {"invalid": 1, "excluded": 1},  # 'not an email', the no-reply mailbox
        "phone": {"invalid": 1, "excluded": 0},  # 'not a phone'; 'N/A' means no value
    }


def test_identifiers_of_hashed_types_hold_the_hash_and_still_link(spec: Spec) -> None:
    extract = ingest_source(spec, spec.sources[0], NOBODY_FORGOTTEN).frame
    records, _ = build_records(spec, {"crm": extract})
    identifiers = build_identifiers(spec, records).sort("identifier_type", "entity_key")
    assert identifiers.select("entity_key", "identifier_type", "status", "group_size").rows() == [
        ("crm:C1", "email", "linkable", 2),
        ("crm:C2", "email", "linkable", 2),
        ("crm:C1", "phone", "linkable", 2),
        ("crm:C2", "phone", "linkable", 2),
    ]
    assert (identifiers.get_column("value_raw") == identifiers.get_column("value")).all()
    assert identifiers.get_column("value").str.contains(r"^[0-9a-f]{64}$").all()


def test_a_malformed_line_of_a_hashing_source_is_withheld_whole(spec: Spec, tmp_path: Path) -> None:
    with (tmp_path / "crm.csv").open("a") as crm:
        crm.write("C6,eve@example.com,2125550199,Eve,2024-01-06,one field too many\n")
    extract = ingest_source(spec, spec.sources[0], NOBODY_FORGOTTEN).frame
    assert extract.get_column(RAW_LINE_COLUMN).drop_nulls().to_list() == [WITHHELD_LINE]
    _, quarantine = build_records(spec, {"crm": extract})
    assert quarantine.get_column("raw_record").to_list() == [WITHHELD_LINE]
    assert quarantine.get_column("reason").str.starts_with("malformed line 7").all()
    assert "eve@" not in str(quarantine.rows())


def test_forgotten_records_never_enter(spec: Spec) -> None:
    ingested = ingest_source(spec, spec.sources[0], pl.Series("entity_key", ["crm:C2"]))
    assert ingested.forgotten_rows_dropped == 1
    assert "C2" not in ingested.frame.get_column("customer_id").to_list()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"identifiers": {"email": "lower(email)", "phone": "phone"}},
            "sources[0] (crm).identifiers.email: a hashed identifier must map a column as it is",
        ),
        (
            {"attributes": {"first_name": "first_name", "contact": "email"}},
            "column 'email' is hashed, but attributes.contact also read(s) it",
        ),
        (
            {"key": "email", "attributes": {"first_name": "first_name"}},
            "column 'email' is hashed, but key also read(s) it",
        ),
    ],
    ids=["expression", "also an attribute", "also the key"],
)
def test_a_hashed_column_must_be_mapped_as_it_is_and_feed_nothing_else(
    tmp_path: Path, overrides: dict, expected: str
) -> None:
    write_csv(tmp_path / "crm.csv", CRM_HEADER, ROWS)
    path = write_spec(tmp_path, hashing_spec(**overrides))
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    assert expected in str(raised.value)


def test_a_hashed_expression_is_refused_at_ingestion_even_without_the_file_check(
    tmp_path: Path,
) -> None:
    write_csv(tmp_path / "crm.csv", CRM_HEADER, ROWS)
    raw = hashing_spec(identifiers={"email": "lower(email)", "phone": "phone"})
    raw["identifier_types"]["phone"]["hash"] = False
    spec = make_spec(raw, base_dir=tmp_path)  # as load_spec(check_files=False) would
    with pytest.raises(SourceReadError, match="must map a column as it is"):
        ingest_source(spec, spec.sources[0], NOBODY_FORGOTTEN)
