"""The service inbox as the batch reads it: lines of complete batch files, never the file
the service is still appending to."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from customer360.core.inbox import (
    ACCEPTING_FILE,
    InboxError,
    data_columns,
    drop_inbox_lines,
    entity_key,
    inbox_source,
    pending_records,
    realtime_assignments,
    unserved_inbox,
)

from .conftest import crm_source, make_spec, spec_dict


def inbox_spec(tmp_path: Path):
    inbox = crm_source(
        name="inbox",
        path="inbox/",
        format="ndjson",
        key="inbox_key",
        updated_at="received_at",
        trust=2,
        attributes={"first_name": "initcap(given_name)"},
    )
    return make_spec(spec_dict(crm_source(), inbox, service={"inbox_source": "inbox"}), tmp_path)


def write_lines(path: Path, *lines: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_data_columns_are_the_columns_the_inbox_mappings_read(tmp_path):
    spec = inbox_spec(tmp_path)
    assert data_columns(inbox_source(spec)) == ["email", "given_name", "phone"]
    assert entity_key(spec, "web", "S/1") == "inbox:web:S/1"


def test_assignments_come_from_complete_batch_files_only(tmp_path):
    spec = inbox_spec(tmp_path)
    folder = tmp_path / "inbox"
    write_lines(
        folder / "accepted-1.ndjson",
        {"inbox_key": "web:1", "assigned_resolved_id": "crm:C1", "email": "a@x.com"},
        {"inbox_key": " web:2 ", "assigned_resolved_id": "inbox:web:2"},
    )
    write_lines(folder / ACCEPTING_FILE, {"inbox_key": "web:3", "assigned_resolved_id": "x"})
    (folder / "accepted-2.ndjson").write_text("{not json\n")  # quarantined by the batch

    assert realtime_assignments(spec).rows() == [
        ("inbox:web:1", "crm:C1"),
        ("inbox:web:2", "inbox:web:2"),  # keys are trimmed like every record key
    ]


def test_no_service_section_means_no_assignments_and_a_clear_error_for_the_inbox(tmp_path):
    spec = make_spec(spec_dict(), tmp_path)
    assert realtime_assignments(spec).is_empty()
    with pytest.raises(InboxError, match="no 'service' section"):
        inbox_source(spec)


def line(key: str, email: str) -> dict:
    return {"inbox_key": key, "assigned_resolved_id": f"inbox:{key}", "email": email}


def test_forgotten_lines_are_cut_from_batch_files_and_emptied_files_removed(tmp_path):
    spec = inbox_spec(tmp_path)
    folder = tmp_path / "inbox"
    write_lines(folder / "accepted-1.ndjson", line("web:1", "a@x.org"), line("web:2", "b@x.org"))
    write_lines(folder / "accepted-2.ndjson", line("web:3", "c@x.org"))
    write_lines(folder / ACCEPTING_FILE, line("web:4", "d@x.org"))
    untouched = (folder / ACCEPTING_FILE).read_bytes()

    keys = pl.Series(["inbox:web:1", "inbox:web:3", "inbox:web:4"])
    assert drop_inbox_lines(spec, keys, include_open_file=False) == 2
    assert (folder / "accepted-1.ndjson").read_text() == json.dumps(line("web:2", "b@x.org")) + "\n"
    assert not (folder / "accepted-2.ndjson").exists()
    assert (folder / ACCEPTING_FILE).read_bytes() == untouched  # a running service owns it
    assert drop_inbox_lines(spec, keys, include_open_file=True) == 1
    assert not (folder / ACCEPTING_FILE).exists()


def test_pending_records_include_the_open_file_up_to_its_reserved_space(tmp_path):
    spec = inbox_spec(tmp_path)
    folder = tmp_path / "inbox"
    write_lines(folder / "accepted-1.ndjson", line("web:1", "a@x.org"), line("web:2", "b@x.org"))
    (folder / ACCEPTING_FILE).write_bytes(
        (json.dumps(line("web:3", "c@x.org")) + "\n").encode() + b'{"inbox_k' + bytes(32)
    )
    pending = pending_records(spec, pl.Series(["inbox:web:1"]))
    assert pending.select("entity_key", "email").rows() == [
        ("inbox:web:2", "b@x.org"),
        ("inbox:web:3", "c@x.org"),  # the half-written line after it is left out
    ]
    assert sorted(p.name for p in folder.iterdir()) == [ACCEPTING_FILE, "accepted-1.ndjson"]


def test_the_open_file_is_left_to_a_service_that_holds_the_inbox(tmp_path):
    spec = inbox_spec(tmp_path)
    (tmp_path / "inbox").mkdir()
    with unserved_inbox(spec) as free:
        assert free
        with unserved_inbox(spec) as free_again:  # as if a service held it
            assert not free_again
