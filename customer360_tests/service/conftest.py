"""A small published world for the service: the README walkthrough (CRM, e-commerce,
support) plus an inbox source, materialized by the real job."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from customer360.core.inbox import inbox_folder
from customer360.core.spec import Spec, load_spec
from customer360.core.storage import ArtifactStore
from customer360.service.app import create_app
from customer360.service.inbox import InboxWriter
from customer360.service.resolver import Resolver
from customer360_tests.conftest import JobRun, run_job

API_KEY = "test-key-0123456789abcdef"
MAX_BODY_BYTES = 4096
INBOX_SPEC = """
  - name: signups
    description: records accepted by the resolve service
    path: signups/
    format: ndjson
    key: inbox_key
    updated_at: received_at
    trust: 4
    identifiers: {email: email, phone: phone, loyalty_id: loyalty_id}
    attributes: {first_name: first_name}
service:
  inbox_source: signups
  inbox_rotate_seconds: 3600
"""
# The walkthrough's customers, by the id the batch gives them.
JOHN = "crm_customers:C001"  # john@acme.com, 5551234567, LY100 — four records
JANE = "crm_customers:C002"  # jane@example.org, 5559876543
BOB = "crm_customers:C003"  # bob@test.com, 5550001111


@dataclass
class World:
    spec_path: Path
    artifacts: Path

    @property
    def spec(self) -> Spec:
        return load_spec(self.spec_path)

    @property
    def store(self) -> ArtifactStore:
        return ArtifactStore(self.artifacts)

    @property
    def inbox(self) -> Path:
        return inbox_folder(self.spec)

    def run_batch(self) -> JobRun:
        run = run_job(self.spec_path, self.artifacts)
        assert run.result.success
        return run

    def resolver(self) -> Resolver:
        """A resolver over the published graph, as `customer360 serve` builds it."""
        spec = self.spec
        assert spec.service is not None
        writer = InboxWriter(inbox_folder(spec), spec.service.inbox_rotate_seconds)
        resolver = Resolver(spec, self.store, writer)
        resolver.reload_if_changed()
        return resolver


def make_world(walkthrough_dir: Path, artifacts: Path, edit=lambda spec: spec) -> World:
    spec_path = walkthrough_dir / "customer360.yaml"  # its last section is the sources list
    spec_path.write_text(edit(spec_path.read_text().rstrip("\n") + "\n" + INBOX_SPEC))
    world = World(spec_path, artifacts)
    world.run_batch()
    return world


@pytest.fixture
def world(walkthrough_dir: Path, tmp_path: Path) -> World:
    return make_world(walkthrough_dir, tmp_path / "artifacts")


@pytest.fixture
def resolver(world: World) -> Iterator[Resolver]:
    resolver = world.resolver()
    yield resolver
    resolver.close()


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    """The app with its lifespan (maintenance thread, inbox closed at the end)."""
    app = create_app(world.resolver(), API_KEY, MAX_BODY_BYTES)
    with TestClient(app, headers={"X-API-Key": API_KEY}) as test_client:
        yield test_client


def signup(external_id: str, source: str = "web", **data: str | None) -> dict:
    """A resolve request body."""
    return {"source": source, "external_id": external_id, "data": data}
