"""The corroboration guard in real time: a phone shared by records that name different
people links only the records whose first names agree — the service decides exactly as
the next batch run does, checked by running it."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from customer360.service.resolver import Resolver

from .conftest import JANE, JOHN, World, make_world

JOHNS_PHONE = "555-123-4567"  # C001 (John) and T001 (no name) share it in the graph


def guarded_phone(spec: str) -> str:
    return spec.replace(
        "normalizer: phone\n", "normalizer: phone\n    corroborate: first_name\n", 1
    )


@pytest.fixture
def guarded_world(walkthrough_dir: Path, tmp_path: Path) -> World:
    return make_world(walkthrough_dir, tmp_path / "artifacts", guarded_phone)


def resolve(resolver: Resolver, external_id: str, **data: str) -> str:
    return resolver.resolve("web", external_id, data).resolved_id


def batch_membership(world: World) -> dict[str, str]:
    return dict(world.store.read("membership", ["entity_key", "resolved_id"]).iter_rows())


def test_a_conflicting_name_does_not_link_and_the_batch_agrees(guarded_world: World) -> None:
    resolver = guarded_world.resolver()
    mary = resolver.resolve("web", "R1", {"phone": JOHNS_PHONE, "first_name": "Mary"})
    assert (mary.resolved_id, mary.is_new) == ("signups:web:R1", True)  # John ≠ Mary
    answers = {
        "R1": mary.resolved_id,
        # the group now names John and Mary: a nickname of John links to John's record,
        "R2": resolve(resolver, "R2", phone=JOHNS_PHONE, first_name="Johnny"),
        # a record without a name links to nobody through a conflicting group,
        "R3": resolve(resolver, "R3", phone=JOHNS_PHONE),
        # and another Mary joins the first one, accepted a moment ago
        "R4": resolve(resolver, "R4", phone=JOHNS_PHONE, first_name="MARY "),
    }
    resolver.close()
    assert answers == {
        "R1": "signups:web:R1",
        "R2": JOHN,
        "R3": "signups:web:R3",
        "R4": "signups:web:R1",
    }

    guarded_world.run_batch()

    after = batch_membership(guarded_world)
    assert {key: after[f"signups:web:{key}"] for key in answers} == answers
    skipped = guarded_world.store.read("skipped_groups")
    assert skipped.filter(pl.col("identifier_type") == "phone").height == 1  # now guarded


def test_a_group_the_graph_already_guards_links_only_agreeing_records(
    guarded_world: World,
) -> None:
    first = guarded_world.resolver()
    first.resolve("web", "R1", {"phone": JOHNS_PHONE, "first_name": "Mary"})
    first.close()
    guarded_world.run_batch()  # the graph's phone group now spans John and Mary

    resolver = guarded_world.resolver()
    mary = resolver.resolve("web", "R5", {"phone": JOHNS_PHONE, "first_name": "Mary"})
    jon = resolver.resolve("web", "R6", {"phone": JOHNS_PHONE, "first_name": "Jon"})
    nameless = resolver.resolve("web", "R7", {"phone": JOHNS_PHONE})
    lookup = resolver.lookup({"phone": JOHNS_PHONE})
    resolver.close()
    assert (mary.resolved_id, mary.matched_on, mary.matched_entity_key) == (
        "signups:web:R1",
        ["phone"],
        "signups:web:R1",
    )
    assert (jon.resolved_id, jon.matched_entity_key) == (JOHN, JOHN)
    assert nameless.is_new and nameless.matched_on == []
    assert [(m.status, m.resolved_id) for m in lookup] == [("guarded", None)]

    guarded_world.run_batch()

    after = batch_membership(guarded_world)
    assert after["signups:web:R5"] == mary.resolved_id
    assert after["signups:web:R6"] == jon.resolved_id
    assert after["signups:web:R7"] == nameless.resolved_id


def test_agreeing_names_link_through_the_anchor_as_without_the_guard(
    guarded_world: World,
) -> None:
    resolver = guarded_world.resolver()
    john = resolver.resolve("web", "R8", {"phone": "5551234567", "first_name": "john"})
    resolver.close()
    assert (john.resolved_id, john.matched_entity_key, john.confidence) == (JOHN, JOHN, 1.0)


def test_a_guarded_match_and_an_email_of_two_customers_choose_as_the_batch_merges(
    guarded_world: World,
) -> None:
    first = guarded_world.resolver()
    mary = first.resolve("web", "R1", {"phone": JOHNS_PHONE, "first_name": "Mary"}).resolved_id
    first.close()
    guarded_world.run_batch()

    resolver = guarded_world.resolver()
    both = resolver.resolve(
        "web", "R9", {"email": "jane@example.org", "phone": JOHNS_PHONE, "first_name": "Mary"}
    )
    resolver.close()
    # the phone reaches only Mary (not John: another name), the email Jane: the batch
    # will merge Mary into Jane, whose id is older
    assert (both.resolved_id, both.matched_on, both.confidence) == (JANE, ["email"], 0.5)
    assert [(c.resolved_id, c.matched_on) for c in both.conflicts] == [(mary, ["phone"])]

    guarded_world.run_batch()
    after = batch_membership(guarded_world)
    assert after["signups:web:R9"] == after["signups:web:R1"] == JANE
    assert after["crm_customers:C001"] == JOHN  # John stays apart
