"""Readers: every format becomes text columns plus ``_batch`` and ``_row``."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from customer360.core.readers import (
    JSON_SAMPLE_BYTES,
    NDJSON_SAMPLE_LINES,
    SourceReadError,
    list_batches,
    read_batch,
    read_columns,
    read_source,
    source_problems,
)

from .conftest import make_spec, spec_dict, write_csv

# The same two customers in every format. Ids are integers where the format has types,
# so reading them back as "1"/"2" shows the conversion to text; the phone keeps its
# leading zero because it is text in the source.
FRAME = pl.DataFrame(
    {
        "customer_id": [1, 2],
        "email": ["ann@example.com", None],
        "phone": ["0207946095", "2125550102"],
    }
)
EXPECTED_ROWS = [
    ("1", "ann@example.com", "0207946095"),
    ("2", None, "2125550102"),
]


def _write_csv_like(path: Path, separator: str) -> None:
    write_csv(
        path,
        ["customer_id", "email", "phone"],
        [["1", "ann@example.com", "0207946095"], ["2", "", "2125550102"]],
        separator=separator,
    )


def _write_duckdb(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        con.register("frame", FRAME.to_arrow())
        con.execute("CREATE TABLE customers AS SELECT * FROM frame")


WRITERS = {
    "csv": ("crm.csv", lambda p: _write_csv_like(p, ",")),
    "tsv": ("crm.tsv", lambda p: _write_csv_like(p, "\t")),
    "ndjson": ("crm.ndjson", FRAME.write_ndjson),
    "json": ("crm.json", FRAME.write_json),
    "parquet": ("crm.parquet", FRAME.write_parquet),
    "xlsx": ("crm.xlsx", FRAME.write_excel),
    "duckdb": ("crm.duckdb", _write_duckdb),
}


def one_source_spec(tmp_path: Path, **source):
    entry = {
        "name": "crm",
        "path": "crm.csv",
        "format": "csv",
        "key": "customer_id",
        "trust": 1,
        "identifiers": {"email": "email"},
        **source,
    }
    return make_spec(spec_dict(entry), tmp_path)


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_every_format_reads_back_as_text_with_provenance(tmp_path, fmt):
    file_name, write = WRITERS[fmt]
    write(tmp_path / file_name)
    extra = {"table": "customers"} if fmt == "duckdb" else {}
    spec = one_source_spec(tmp_path, path=file_name, format=fmt, **extra)

    frame = read_source(spec, spec.sources[0])

    assert frame.columns == ["customer_id", "email", "phone", "_batch", "_row"]
    assert frame.schema["_row"] == pl.Int64
    assert all(frame.schema[c] == pl.String for c in ["customer_id", "email", "phone", "_batch"])
    assert frame.select("customer_id", "email", "phone").rows() == EXPECTED_ROWS
    assert frame.get_column("_batch").to_list() == [file_name, file_name]
    assert frame.get_column("_row").to_list() == [1, 2]
    assert source_problems(spec, spec.sources[0]) == []


def test_numbers_and_nested_values_become_text(tmp_path):
    records = [
        {"id": 7, "score": 1.5, "vip": True, "tags": ["a", "b"], "address": {"city": "Oslo"}},
    ]
    (tmp_path / "web.json").write_text(json.dumps(records))
    spec = one_source_spec(tmp_path, path="web.json", format="json", key="id")
    frame = read_source(spec, spec.sources[0])
    row = frame.drop("_batch", "_row").row(0, named=True)
    assert row["id"] == "7"
    assert row["score"] == "1.5"
    assert row["vip"] == "true"
    assert row["tags"] == "a, b"
    assert json.loads(row["address"]) == {"city": "Oslo"}


def test_missing_nested_object_reads_as_null(tmp_path):
    # A record without the object is missing that value, exactly as a missing scalar or
    # a missing list is: it must be null, not the text "null".
    records = [
        {"id": 1, "email": "a@x.com", "tags": ["a"], "address": {"city": "Oslo"}},
        {"id": 2},
    ]
    (tmp_path / "web.json").write_text(json.dumps(records))
    spec = one_source_spec(tmp_path, path="web.json", format="json", key="id")
    frame = read_source(spec, spec.sources[0])
    second = frame.row(1, named=True)
    assert second["email"] is None
    assert second["tags"] is None
    assert second["address"] is None


def test_aliases_rename_columns_after_trimming_header_spaces(tmp_path):
    (tmp_path / "crm.csv").write_text(" Cust ID , E-Mail \nC1,ann@example.com\n")
    spec = one_source_spec(
        tmp_path, key="customer_id", aliases={"Cust ID": "customer_id", "E-Mail": "email"}
    )
    source = spec.sources[0]
    frame = read_source(spec, source)
    assert frame.columns == ["customer_id", "email", "_batch", "_row"]
    assert frame.row(0) == ("C1", "ann@example.com", "crm.csv", 1)
    assert read_columns(spec, source, tmp_path / "crm.csv") == ["customer_id", "email"]
    assert source_problems(spec, source) == []


def test_folder_reads_every_matching_batch_in_name_order(tmp_path):
    folder = tmp_path / "crm"
    header = ["customer_id", "email"]
    write_csv(folder / "2024-02.csv", header + ["city"], [["C3", "c@x.com", "Oslo"]])
    write_csv(folder / "2024-01.csv", header, [["C1", "a@x.com"], ["C2", "b@x.com"]])
    write_csv(folder / "2024-03.txt", header, [["C4", "d@x.com"]])  # .txt is a csv extension
    write_csv(folder / ".2024-00.csv", header, [["H", "hidden@x.com"]])  # hidden: skipped
    write_csv(folder / "notes.md", header, [["N", "notes@x.com"]])  # not csv: skipped
    spec = one_source_spec(tmp_path, path="crm")
    source = spec.sources[0]

    assert [p.name for p in list_batches(spec, source)] == [
        "2024-01.csv",
        "2024-02.csv",
        "2024-03.txt",
    ]
    frame = read_source(spec, source)
    assert frame.select("customer_id", "_batch", "_row").rows() == [
        ("C1", "2024-01.csv", 1),
        ("C2", "2024-01.csv", 2),
        ("C3", "2024-02.csv", 1),
        ("C4", "2024-03.txt", 1),
    ]
    # A column only one batch has is null in the others.
    assert frame.get_column("city").to_list() == [None, None, "Oslo", None]


@pytest.mark.parametrize("name", ["2024...02.csv", "2024\t02.csv"])
def test_a_batch_whose_name_cannot_be_a_partition_key_is_rejected_naming_the_fix(tmp_path, name):
    folder = tmp_path / "crm"
    header = ["customer_id", "email"]
    write_csv(folder / "2024-01.csv", header, [["C1", "a@x.com"]])
    write_csv(folder / name, header, [["C2", "b@x.com"]])
    spec = one_source_spec(tmp_path, path="crm")

    frame = read_source(spec, spec.sources[0])
    assert frame.get_column("customer_id").drop_nulls().to_list() == ["C1"]
    (reason,) = frame.get_column("_reject_reason").drop_nulls().to_list()
    assert reason.startswith("batch rejected: source 'crm'")
    assert str(folder / name) in reason and reason.endswith("rename the file")


def test_a_single_file_source_whose_name_cannot_be_a_partition_key_is_rejected(tmp_path):
    write_csv(tmp_path / "crm...csv", ["customer_id", "email"], [["C1", "a@x.com"]])
    spec = one_source_spec(tmp_path, path="crm...csv")

    (reason,) = read_source(spec, spec.sources[0]).get_column("_reject_reason").to_list()
    assert "'crm...csv' contains '...'" in reason


def test_latin1_encoded_csv(tmp_path):
    (tmp_path / "crm.csv").write_bytes("customer_id,email,city\nC1,m@x.se,Malmö\n".encode("latin1"))
    spec = one_source_spec(tmp_path, encoding="latin1", attributes={"city": "city"})
    assert read_source(spec, spec.sources[0]).get_column("city").to_list() == ["Malmö"]


def test_source_problems_missing_key_and_updated_at_columns(tmp_path):
    write_csv(tmp_path / "crm.csv", ["id", "email", "changed"], [["C1", "a@x.com", "2024"]])
    spec = one_source_spec(tmp_path, updated_at="modified_at")
    problems = source_problems(spec, spec.sources[0])
    assert problems == [
        "sources[0] (crm).key: column 'customer_id' not in crm.csv; "
        "use one of: id, email, changed (or add an alias)",
        "sources[0] (crm).updated_at: column 'modified_at' not in crm.csv; "
        "use one of: id, email, changed (or add an alias)",
    ]


@pytest.mark.parametrize(
    "path", ["crm", "crm/", "inbox/"], ids=["empty folder", "empty folder/", "declared folder"]
)
def test_a_folder_without_batches_yet_is_valid_and_reads_no_rows(tmp_path, path):
    (tmp_path / "crm").mkdir()
    spec = one_source_spec(tmp_path, path=path, format="ndjson", updated_at="changed")
    source = spec.sources[0]
    assert source_problems(spec, source) == []
    assert list_batches(spec, source) == []
    assert read_source(spec, source).height == 0


def test_a_missing_path_without_a_trailing_slash_is_a_problem(tmp_path):
    spec = one_source_spec(tmp_path, path="crm")
    (problem,) = source_problems(spec, spec.sources[0])
    assert f"no csv file at {tmp_path / 'crm'}" in problem


def test_unreadable_file_raises_naming_the_file(tmp_path):
    bad = tmp_path / "crm.parquet"
    bad.write_text("customer_id,email\nC1,a@x.com\n")  # a csv pretending to be parquet
    spec = one_source_spec(tmp_path, path="crm.parquet", format="parquet")
    with pytest.raises(SourceReadError) as caught:
        read_batch(spec, spec.sources[0], bad)
    message = str(caught.value)
    assert str(bad) in message
    assert "source 'crm'" in message
    assert "as parquet" in message
    # Reading the source goes on: the file becomes one rejected row that names it.
    (reason,) = read_source(spec, spec.sources[0]).get_column("_reject_reason").to_list()
    assert reason.startswith("file could not be read:") and str(bad) in reason
    # The spec check reports the same file instead of raising.
    (problem,) = source_problems(spec, spec.sources[0])
    assert f"cannot read {bad} as parquet" in problem


def test_missing_source_path_raises(tmp_path):
    spec = one_source_spec(tmp_path, path="gone.csv")
    with pytest.raises(SourceReadError, match="no csv files at .*gone.csv"):
        read_source(spec, spec.sources[0])


def test_ndjson_column_only_in_late_lines_is_found_in_the_whole_file(tmp_path):
    lines = [{"customer_id": str(i)} for i in range(NDJSON_SAMPLE_LINES)]
    lines.append({"customer_id": "late", "email": "late@example.com"})
    (tmp_path / "crm.ndjson").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    spec = one_source_spec(tmp_path, path="crm.ndjson", format="ndjson")
    source = spec.sources[0]
    # the first lines alone do not show the email column; the spec check still finds it
    assert read_columns(spec, source, tmp_path / "crm.ndjson", whole_file=False) == ["customer_id"]
    assert source_problems(spec, source) == []
    spec = one_source_spec(
        tmp_path, path="crm.ndjson", format="ndjson", identifiers={"email": "mail"}
    )
    (problem,) = source_problems(spec, spec.sources[0])
    assert "unknown column 'mail'" in problem and "use one of: customer_id, email" in problem


def test_json_column_only_in_late_objects_is_found_in_the_whole_file(tmp_path):
    objects = [{"customer_id": str(i)} for i in range(NDJSON_SAMPLE_LINES)]
    objects.append({"customer_id": "late", "email": "late@example.com"})
    (tmp_path / "crm.json").write_text(json.dumps(objects, indent=1))
    spec = one_source_spec(tmp_path, path="crm.json", format="json")
    source = spec.sources[0]
    # the first objects alone do not show the email column; the spec check still finds it
    assert read_columns(spec, source, tmp_path / "crm.json", whole_file=False) == ["customer_id"]
    assert read_columns(spec, source, tmp_path / "crm.json") == ["customer_id", "email"]
    assert source_problems(spec, source) == []
    spec = one_source_spec(tmp_path, path="crm.json", format="json", identifiers={"email": "mail"})
    (problem,) = source_problems(spec, spec.sources[0])
    assert "unknown column 'mail'" in problem and "use one of: customer_id, email" in problem


def test_json_sample_stops_at_the_object_its_bytes_cut_off(tmp_path):
    padding = "x" * (JSON_SAMPLE_BYTES // 2)
    objects = [{"customer_id": "1", "note": padding}, {"customer_id": "2", "email": padding}]
    (tmp_path / "crm.json").write_text("\ufeff" + json.dumps(objects))
    spec = one_source_spec(tmp_path, path="crm.json", format="json")
    source = spec.sources[0]
    sampled = read_columns(spec, source, tmp_path / "crm.json", whole_file=False)
    assert sampled == ["customer_id", "note"]
    assert source_problems(spec, source) == []


def test_json_that_is_not_an_array_of_objects_has_its_columns_read_whole(tmp_path):
    columns = {"customer_id": ["1", "2"], "email": ["a", None]}
    (tmp_path / "crm.json").write_text(json.dumps(columns))
    spec = one_source_spec(tmp_path, path="crm.json", format="json")
    source = spec.sources[0]
    whole = read_columns(spec, source, tmp_path / "crm.json")
    assert read_columns(spec, source, tmp_path / "crm.json", whole_file=False) == whole
    assert whole == ["customer_id", "email"]
