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


def test_a_record_that_agrees_with_both_goes_with_the_one_it_links_to_more_strongly(
    split_household: World,
) -> None:
    """The record merges the two Jacobs again, and the split parts them again at the
    cheapest cut: the email only it and the younger share links more strongly than the
    phone the three of them share, so the record stays with the younger, though the
    older id came first."""
    older, younger = batch_ids(split_household, "R1", "R2")
    resolver = split_household.resolver()
    answer = resolver.resolve(
        "web", "R4", {"phone": HOUSEHOLD_PHONE, "email": YOUNGER["email"], "first_name": "Jake"}
    )
    resolver.close()
    assert (answer.resolved_id, answer.matched_on) == (younger, ["email"])
    assert [(c.resolved_id, c.matched_on) for c in answer.conflicts] == [(older, ["phone"])]

    split_household.run_batch()

    assert batch_ids(split_household, "R1", "R2", "R4") == [older, younger, younger]


def test_a_record_that_agrees_with_customers_that_stay_merged_keeps_the_oldest(
    split_household: World,
) -> None:
    """Two customers whose records do not conflict are one after the record links them,
    and the merge keeps the oldest id, however the links weigh."""
    older, _ = batch_ids(split_household, "R1", "R2")
    resolver = split_household.resolver()
    other = resolver.resolve("web", "R6", {"email": "jay.b@mail.org", "first_name": "Jacob"})
    answer = resolver.resolve(
        "web", "R7", {"phone": HOUSEHOLD_PHONE, "email": "jay.b@mail.org", "first_name": "Jacob"}
    )
    resolver.close()
    assert other.is_new
    assert (answer.resolved_id, answer.matched_on) == (older, ["phone"])
    assert [(c.resolved_id, c.matched_on) for c in answer.conflicts] == [
        (other.resolved_id, ["email"])
    ]

    split_household.run_batch()

    assert batch_ids(split_household, "R6", "R7") == [older, older]


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


TERRY_PHONE = "555-314-1590"


def guarded_phone_split_by_first_name(spec: str) -> str:
    guarded = spec.replace(
        "normalizer: phone\n", "normalizer: phone\n    corroborate: first_name\n", 1
    )
    assert guarded != spec
    return guarded + "splitting:\n  conflicts: {first_name: name}\n"


def test_a_record_the_guard_links_to_two_split_customers_goes_with_the_more_records(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    """Theresa (older) and Terence (two records) share a household phone that the guard
    keeps apart; Terry, a nickname of both, links to all three records. The next run
    merges them through Terry and cuts Theresa away again, the one link cheaper to cut
    than two: Terry is Terence's, though Theresa's id is older."""
    world = make_world(walkthrough_dir, tmp_path / "artifacts", guarded_phone_split_by_first_name)
    resolver = world.resolver()
    theresa = resolver.resolve("web", "T1", {"phone": TERRY_PHONE, "first_name": "Theresa"})
    resolver.close()
    world.run_batch()
    resolver = world.resolver()
    terence = resolver.resolve("web", "T2", {"phone": TERRY_PHONE, "first_name": "Terence"})
    again = resolver.resolve("web", "T3", {"phone": TERRY_PHONE, "first_name": "Terence"})
    resolver.close()
    world.run_batch()
    assert batch_ids(world, "T1", "T2", "T3") == [
        theresa.resolved_id,
        terence.resolved_id,
        terence.resolved_id,
    ]
    assert again.resolved_id == terence.resolved_id != theresa.resolved_id

    resolver = world.resolver()
    terry = resolver.resolve("web", "T4", {"phone": TERRY_PHONE, "first_name": "Terry"})
    resolver.close()
    assert (terry.resolved_id, terry.matched_on) == (terence.resolved_id, ["phone"])
    assert [(c.resolved_id, c.matched_on) for c in terry.conflicts] == [
        (theresa.resolved_id, ["phone"])
    ]

    world.run_batch()

    assert batch_ids(world, "T1", "T2", "T3", "T4") == [
        theresa.resolved_id,
        terence.resolved_id,
        terence.resolved_id,
        terence.resolved_id,
    ]
