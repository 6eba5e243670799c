"""Forgetting reaches what the service holds: records it accepted that no run has read
yet are selected, cut out of the inbox files and dropped from its memory; their
(source, external_id) is refused from then on, and the next run never sees them."""

from __future__ import annotations

import time

import polars as pl
import pytest
from fastapi.testclient import TestClient

from customer360.core.forget import forget, select_records
from customer360.service.resolver import ForgottenRecordError

from .conftest import JOHN, World, signup
from .test_resolver import inbox_lines

ZOE = {"email": "zoe@new.org", "phone": "212-555-0100"}


def forget_by(world: World, **selector: str) -> dict[str, int]:
    """What `customer360 forget` and the forget job do, without the rebuild."""
    spec, store = world.spec, world.store
    selected = select_records(spec, store, **selector)
    return forget(spec, store, selected, "test")


def test_records_only_the_service_holds_are_forgotten_by_identifier(world: World) -> None:
    resolver = world.resolver()
    zoe = resolver.resolve("web", "S1", ZOE).resolved_id
    resolver.resolve("app", "S2", {"phone": "2125550100"})  # Zoe again, by phone
    resolver.resolve("web", "S3", {"email": "john@acme.com"})  # somebody else

    figures = forget_by(world, identifier_type="email", value=" ZOE@new.org")
    assert figures == {"records_forgotten": 2, "customers_forgotten": 1}
    # the service holds its open file: it lets go of them itself, within a tick
    assert resolver.forget_suppressed() == 2
    assert [line["inbox_key"] for line in inbox_lines(world)] == ["web:S3"]
    assert resolver.customer(zoe) is None
    assert [(m.status, m.resolved_id) for m in resolver.lookup({"email": "zoe@new.org"})] == [
        ("linkable", None)
    ]
    with pytest.raises(ForgottenRecordError):
        resolver.resolve("web", "S1", ZOE)
    back = resolver.resolve("web", "S4", ZOE)  # she signs up again: somebody new
    assert back.is_new and back.resolved_id != zoe
    resolver.close()

    world.run_batch()
    keys = world.store.read("membership", ["entity_key"]).get_column("entity_key").to_list()
    assert "signups:web:S3" in keys and "signups:web:S4" in keys
    assert not {"signups:web:S1", "signups:app:S2"} & set(keys)


def test_without_a_running_service_forget_cuts_lines_from_every_inbox_file(
    world: World,
) -> None:
    resolver = world.resolver()
    resolver.resolve("web", "S1", {"email": "john@acme.com"})  # John, not yet in the graph
    resolver.resolve("web", "S2", ZOE)
    resolver.close()  # the open file becomes a batch file; no service holds the inbox
    open_file = world.inbox / ".accepting.ndjson"
    open_file.write_bytes(  # what a crashed service leaves: lines, then reserved zeros
        b'{"inbox_key":"web:S5","received_at":"2026-01-01 00:00:00",'
        b'"assigned_resolved_id":"crm_customers:C001","data_hash":"x","email":"j@acme.com"}\n'
        + bytes(64)
    )

    selected = select_records(world.spec, world.store, resolved_id=JOHN)
    assert {"signups:web:S1", "signups:web:S5"} <= set(selected.get_column("entity_key"))
    forget(world.spec, world.store, selected, "resolved_id")

    assert [line["inbox_key"] for line in inbox_lines(world)] == ["web:S2"]
    assert not open_file.exists()  # it held only John's line


def test_the_service_refuses_a_forgotten_record_with_410(world: World, client: TestClient) -> None:
    answer = client.post("/v1/resolve", json=signup("S1", **ZOE)).json()
    forget_by(world, resolved_id=answer["resolved_id"])
    deadline = time.monotonic() + 10
    while client.get(f"/v1/customers/{answer['resolved_id']}").status_code != 404:
        assert time.monotonic() < deadline, "the service kept a forgotten customer"
        time.sleep(0.1)
    refused = client.post("/v1/resolve", json=signup("S1", **ZOE))
    assert refused.status_code == 410 and "forgotten" in refused.json()["detail"]
    assert "zoe" not in refused.text


def test_forgetting_a_graph_customer_stops_it_matching_before_the_rebuild(world: World) -> None:
    resolver = world.resolver()
    forget_by(world, resolved_id=JOHN)
    resolver.forget_suppressed()
    result = resolver.resolve("web", "S1", {"email": "john@acme.com"})
    resolver.close()
    assert result.is_new and result.resolved_id != JOHN
    assert world.store.read_state("forgotten_records") is not None
    assert pl.Series(["crm_customers:C001"]).is_in(
        world.store.read_state("forgotten_records").get_column("entity_key").implode()
    )[0]
