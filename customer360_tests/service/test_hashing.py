"""Hashed identifiers through the service: the graph holds only HMAC(salt, normalized
value), a request carries the plain value — the service normalizes, screens and hashes
it as ingestion does, so the customer is found, and the next run agrees."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from .conftest import JOHN, World, make_world

SALT = "service-salt-0123456789abcdef"


def hashed_identifiers(spec: str) -> str:
    spec = spec.replace("normalizer: email\n", "normalizer: email\n    hash: true\n", 1)
    return spec.replace("normalizer: phone\n", "normalizer: phone\n    hash: true\n", 1)


def keyed(value: str) -> str:
    return hmac.new(SALT.encode(), value.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def hashed_world(walkthrough_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("CUSTOMER360_SALT", SALT)
    return make_world(walkthrough_dir, tmp_path / "artifacts", hashed_identifiers)


def test_a_plain_email_finds_the_customer_whose_email_is_hashed(hashed_world: World) -> None:
    stored = hashed_world.store.read("identifiers", ["value"]).get_column("value").to_list()
    assert keyed("john@acme.com") in stored and "john@acme.com" not in stored

    resolver = hashed_world.resolver()
    john = resolver.resolve("web", "H1", {"email": "  John@ACME.com "})
    by_phone = resolver.resolve("web", "H2", {"phone": "(555) 123-4567"})
    excluded = resolver.resolve("web", "H3", {"email": "noreply@acme.com"})
    fresh = resolver.resolve("web", "H4", {"email": "zoe@new.org"})
    again = resolver.resolve("web", "H5", {"email": "ZOE@new.org"})
    lookup = resolver.lookup({"email": "john@acme.com"})
    resolver.close()

    assert (john.resolved_id, john.matched_on) == (JOHN, ["email"])
    assert john.profile is not None and john.profile["email_primary"] == keyed("john@acme.com")
    assert by_phone.resolved_id == JOHN
    assert excluded.is_new  # screened like ingestion screens it, before hashing
    assert fresh.is_new and fresh.profile is not None
    assert fresh.profile["email_primary"] == keyed("zoe@new.org")  # no plain value kept
    assert (again.resolved_id, again.matched_on) == (fresh.resolved_id, ["email"])
    assert [(m.status, m.resolved_id) for m in lookup] == [("linkable", JOHN)]

    hashed_world.run_batch()  # the run hashes the inbox lines and links them the same way
    after = dict(hashed_world.store.read("membership", ["entity_key", "resolved_id"]).iter_rows())
    answers = {"H1": JOHN, "H2": JOHN, "H4": fresh.resolved_id, "H5": fresh.resolved_id}
    assert {key: after[f"signups:web:{key}"] for key in answers} == answers


def test_a_restarted_service_reads_its_inbox_back_hashed(hashed_world: World) -> None:
    first = hashed_world.resolver()
    zoe = first.resolve("web", "H1", {"email": "zoe@new.org"}).resolved_id
    first.close()
    restarted = hashed_world.resolver()  # the inbox lines hold the plain email
    again = restarted.resolve("web", "H2", {"email": "zoe@new.org"})
    restarted.close()
    assert (again.resolved_id, again.is_new) == (zoe, False)
