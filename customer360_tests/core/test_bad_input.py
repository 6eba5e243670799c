"""Bad input never crashes a run and never loses a row without a quarantine row saying so."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from customer360.core.readers import read_source
from customer360.core.records import build_records

from .conftest import make_spec

HEADER = "customer_id,email,first_name,updated\n"


def crm_spec(directory: Path, **source):
    entry = {
        "name": "crm",
        "path": "crm",
        "format": "csv",
        "key": "customer_id",
        "updated_at": "updated",
        "trust": 1,
        "identifiers": {"email": "email"},
        "attributes": {"first_name": "first_name"},
    }
    entry.update(source)
    return make_spec(
        {"identifier_types": {"email": {"normalizer": "email"}}, "sources": [entry]}, directory
    )


def resolve(spec) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    raw = read_source(spec, spec.sources[0])
    records, quarantine = build_records(spec, {"crm": raw})
    return records, quarantine, raw.height


def write(folder: Path, name: str, content: bytes | str) -> None:
    folder.mkdir(exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    (folder / name).write_bytes(data)


def test_malformed_lines_are_quarantined_with_line_and_reason(tmp_path):
    write(
        tmp_path / "crm",
        "day1.csv",
        HEADER + "C1,a@x.io,Ann,2024-01-01\n"
        "C2,b@x.io\n"
        "C3,c@x.io,Cy,2024-01-03,surplus\n"
        "C4,d@x.io,Dee,2024-01-04\n",
    )
    records, quarantine, rows_in = resolve(crm_spec(tmp_path))
    assert records.get_column("record_key").to_list() == ["C1", "C4"]
    reasons = quarantine.get_column("reason").to_list()
    assert any(r.startswith("malformed line 3: missing columns") for r in reasons)
    assert any(r.startswith("malformed line 4: too many columns") for r in reasons)
    assert "C3,c@x.io,Cy,2024-01-03,surplus" in quarantine.get_column("raw_record").to_list()
    assert rows_in == records.height + quarantine.height


def test_an_unterminated_quote_is_reported_not_swallowed(tmp_path):
    write(
        tmp_path / "crm",
        "day1.csv",
        HEADER + 'C1,a@x.io,Ann,2024-01-01\nC2,b@x.io,"Bo,2024-01-02\nC3,c@x.io,Cy,2024-01-03\n',
    )
    records, quarantine, rows_in = resolve(crm_spec(tmp_path))
    assert "C1" in records.get_column("record_key").to_list()
    assert any("could not be parsed" in r for r in quarantine.get_column("reason"))
    assert rows_in == records.height + quarantine.height


def test_latin1_and_byte_order_marks_are_read(tmp_path):
    write(
        tmp_path / "crm",
        "latin.csv",
        HEADER.encode() + "C1,rene@x.io,René,2024-01-01\n".encode("latin-1"),
    )
    records, quarantine, _ = resolve(crm_spec(tmp_path, encoding="latin1"))
    assert records.get_column("first_name").to_list() == ["René"]
    write(tmp_path / "bom", "bom.csv", "\ufeff" + HEADER + "C1,a@x.io,Ann,2024-01-01\n")
    records, quarantine, _ = resolve(crm_spec(tmp_path, path="bom"))
    assert records.get_column("record_key").to_list() == ["C1"] and quarantine.is_empty()


def test_an_unreadable_batch_fails_alone(tmp_path):
    write(tmp_path / "crm", "day1.csv", HEADER + "C1,a@x.io,Ann,2024-01-01\n")
    write(tmp_path / "crm", "day2.csv", b"")
    records, quarantine, rows_in = resolve(crm_spec(tmp_path))
    assert records.get_column("record_key").to_list() == ["C1"]
    (row,) = quarantine.iter_rows(named=True)
    assert row["batch"] == "day2.csv"
    assert "file could not be read" in row["reason"] and "empty" in row["reason"]
    assert rows_in == records.height + quarantine.height


def test_json_that_is_not_records_fails_only_its_batch(tmp_path):
    folder = tmp_path / "web"
    write(folder, "a.json", '[{"customer_id": "W1", "email": "w@x.io", "updated": "2024-01-01"}]')
    write(folder, "b.json", '"just a string"')
    spec = crm_spec(tmp_path, path="web", format="json", attributes={})
    records, quarantine, _ = resolve(spec)
    assert records.get_column("record_key").to_list() == ["W1"]
    assert quarantine.get_column("batch").to_list() == ["b.json"]


def test_a_source_whose_every_batch_is_unreadable_quarantines_them_all(tmp_path):
    write(tmp_path / "crm", "day1.csv", b"")
    records, quarantine, rows_in = resolve(crm_spec(tmp_path))
    assert records.is_empty() and quarantine.height == rows_in == 1
