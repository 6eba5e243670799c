"""The resolver's rules, without HTTP: matching, new ids, idempotency across restarts,
the group-size guard, records accepted since the graph was built, and reloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from customer360.service.resolver import NotReadyError, ReplayConflictError, Resolver

from .conftest import BOB, JANE, JOHN, World, make_world


def inbox_lines(world: World) -> list[dict]:
    """Lines of the batch files and of the open hidden file (up to its reserved space)."""
    files = sorted(world.inbox.glob("*.ndjson"))
    contents = [path.read_bytes().split(b"\0", 1)[0] for path in files]
    return [json.loads(line) for content in contents for line in content.splitlines()]


def with_email_group_limit(spec: str, limit: int) -> str:
    return spec.replace("normalizer: email\n", f"normalizer: email\n    max_group_size: {limit}\n")


def test_a_record_sharing_a_normalized_email_gets_that_customers_id(resolver: Resolver) -> None:
    result = resolver.resolve("web", "S1", {"email": "  John@ACME.com ", "first_name": "Johnny"})
    assert (result.resolved_id, result.is_new) == (JOHN, False)
    assert result.matched_on == ["email"]
    assert result.matched_entity_key == JOHN  # the first record of the group
    assert result.confidence == 1.0 and result.conflicts == []
    assert result.profile is not None and result.profile["email_primary"] == "john@acme.com"


def test_a_record_matching_nobody_gets_its_entity_key_as_id(resolver: Resolver) -> None:
    result = resolver.resolve("web", "S2", {"email": "zoe@new.org", "phone": "(212) 555-0100"})
    assert (result.resolved_id, result.is_new) == ("signups:web:S2", True)
    assert result.matched_on == [] and result.matched_entity_key is None
    assert result.profile == {
        "resolved_id": "signups:web:S2",
        "email_primary": "zoe@new.org",
        "phone_primary": "+12125550100",
        "record_count": 1,
        "source_systems": ["signups"],
        "provisional": True,
    }


def test_excluded_invalid_and_placeholder_values_match_nothing(resolver: Resolver) -> None:
    # noreply@ is excluded, 0000000000 is the spec's placeholder phone, "n/a" a
    # missing-value token: all exactly as the batch treats them
    for number, data in enumerate(
        [{"email": "noreply@acme.com"}, {"phone": "000-000-0000"}, {"email": "n/a"}]
    ):
        assert resolver.resolve("web", f"X{number}", data).is_new


def test_the_same_record_again_is_a_replay_even_after_a_restart(world: World) -> None:
    first = world.resolver()
    created = first.resolve("web", "S3", {"email": "zoe@new.org"})
    again = first.resolve("web", "S3", {"email": "zoe@new.org"})
    first.close()

    restarted = world.resolver()
    after_restart = restarted.resolve("web", "S3", {"email": "zoe@new.org"})
    restarted.close()

    assert created.is_new and not again.is_new and not after_restart.is_new
    assert created.resolved_id == again.resolved_id == after_restart.resolved_id
    assert again.matched_on == after_restart.matched_on == ["source_record"]
    assert [line["inbox_key"] for line in inbox_lines(world)] == ["web:S3"]  # written once


def test_a_replay_with_different_data_is_refused_and_writes_nothing(resolver: Resolver) -> None:
    resolver.resolve("web", "S4", {"email": "zoe@new.org"})
    with pytest.raises(ReplayConflictError, match="accepted before with different data"):
        resolver.resolve("web", "S4", {"email": "other@new.org"})
    assert resolver.status()["accepted_records"] == 1


def test_the_same_external_id_from_another_source_is_another_record(resolver: Resolver) -> None:
    web = resolver.resolve("web", "7", {"email": "zoe@new.org"})
    app = resolver.resolve("mobile_app", "7", {"email": "zoe@new.org"})
    assert web.is_new and not app.is_new
    assert app.resolved_id == web.resolved_id and app.matched_on == ["email"]


def test_a_record_accepted_since_the_graph_was_built_is_found_by_the_next(
    resolver: Resolver,
) -> None:
    first = resolver.resolve("web", "S5", {"email": "zoe@new.org", "phone": "2125550100"})
    second = resolver.resolve("web", "S6", {"phone": "+1 212 555 0100"})
    assert second.resolved_id == first.resolved_id
    assert (second.is_new, second.matched_on, second.matched_entity_key) == (
        False,
        ["phone"],
        "signups:web:S5",
    )
    assert second.profile is not None and second.profile["record_count"] == 2


def test_identifiers_of_two_customers_choose_the_oldest_and_report_the_other(
    resolver: Resolver,
) -> None:
    # jane's email and john's phone: the batch will merge them and keep the oldest id
    result = resolver.resolve("web", "S7", {"email": "jane@example.org", "phone": "5551234567"})
    assert result.resolved_id == JOHN  # issued first (the registry's order)
    assert result.matched_on == ["phone"]
    assert [(c.resolved_id, c.matched_on) for c in result.conflicts] == [(JANE, ["email"])]
    assert result.confidence == 0.5


def test_a_new_id_never_reuses_one_issued_before(world: World) -> None:
    resolver = world.resolver()
    first = resolver.resolve("web", "S8", {"email": "zoe@new.org"})
    resolver.close()  # the inbox file becomes a batch
    world.run_batch()  # the id is issued by the batch too
    for batch in world.inbox.glob("*.ndjson"):
        batch.unlink()  # the record is withdrawn: the next run removes it, the id retires
    world.run_batch()

    resolver = world.resolver()
    again = resolver.resolve("web", "S8", {"email": "someone@else.org"})
    resolver.close()
    assert first.resolved_id == "signups:web:S8"
    assert (again.resolved_id, again.is_new) == ("signups:web:S8#2", True)


def test_every_accepted_record_is_a_complete_inbox_line_before_the_answer(
    world: World, resolver: Resolver
) -> None:
    result = resolver.resolve("web", "S10", {"email": "zoe@new.org", "first_name": "Zoe"})
    (line,) = inbox_lines(world)
    assert line["inbox_key"] == "web:S10"
    assert line["assigned_resolved_id"] == result.resolved_id
    assert line["email"] == "zoe@new.org" and line["first_name"] == "Zoe"
    assert line["phone"] is None and line["loyalty_id"] is None  # every column, every line
    assert line["received_at"][:2] == "20"


def test_a_value_whose_group_is_full_is_not_used_to_match(walkthrough_dir: Path, tmp_path: Path):
    # john@acme.com is held by 4 records: with max_group_size 4, one more makes the group
    # over-size and the batch would link nothing through it
    world = make_world(
        walkthrough_dir,
        tmp_path / "artifacts",
        lambda spec: with_email_group_limit(spec, 4),
    )
    resolver = world.resolver()
    try:
        by_email = resolver.resolve("web", "S11", {"email": "john@acme.com"})
        by_both = resolver.resolve("web", "S12", {"email": "john@acme.com", "phone": "5551234567"})
    finally:
        resolver.close()
    assert by_email.is_new
    assert (by_both.resolved_id, by_both.matched_on) == (JOHN, ["phone"])


def test_an_oversize_value_in_the_graph_matches_nothing(walkthrough_dir: Path, tmp_path: Path):
    world = make_world(
        walkthrough_dir,
        tmp_path / "artifacts",
        lambda spec: with_email_group_limit(spec, 3),
    )
    resolver = world.resolver()
    try:
        assert resolver.resolve("web", "S13", {"email": "john@acme.com"}).is_new
        (match,) = resolver.lookup({"email": "john@acme.com"})
        assert (match.status, match.resolved_id) == ("oversize", None)
    finally:
        resolver.close()


def test_lookup_normalizes_like_the_data_and_sees_accepted_records(resolver: Resolver) -> None:
    created = resolver.resolve("web", "S14", {"email": "zoe@new.org"})
    matches = resolver.lookup({"email": " ZOE@new.org", "phone": "555 123 4567", "loyalty_id": "x"})
    assert [(m.identifier_type, m.status, m.resolved_id) for m in matches] == [
        ("email", "linkable", created.resolved_id),
        ("phone", "linkable", JOHN),
        ("loyalty_id", "linkable", None),
    ]
    (invalid,) = resolver.lookup({"phone": "12"})
    assert (invalid.status, invalid.resolved_id) == ("invalid", None)


def test_customer_views_active_pending_and_unknown(resolver: Resolver) -> None:
    created = resolver.resolve("web", "S15", {"email": "bob@test.com"})
    assert created.resolved_id == BOB
    bob = resolver.customer(BOB)
    assert bob is not None and bob.status == "active"
    assert [m["entity_key"] for m in bob.members] == [
        "crm_customers:C003",
        "support_tickets:T002",
        "signups:web:S15",  # accepted, not in the graph yet
    ]
    assert bob.members[-1]["pending"] is True
    assert [row["change_type"] for row in bob.lineage] == ["NEW", "NEW"]

    pending = resolver.resolve("web", "S16", {"email": "zoe@new.org"})
    view = resolver.customer(pending.resolved_id)
    assert view is not None and view.status == "pending" and view.profile["provisional"]
    assert resolver.customer("crm_customers:NOBODY") is None


def test_nothing_resolves_before_a_graph_is_published(world: World, tmp_path: Path) -> None:
    world.artifacts = tmp_path / "empty"
    resolver = world.resolver()
    try:
        assert not resolver.ready
        with pytest.raises(NotReadyError, match="no published graph"):
            resolver.resolve("web", "S17", {"email": "zoe@new.org"})
    finally:
        resolver.close()


def test_a_new_graph_is_swapped_in_and_what_it_holds_is_no_longer_pending(
    world: World,
) -> None:
    resolver = world.resolver()
    created = resolver.resolve("web", "S18", {"email": "zoe@new.org"})
    assert resolver.status()["pending_records"] == 1
    assert not resolver.reload_if_changed()  # nothing new published
    resolver._inbox.rotate()  # noqa: SLF001 - what the maintenance thread does when due
    world.run_batch()  # folds the record in

    assert resolver.reload_if_changed()
    assert resolver.status()["pending_records"] == 0
    assert resolver.customer(created.resolved_id).status == "active"
    found = resolver.resolve("web", "S19", {"email": "zoe@new.org"})
    assert (found.resolved_id, found.matched_entity_key) == (created.resolved_id, "signups:web:S18")
    assert found.profile is not None and "provisional" not in found.profile  # golden now
    resolver.close()
