"""The index of the published graph: what it answers, and when it must be rebuilt."""

from __future__ import annotations

from customer360.service.graph import GraphIndex, graph_fingerprint

from .conftest import BOB, JANE, JOHN, World


def test_values_point_at_their_customer_and_group_anchor(world: World) -> None:
    graph = GraphIndex(world.store, graph_fingerprint(world.store))
    john = graph.match("email", "john@acme.com")
    assert john is not None
    assert (john.resolved_id, john.entity_key, john.group_size) == (JOHN, JOHN, 4)
    loyalty = graph.match("loyalty_id", "LY100")
    assert loyalty is not None
    assert (loyalty.resolved_id, loyalty.entity_key, loyalty.group_size) == (
        JOHN,
        "ecom_orders:O001",  # the group's first record: the batch's edge anchor
        2,
    )
    assert graph.match("email", "nobody@nowhere.org") is None
    assert graph.match("email", "JOHN@ACME.COM") is None  # keys are normalized values
    assert not graph.is_oversize("email", "john@acme.com")


def test_records_customers_profiles_and_issue_order(world: World) -> None:
    graph = GraphIndex(world.store, graph_fingerprint(world.store))
    assert (graph.record_count, graph.customer_count) == (10, 5)
    assert graph.resolved_id_of("support_tickets:T002") == BOB
    assert graph.resolved_id_of("support_tickets:T999") is None
    assert [m["entity_key"] for m in graph.members(JANE)] == [JANE, "ecom_orders:O003"]
    assert graph.members("crm_customers:NOBODY") == []
    assert graph.profile(JANE)["email_primary"] == "jane@example.org"
    assert graph.profile("crm_customers:NOBODY") is None
    seqs = [graph.issued_seq(i) for i in (JOHN, JANE, BOB)]
    assert all(seq is not None for seq in seqs)
    assert graph.is_issued(JOHN) and not graph.is_issued("crm_customers:NOBODY")


def test_the_fingerprint_moves_when_a_run_publishes(world: World) -> None:
    before = graph_fingerprint(world.store)
    assert before == graph_fingerprint(world.store)
    world.run_batch()
    assert graph_fingerprint(world.store) != before
