"""Workbook headers read from the file: some of the reader's names, never others."""

from __future__ import annotations

from pathlib import Path

import fastexcel
import polars as pl
import pytest
import xlsxwriter

from customer360.core.readers import source_problems
from customer360.core.workbook_header import header_names

from .conftest import make_spec, spec_dict


def _reader_names(path: Path, sheet: str | int = 0) -> list[str]:
    loaded = fastexcel.read_excel(path).load_sheet(sheet, n_rows=0)
    return [column.name for column in loaded.available_columns()]


def _write(path: Path, rows: list[list[object]], first_row: int = 0, **options) -> Path:
    with xlsxwriter.Workbook(path, options) as workbook:
        workbook.add_worksheet("notes").write(0, 0, "not this sheet")
        sheet = workbook.add_worksheet("contacts")
        bold = workbook.add_format({"bold": True})
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if isinstance(value, tuple):
                    sheet.write_rich_string(first_row + r, c, bold, *value)
                elif value is not None:
                    sheet.write(first_row + r, c, value)
    return path


def test_a_frames_header_is_named_as_the_reader_names_it(tmp_path):
    path = tmp_path / "contacts.xlsx"
    frame = pl.DataFrame({"Contact ID": ["M1", "M2"], "Email Address": ["a@x.com", None]})
    with xlsxwriter.Workbook(path) as workbook:
        pl.DataFrame({"other": [1]}).write_excel(workbook, worksheet="first")
        frame.write_excel(workbook, worksheet="contacts")
    assert header_names(path, "contacts") == _reader_names(path, "contacts")
    assert header_names(path, None) == ["other"] == _reader_names(path)


@pytest.mark.parametrize("constant_memory", [False, True])  # shared or inline strings
def test_only_text_cells_are_named_and_each_is_one_the_reader_names(tmp_path, constant_memory):
    header = ["id", 2024, None, "id", ("Ema", "il"), "  spaced  "]
    path = _write(
        tmp_path / "odd.xlsx",
        [header, ["1", 5, "x", "y", "a@x.com", "z"]],
        constant_memory=constant_memory,
    )
    names = header_names(path, "contacts")
    assert names == ["id", "id", "Email", "  spaced  "]
    assert set(names) <= set(_reader_names(path, "contacts"))


def test_a_header_below_the_first_row_is_left_to_the_reader(tmp_path):
    path = _write(tmp_path / "low.xlsx", [["customer_id", "email"], ["1", "a@x.com"]], 2)
    assert header_names(path, "contacts") is None
    entry = {
        "name": "crm",
        "path": "low.xlsx",
        "format": "xlsx",
        "sheet": "contacts",
        "key": "customer_id",
        "trust": 1,
        "identifiers": {"email": "email"},
    }
    spec = make_spec(spec_dict(entry), tmp_path)
    # the reader, asked when the header seems to lack them, finds the columns
    assert source_problems(spec, spec.sources[0]) == []


def test_a_missing_sheet_or_a_file_that_is_no_workbook_gives_none(tmp_path):
    path = _write(tmp_path / "book.xlsx", [["id"]])
    assert header_names(path, "absent") is None
    (tmp_path / "fake.xlsx").write_text("id,email\n")
    assert header_names(tmp_path / "fake.xlsx", None) is None
