"""What the profile steps keep: the inputs survivorship compares with the next run, and
the chain from survivorship to golden profiles — the customers a survivorship touched
are trusted only by golden profiles built from the winners it started from."""

from __future__ import annotations

import polars as pl
import pytest

from customer360.core import profile_changes
from customer360.core.incremental_records import BASIS_STATE as RECORDS_BASIS_STATE
from customer360.core.profile_changes import (
    changed_since,
    forget_changes,
    forget_golden_basis,
    forget_inputs,
    golden_built_from,
    keep_changes,
    keep_golden_basis,
    keep_inputs,
    kept_inputs,
    last_generation,
)
from customer360.core.storage import ArtifactStore

from .conftest import make_spec, spec_dict

TOUCHED = pl.Series(["c:1", "c:9"])


@pytest.fixture
def store(tmp_path) -> ArtifactStore:
    store = ArtifactStore(tmp_path)
    store.write("golden_profiles", pl.DataFrame({"resolved_id": ["c:1"]}))
    return store


def built_on_a_first_survivorship(store: ArtifactStore) -> str | None:
    keep_changes(store, None, None)  # resolved everything
    keep_golden_basis(store, last_generation(store))
    return golden_built_from(store)


def test_the_next_survivorship_hands_its_touched_customers_to_profiles_built_before_it(store):
    built_from = built_on_a_first_survivorship(store)
    assert built_from is not None
    keep_changes(store, last_generation(store), TOUCHED)
    assert changed_since(store, built_from).to_list() == TOUCHED.to_list()


def test_a_survivorship_that_resolved_everything_changes_everything(store):
    built_from = built_on_a_first_survivorship(store)
    keep_changes(store, last_generation(store), None)
    assert changed_since(store, built_from) is None


def test_profiles_that_missed_a_survivorship_are_built_again(store):
    built_from = built_on_a_first_survivorship(store)
    keep_changes(store, last_generation(store), TOUCHED)  # the profiles were not built
    keep_changes(store, last_generation(store), pl.Series(["c:2"]))
    assert changed_since(store, built_from) is None


def test_winners_being_replaced_or_profiles_being_replaced_break_the_chain(store):
    built_from = built_on_a_first_survivorship(store)
    previous = last_generation(store)
    forget_changes(store)  # a survivorship stopped before its winners were written
    assert last_generation(store) is None
    assert changed_since(store, built_from) is None
    keep_changes(store, previous, TOUCHED)
    forget_golden_basis(store)  # the profiles stopped before they were written
    assert golden_built_from(store) is None
    assert changed_since(store, golden_built_from(store)) is None


def test_profiles_built_by_other_code_or_gone_are_not_built_upon(store, monkeypatch):
    built_on_a_first_survivorship(store)
    monkeypatch.setattr(profile_changes, "_GOLDEN_CODE", "other")
    assert golden_built_from(store) is None
    monkeypatch.undo()
    store.path("golden_profiles").unlink()
    assert golden_built_from(store) is None


SPEC = make_spec(spec_dict())


def records_basis(*batches: str, fingerprint: str = "f") -> dict:
    content = {name: [1, 1, f"hash of {name}"] for name in batches}
    return {"fingerprint": fingerprint, "sources": {"crm": {"batches": content, "columns": []}}}


def resolved_over(store: ArtifactStore, basis: dict) -> None:
    """A survivorship's inputs kept over this membership and records basis."""
    store.write("membership", pl.DataFrame({"entity_key": ["crm:1"], "resolved_id": ["crm:1"]}))
    store.write_json_state(RECORDS_BASIS_STATE, basis)
    keep_inputs(store, SPEC)


def test_inputs_kept_name_the_membership_and_the_batches_unchanged_since(store):
    resolved_over(store, records_basis("day1.csv"))
    store.write_json_state(RECORDS_BASIS_STATE, records_basis("day1.csv", "day2.csv"))
    kept = kept_inputs(store, SPEC)
    assert kept.batches == {"crm": ["day1.csv"]}
    assert kept.membership.rows() == [("crm:1", "crm:1")]


def test_inputs_are_not_trusted_under_other_records_another_spec_or_once_dropped(store):
    resolved_over(store, records_basis("day1.csv"))
    store.write_json_state(RECORDS_BASIS_STATE, records_basis("day1.csv", fingerprint="g"))
    assert kept_inputs(store, SPEC) is None  # records made under another fingerprint
    store.write_json_state(RECORDS_BASIS_STATE, records_basis("day1.csv"))
    other = make_spec(spec_dict(survivorship={"default": "most_recent"}))
    assert kept_inputs(store, other) is None
    assert kept_inputs(store, SPEC) is not None
    forget_inputs(store)
    assert kept_inputs(store, SPEC) is None


def test_without_a_records_basis_no_inputs_are_kept(store):
    resolved_over(store, records_basis("day1.csv"))
    forget_inputs(store)
    store.drop_json_state(RECORDS_BASIS_STATE)  # the records stage stopped half-way
    keep_inputs(store, SPEC)
    store.write_json_state(RECORDS_BASIS_STATE, records_basis("day1.csv"))
    assert kept_inputs(store, SPEC) is None
