"""Helpers shared by the core tests: small specs, source files and hand-made frames."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from customer360.core.spec import Spec

SPEC_FILE = "customer360.yaml"

LOYALTY_EXPRESSION = "regexp_replace(upper(value), '[^A-Z0-9]', '', 'g')"
# Every normalizer of the spec, and the phone variants that take different code paths
# (US/possible: vectorised NANP fast path; US/valid and GB: phonenumbers for every value).
NORMALIZERS: dict[str, dict[str, Any]] = {
    "email": {"normalizer": "email"},
    "phone": {"normalizer": "phone"},
    "phone_valid": {"normalizer": "phone", "phone_validation": "valid"},
    "phone_gb": {"normalizer": "phone", "region": "GB"},
    "upper": {"normalizer": "upper"},
    "lower": {"normalizer": "lower"},
    "trim": {"normalizer": "trim"},
    "digits": {"normalizer": "digits"},
    "expression": {"normalizer": "expression", "expression": LOYALTY_EXPRESSION},
}


# A small CRM extract: header plus three people. Written as text so the test controls
# every character (leading zeros, spaces, placeholders).
CRM_HEADER = ["customer_id", "email", "phone", "first_name", "updated"]
CRM_ROWS = [
    ["C1", "ann@example.com", "212-555-0101", "Ann", "2024-01-01"],
    ["C2", "bob@example.com", "212-555-0102", "Bob", "2024-01-02"],
    ["C3", "cat@example.com", "212-555-0103", "Cat", "2024-01-03"],
]


def crm_source(**overrides: Any) -> dict[str, Any]:
    """The spec entry of the CRM extract above; keyword arguments replace its keys."""
    source: dict[str, Any] = {
        "name": "crm",
        "path": "crm.csv",
        "format": "csv",
        "key": "customer_id",
        "updated_at": "updated",
        "trust": 1,
        "identifiers": {"email": "email", "phone": "phone"},
        "attributes": {"first_name": "first_name"},
    }
    source.update(overrides)
    return source


def spec_dict(*sources: dict[str, Any], **top_level: Any) -> dict[str, Any]:
    """A raw spec with email and phone identifier types and the given sources."""
    raw: dict[str, Any] = {
        "identifier_types": {
            "email": {"normalizer": "email"},
            "phone": {"normalizer": "phone"},
        },
        "sources": list(sources) or [crm_source()],
    }
    raw.update(top_level)
    return raw


def write_csv(path: Path, header: list[str], rows: list[list[str]], separator: str = ",") -> Path:
    """Write a delimited text file by hand (no quoting: test values contain no separator)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [separator.join(header), *(separator.join(row) for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_spec(directory: Path, raw: dict[str, Any] | str) -> Path:
    """Write a spec (a dict dumped as YAML, or YAML text as is) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    text = raw if isinstance(raw, str) else yaml.safe_dump(raw, sort_keys=False)
    path = directory / SPEC_FILE
    path.write_text(text, encoding="utf-8")
    return path


def make_spec(raw: dict[str, Any], base_dir: Path | None = None) -> Spec:
    """A validated spec without touching the disk (no file or column checks)."""
    return Spec.model_validate({**raw, "base_dir": base_dir or Path(".")})


@pytest.fixture
def crm_dir(tmp_path: Path) -> Path:
    """A folder holding the CRM extract and a spec reading it."""
    write_csv(tmp_path / "crm.csv", CRM_HEADER, CRM_ROWS)
    write_spec(tmp_path, spec_dict())
    return tmp_path


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def records_frame(rows: list[dict[str, Any]], columns: list[str] | None = None) -> pl.DataFrame:
    """A ``records`` frame in the given row order, as build_records would produce.

    Each row needs ``entity_key``; ``source`` and ``record_key`` default to its two
    halves, ``trust`` to 1 and ``updated_at`` to null. ``columns`` lists the identifier
    and attribute columns (missing values are null).
    """
    columns = columns or sorted({k for row in rows for k in row} - set(_PROVENANCE_DEFAULTS))
    data: dict[str, list[Any]] = {name: [] for name in [*_PROVENANCE_DEFAULTS, *columns]}
    for row in rows:
        source, _, key = row["entity_key"].partition(":")
        defaults = {**_PROVENANCE_DEFAULTS, "source": source, "record_key": key}
        for name in data:
            value = row.get(name, defaults.get(name))
            data[name].append(ts(value) if name == "updated_at" and value else value)
    schema: dict[str, pl.DataType] = {
        "entity_key": pl.String(),
        "source": pl.String(),
        "record_key": pl.String(),
        "batch": pl.String(),
        "row_number": pl.Int64(),
        "updated_at": pl.Datetime("us"),
        "trust": pl.Int32(),
        **{name: pl.String() for name in columns},
    }
    return pl.DataFrame(data, schema=schema)


_PROVENANCE_DEFAULTS: dict[str, Any] = {
    "entity_key": None,
    "source": None,
    "record_key": None,
    "batch": "batch.csv",
    "row_number": 1,
    "updated_at": None,
    "trust": 1,
}
