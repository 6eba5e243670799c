"""Bad input never crashes a run and never loses a row without a quarantine row saying so."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import xlsxwriter

from customer360.core.readers import read_source
from customer360.core.records import MAX_VALUE_CHARS, build_records

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


def test_duplicate_keys_keep_one_row_and_quarantine_the_others(tmp_path):
    write(
        tmp_path / "crm", "day1.csv", HEADER + "C1,a@x.io,Ann,2024-01-01\nC1,b@x.io,Bo,2024-01-02\n"
    )
    write(tmp_path / "crm", "day2.csv", HEADER + "C1,c@x.io,Cy,2024-01-03\n")
    records, quarantine, rows_in = resolve(crm_spec(tmp_path))
    assert records.select("record_key", "email").rows() == [("C1", "c@x.io")]
    assert (
        quarantine.get_column("reason").to_list()
        == ["duplicate record key 'C1': kept day2.csv row 1"] * 2
    )
    assert rows_in == records.height + quarantine.height


def test_mixed_types_in_a_column_are_read_as_text(tmp_path):
    lines = [
        '{"customer_id": 1, "email": "a@x.io", "first_name": "Ann", "updated": "2024-01-01"}',
        '{"customer_id": 2.5, "email": ["b@x.io"], "first_name": {"x": 1}, "updated": null}',
        '{"customer_id": "W3", "email": 7, "first_name": true, "updated": "2024-01-03"}',
    ]
    write(tmp_path / "web", "a.ndjson", "\n".join(lines) + "\n")
    records, quarantine, rows_in = resolve(crm_spec(tmp_path, path="web", format="ndjson"))
    assert records.select("record_key", "email", "first_name").rows() == [
        ("1", "a@x.io", "Ann"),
        ("W3", "7", "true"),
        ("2.5", '["b@x.io"]', '{"x": 1}'),
    ]
    assert quarantine.is_empty() and rows_in == records.height


def test_a_batch_missing_or_renaming_a_column_fails_alone_naming_file_and_fix(tmp_path):
    folder = tmp_path / "crm"
    write(folder, "day1.csv", HEADER + "C1,a@x.io,Ann,2024-01-01\n")
    write(folder, "day2.csv", "customer_id,mail,first_name,updated\nC2,b@x.io,Bo,2024-01-02\n")
    write(folder, "day3.csv", "id,email,updated\nC3,c@x.io,2024-01-03\nC4,d@x.io,2024-01-04\n")
    records, quarantine, rows_in = resolve(crm_spec(tmp_path))
    assert records.get_column("record_key").to_list() == ["C1"]
    reasons = dict(zip(quarantine["batch"], quarantine["reason"], strict=True))
    assert reasons["day2.csv"].startswith("batch rejected: day2.csv lacks columns")
    assert "unknown column 'email' in day2.csv" in reasons["day2.csv"]
    assert "aliases" in reasons["day2.csv"]  # the fix: rename it, or map it with an alias
    assert "column 'customer_id' not in day3.csv" in reasons["day3.csv"]
    assert "'first_name'" in reasons["day3.csv"]
    assert rows_in == records.height + quarantine.height


def test_json_objects_may_leave_out_an_attribute_without_failing_their_batch(tmp_path):
    write(tmp_path / "web", "a.ndjson", '{"customer_id": "W1", "updated": "2024-01-01"}\n')
    records, quarantine, _ = resolve(crm_spec(tmp_path, path="web", format="ndjson"))
    assert records.select("record_key", "email", "first_name").rows() == [("W1", None, None)]
    assert quarantine.is_empty()


def test_absurdly_long_values_are_quarantined_without_quoting_them(tmp_path):
    huge_name, huge_email = "A" * 2_000_000, "b" * 5_000 + "@x.io"
    write(
        tmp_path / "crm",
        "day1.csv",
        HEADER + f"C1,a@x.io,{huge_name},2024-01-01\nC2,{huge_email},Bo,2024-01-02\n"
        f"C3,c@x.io,{'C' * MAX_VALUE_CHARS},2024-01-03\n",
    )
    records, quarantine, rows_in = resolve(crm_spec(tmp_path))
    assert records.get_column("record_key").to_list() == ["C3"]  # at the limit is accepted
    assert quarantine.select("record_key", "reason").rows() == [
        (
            "C1",
            "value of 'first_name' is 2000000 characters long (at most 1000 are "
            "accepted); fix the extract at its source",
        ),
        (
            "C2",
            "value of 'email' is 5005 characters long (at most 1000 are "
            "accepted); fix the extract at its source",
        ),
    ]
    assert huge_name in quarantine.get_column("raw_record")[0]  # kept, not lost
    assert rows_in == records.height + quarantine.height


def workbook(path: Path) -> None:
    """A workbook whose contacts are on its second sheet, between notes and a pivot."""
    path.parent.mkdir(exist_ok=True)
    book = xlsxwriter.Workbook(str(path))
    book.add_worksheet("notes").write_row(0, 0, ["exported by", "marketing"])
    contacts = book.add_worksheet("contacts")
    contacts.write_row(0, 0, ["customer_id", "email", "first_name", "updated"])
    contacts.write_row(1, 0, ["M1", "m@x.io", "Mo", "2024-01-01"])
    contacts.write_row(2, 0, [2, "n@x.io", 3.5, "2024-01-02"])  # numbers among text
    book.add_worksheet("pivot").write_row(0, 0, [1, 2, 3])
    book.close()


def test_an_excel_workbook_with_extra_sheets_reads_the_named_sheet(tmp_path):
    workbook(tmp_path / "mk" / "list.xlsx")
    spec = crm_spec(tmp_path, path="mk", format="xlsx", sheet="contacts")
    records, quarantine, rows_in = resolve(spec)
    assert records.select("record_key", "first_name").rows() == [("M1", "Mo"), ("2", "3.5")]
    assert quarantine.is_empty() and rows_in == 2


def test_an_excel_batch_without_the_sheet_or_its_columns_fails_alone(tmp_path):
    workbook(tmp_path / "mk" / "list.xlsx")
    for sheet, problem in [("gone", "sources[].sheet"), (None, "lacks columns")]:
        records, quarantine, rows_in = resolve(
            crm_spec(tmp_path, path="mk", format="xlsx", sheet=sheet)
        )
        (reason,) = quarantine.get_column("reason").to_list()
        assert "list.xlsx" in reason and problem in reason
        assert records.is_empty() and rows_in == 1
