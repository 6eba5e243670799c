"""Which batches are new, changed or removed, per source and by content."""

from __future__ import annotations

import os
from pathlib import Path

from customer360.core.batches import compare, content_hash, fingerprint_batches

from .conftest import crm_source, make_spec, spec_dict, write_csv


def put(base: Path, name: str, key: str) -> Path:
    path = base / "crm" / name
    write_csv(
        path, ["customer_id", "email", "phone", "first_name", "updated"], [[key, "", "", "", ""]]
    )
    return path


def test_batches_are_named_per_source_and_compared_by_content(tmp_path: Path) -> None:
    spec = make_spec(spec_dict(crm_source(path="crm")), tmp_path)
    first = put(tmp_path, "day1.csv", "C1")
    before = fingerprint_batches(spec, {})
    assert list(before) == ["crm"]
    assert before["crm"]["day1.csv"][2] == content_hash(first)

    put(tmp_path, "day2.csv", "C2")
    first.write_text(first.read_text())  # the same content again
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))
    after = fingerprint_batches(spec, before)
    changes = compare(before, after)
    assert (changes.added, changes.changed, changes.removed) == ([("crm", "day2.csv")], [], [])

    put(tmp_path, "day2.csv", "C3")
    first.unlink()
    changes = compare(after, fingerprint_batches(spec, after))
    assert changes.changed == [("crm", "day2.csv")]
    assert changes.removed == [("crm", "day1.csv")]
    assert changes.describe() == "1 changed, 1 removed"
    assert not compare(after, after)
