"""Real time and batch converge: the next run folds the service's records in and keeps
the ids the service gave them, unless its evidence merges or splits them — and then
lineage says so."""

from __future__ import annotations

import dagster as dg
import polars as pl

from customer360.definitions import build_definitions
from customer360.service.resolver import Resolver
from customer360_tests.defs.test_automation import look, requested

from .conftest import JANE, JOHN, World

SIGNUPS = {
    "S1": {"email": "john@ACME.com", "first_name": "Johnny"},  # an existing customer
    "S2": {"email": "zoe@new.org", "phone": "212-555-0100"},  # somebody new
    "S3": {"phone": "(212) 555 0100"},  # the new one again, by phone
    "S4": {"email": "max@new.org"},  # somebody else new
    "S5": {"email": "jane@example.org", "phone": "5551234567"},  # Jane's email, John's phone
}


def resolve_all(resolver: Resolver) -> dict[str, str]:
    return {
        f"signups:web:{external_id}": resolver.resolve("web", external_id, data).resolved_id
        for external_id, data in SIGNUPS.items()
    }


def latest_lineage(world: World) -> dict[str, tuple[str | None, str]]:
    lineage = world.store.read("cluster_lineage")
    latest = lineage.filter(pl.col("recorded_at") == pl.col("recorded_at").max())
    return {
        key: (previous, change)
        for key, previous, change in latest.select(
            "entity_key", "previous_resolved_id", "change_type"
        ).iter_rows()
    }


def membership(world: World) -> dict[str, str]:
    return dict(world.store.read("membership", ["entity_key", "resolved_id"]).iter_rows())


def test_the_next_run_keeps_real_time_ids_and_lineage_names_the_merge(world: World) -> None:
    resolver = world.resolver()
    answered = resolve_all(resolver)
    resolver.close()  # shutting down turns the open inbox file into a batch file
    assert answered == {
        "signups:web:S1": JOHN,
        "signups:web:S2": "signups:web:S2",
        "signups:web:S3": "signups:web:S2",
        "signups:web:S4": "signups:web:S4",
        "signups:web:S5": JOHN,  # Jane's customer is the younger one: the batch merges it
    }

    world.run_batch()

    after = membership(world)
    assert {key: after[key] for key in answered} == answered  # every id the service gave
    assert after[JANE] == JOHN and after["ecom_orders:O003"] == JOHN  # merged, as announced
    lineage = latest_lineage(world)
    assert lineage[JANE] == (JANE, "MERGED")
    assert lineage["signups:web:S2"] == ("signups:web:S2", "UNCHANGED")
    assert lineage["signups:web:S4"] == ("signups:web:S4", "UNCHANGED")

    # the service after a restart: replays keep their ids, the graph now holds them
    restarted = world.resolver()
    replay = restarted.resolve("web", "S2", SIGNUPS["S2"])
    found = restarted.resolve("web", "S6", {"email": "max@new.org"})
    restarted.close()
    assert (replay.resolved_id, replay.is_new) == ("signups:web:S2", False)
    assert (found.resolved_id, found.matched_entity_key) == ("signups:web:S4", "signups:web:S4")

    world.run_batch()  # a run later nothing moves, and S6 joined as the service said
    assert {key: membership(world)[key] for key in answered} == answered
    assert membership(world)["signups:web:S6"] == "signups:web:S4"
    assert {change for _, change in latest_lineage(world).values()} == {"UNCHANGED"}


def test_when_the_batch_evidence_disagrees_the_record_splits_off_and_lineage_says_so(
    world: World, walkthrough_dir
) -> None:
    resolver = world.resolver()
    matched = resolver.resolve("web", "S7", {"phone": "555 123 4567"})  # John's phone
    resolver.close()
    assert matched.resolved_id == JOHN
    for name in ("crm_customers.csv", "support_tickets.csv"):  # John changes his number
        path = walkthrough_dir / name
        path.write_text(path.read_text().replace("5551234567", "5557654321"))

    world.run_batch()

    assert membership(world)["signups:web:S7"] == "signups:web:S7"
    assert latest_lineage(world)["signups:web:S7"] == (JOHN, "SPLIT")


def test_the_sensor_sees_an_inbox_batch_only_once_it_is_complete(world: World) -> None:
    defs = build_definitions(world.spec, world.artifacts)
    with dg.instance_for_test() as instance:
        cursor = look(defs, instance, None).cursor  # the first look: every batch is new

        resolver = world.resolver()
        resolver.resolve("web", "S8", {"email": "zoe@new.org"})
        early = look(defs, instance, cursor)
        assert early.run_requests == []  # the open inbox file is hidden
        resolver.close()  # rotation

        rotated = look(defs, instance, early.cursor or cursor)
        inbox = next(r for r in rotated.run_requests if r.partition_key)
        assert inbox.partition_key.startswith("accepted-")
        assert [(job, change) for job, _, change in requested(rotated)] == [
            (inbox.job_name, "1 new"),
            ("resolve_customers", "1 new"),
        ]
