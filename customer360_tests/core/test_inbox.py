"""The service inbox as the batch reads it: lines of complete batch files, never the file
the service is still appending to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from customer360.core.inbox import (
    ACCEPTING_FILE,
    InboxError,
    data_columns,
    entity_key,
    inbox_source,
    realtime_assignments,
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
