"""The split of over-merged clusters in real time: when a record's identifiers point at
customers the batch's split cut apart, the service passes over those whose birth dates
or first names conflict with the record's — as the next batch run does, checked by
running it."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import World, make_world

HOUSEHOLD_PHONE = "555-246-8100"
OLDER = {"first_name": "Jacob", "date_of_birth": "1980-03-14", "email": "jacob.b@mail.org"}
YOUNGER = {"first_name": "Jacob", "date_of_birth": "1992-07-01", "email": "jake.b@mail.org"}


def split_by_birth_date(spec: str) -> str:
    inbox_attributes = "attributes: {first_name: first_name}\nservice:"
    assert inbox_attributes in spec
    spec = spec.replace(
        inbox_attributes,
        "attributes: {first_name: first_name, date_of_birth: date_of_birth}\nservice:",
    )
    return spec + "splitting:\n  conflicts: {first_name: name, date_of_birth: date}\n"


@pytest.fixture
def split_household(walkthrough_dir: Path, tmp_path: Path) -> World:
    """Two Jacob Browns on one household phone, born twelve years apart: the service
    puts the second with the first (the phone points at nobody else), and the batch's
    split cuts them apart."""
    world = make_world(walkthrough_dir, tmp_path / "artifacts", split_by_birth_date)
    resolver = world.resolver()
    resolver.resolve("web", "R1", {"phone": HOUSEHOLD_PHONE, **OLDER})
    resolver.resolve("web", "R2", {"phone": HOUSEHOLD_PHONE, **YOUNGER})
    resolver.close()
    world.run_batch()
    return world


def batch_ids(world: World, *external_ids: str) -> list[str]:
    membership = dict(world.store.read("membership", ["entity_key", "resolved_id"]).iter_rows())
    return [membership[f"signups:web:{external_id}"] for external_id in external_ids]


def test_the_record_gets_the_split_customer_its_birth_date_agrees_with(
    split_household: World,
) -> None:
    older, younger = batch_ids(split_household, "R1", "R2")
    assert older != younger  # the split cut the household apart

    resolver = split_household.resolver()
    # the phone points at the older Jacob (its group's first record), the email at the
    # younger one; the older id came first, but his birth date is not this record's
    answer = resolver.resolve("web", "R3", {"phone": HOUSEHOLD_PHONE, **YOUNGER})
    resolver.close()
    assert (answer.resolved_id, answer.matched_on) == (younger, ["email"])
    assert [(c.resolved_id, c.matched_on) for c in answer.conflicts] == [(older, ["phone"])]
    assert answer.confidence == 0.5

    split_household.run_batch()

    assert batch_ids(split_household, "R3") == [younger]


def test_a_record_that_agrees_with_both_keeps_the_oldest(split_household: World) -> None:
    older, younger = batch_ids(split_household, "R1", "R2")
    resolver = split_household.resolver()
    answer = resolver.resolve(
        "web", "R4", {"phone": HOUSEHOLD_PHONE, "email": YOUNGER["email"], "first_name": "Jake"}
    )
    resolver.close()
    assert answer.resolved_id == older
    assert [c.resolved_id for c in answer.conflicts] == [younger]


def test_a_record_with_only_a_value_the_split_divided_joins_its_groups_first_record(
    split_household: World,
) -> None:
    """The phone's records now belong to two customers; the batch links a newcomer to
    the group's first record (its anchor), whose customer the service answers."""
    older, younger = batch_ids(split_household, "R1", "R2")
    resolver = split_household.resolver()
    answer = resolver.resolve("web", "R5", {"phone": HOUSEHOLD_PHONE})
    resolver.close()
    assert (answer.resolved_id, answer.matched_entity_key) == (older, "signups:web:R1")
    assert answer.conflicts == []

    split_household.run_batch()

    assert batch_ids(split_household, "R5") == [older]
    assert batch_ids(split_household, "R1", "R2") == [older, younger]
