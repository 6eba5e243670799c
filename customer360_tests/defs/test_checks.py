"""Checks on hand-written tables: each one fails when its guarantee is broken."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from customer360.core.spec import load_spec
from customer360.core.storage import ArtifactStore
from customer360.defs.checks import build_checks

WALKTHROUGH = Path(__file__).parents[1] / "fixtures" / "walkthrough" / "customer360.yaml"
RECORDS = pl.DataFrame({"entity_key": ["crm:1", "crm:2", "shop:3"]})


def every_record_resolved(store: ArtifactStore) -> dg.AssetCheckResult:
    (check,) = [
        c
        for c in build_checks(load_spec(WALKTHROUGH, check_files=False), store)
        if c.check_specs and next(iter(c.check_specs)).name == "every_record_resolved"
    ]
    return check()


def test_every_record_resolved_passes_whatever_the_row_order(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("records", RECORDS)
    members = RECORDS.with_columns(resolved_id=pl.lit("crm:1"))
    for membership in (members, members.reverse()):
        store.write("membership", membership)
        result = every_record_resolved(store)
        assert result.passed, result.metadata


def test_every_record_resolved_fails_on_a_missing_or_unknown_record(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("records", RECORDS)
    members = pl.DataFrame(
        {"entity_key": ["crm:1", "crm:2", "web:9"], "resolved_id": ["crm:1", "crm:1", None]}
    )
    store.write("membership", members)
    result = every_record_resolved(store)
    assert not result.passed
    figures = {name: value.value for name, value in result.metadata.items()}
    assert figures == {
        "records_without_resolved_id": 1,
        "members_not_in_records": 1,
        "null_resolved_ids": 1,
    }
