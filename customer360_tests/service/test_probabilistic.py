"""Probabilistic scoring in real time: off by default; on, a record that links to nobody
by identifiers joins the customer the batch's model matches it to — with the batch's own
scores — and the next run agrees."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from customer360.core.inbox import inbox_folder
from customer360.core.matching import reusable_model
from customer360.core.spec import Spec
from customer360.sample import generate_sample
from customer360.service.inbox import InboxWriter
from customer360.service.probabilistic import ProbabilisticMatcher
from customer360.service.resolver import Resolver

from .conftest import World

REPO_ROOT = Path(__file__).resolve().parents[2]
PERSON = ["first_name", "last_name", "date_of_birth", "postcode", "street"]


def sample_world(root: Path) -> World:
    """The bundled spec with scoring on, over a generated sample, materialized."""
    generate_sample(root / "data_sources", records=3_000, seed=5)
    spec = (REPO_ROOT / "customer360.yaml").read_text()
    spec, found = re.subn(r"(?m)^(  max_body_bytes: .*)$", r"\1\n  probabilistic: true", spec)
    assert found == 1
    (root / "customer360.yaml").write_text(spec)
    world = World(root / "customer360.yaml", root / "artifacts")
    world.run_batch()
    return world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return sample_world(tmp_path_factory.mktemp("probabilistic"))


def someone(world: World, skip: int = 0) -> dict:
    """A published record with an email, a name, birth date, postcode and street."""
    records = world.store.read("records").filter(
        pl.all_horizontal(pl.col(c).is_not_null() for c in ["email", *PERSON])
    )
    return records.row(skip, named=True)


def typo_signup(record: dict) -> dict[str, str]:
    """The same person, with a mistyped email and no other identifier."""
    return {c: record[c] for c in PERSON} | {"email": "zq" + record["email"]}


def customer_of(world: World, entity_key: str) -> str:
    membership = world.store.read("membership", ["entity_key", "resolved_id"])
    return membership.filter(pl.col("entity_key") == entity_key)["resolved_id"][0]


def with_scoring(spec: Spec, on: bool) -> Spec:
    assert spec.service is not None
    service = spec.service.model_copy(update={"probabilistic": on})
    return spec.model_copy(update={"service": service})


def resolver_for(world: World, spec: Spec) -> Resolver:
    resolver = Resolver(spec, world.store, InboxWriter(inbox_folder(spec), 3600))
    resolver.reload_if_changed()
    return resolver


def matcher(world: World, max_candidates: int = 200) -> ProbabilisticMatcher:
    matching = world.spec.matching
    persisted = reusable_model(world.store, matching)
    assert persisted is not None
    return ProbabilisticMatcher(world.store, matching, persisted[0], max_candidates)


def first_match_edge(world: World) -> tuple[str, str, float]:
    """A pair the batch's model matched, short of certainty (so the figures show)."""
    edges = world.store.read("match_edges").filter(pl.col("match_probability") < 0.999999)
    return edges.select("entity_key_a", "entity_key_b", "match_probability").row(0)


def matched_record(world: World) -> dict:
    a, _, _ = first_match_edge(world)
    return world.store.read("records").filter(pl.col("entity_key") == a).row(0, named=True)


def test_switched_off_a_record_without_identifier_links_is_a_new_customer(world: World) -> None:
    resolver = resolver_for(world, with_scoring(world.spec, on=False))
    try:
        answer = resolver.resolve("web", "OFF-1", typo_signup(someone(world)))
    finally:
        resolver.close()
    assert answer.is_new and answer.matched_on == [] and answer.confidence == 1.0


def test_switched_on_a_typo_in_the_email_still_finds_the_customer(world: World) -> None:
    record = someone(world, skip=1)
    resolver = world.resolver()
    try:
        answer = resolver.resolve("web", "ON-1", typo_signup(record))
        exact = resolver.resolve("web", "ON-2", {"email": record["email"]})
    finally:
        resolver.close()
    assert not answer.is_new
    assert answer.resolved_id == customer_of(world, record["entity_key"])
    assert answer.matched_on == ["probabilistic"]
    assert world.spec.matching.threshold <= answer.confidence <= 1.0
    # a record that links by identifiers is matched by them, as before
    assert exact.matched_on == ["email"] and exact.resolved_id == answer.resolved_id


def test_scores_are_the_batch_scores(world: World) -> None:
    """The service scores a pair as the batch's match stage did: same model, same SQL."""
    _, b, probability = first_match_edge(world)
    record = matched_record(world)
    scored = {m.entity_key: m.probability for m in matcher(world).matches("web:probe", record)}
    assert scored[b] == pytest.approx(probability, abs=1e-9)


def test_a_record_sharing_no_blocking_key_is_not_scored(world: World) -> None:
    assert matcher(world).matches("web:probe", {"first_name": "Zebulon"}) == []


def test_candidates_are_bounded(world: World) -> None:
    """With room for one candidate, one pair is scored: at most one match."""
    record = matched_record(world)
    assert len(matcher(world).matches("web:probe", record)) >= 2  # itself and its match
    assert len(matcher(world, max_candidates=1).matches("web:probe", record)) <= 1


def test_the_next_run_keeps_the_probabilistic_match(tmp_path: Path) -> None:
    world = sample_world(tmp_path)
    record = someone(world, skip=2)
    resolver = world.resolver()
    answer = resolver.resolve("web", "CONVERGE-1", typo_signup(record))
    resolver.close()  # the open inbox file becomes a batch file
    assert answer.matched_on == ["probabilistic"] and not answer.is_new

    world.run_batch()
    new_key = "service_inbox:web:CONVERGE-1"
    assert customer_of(world, new_key) == answer.resolved_id
    assert customer_of(world, record["entity_key"]) == answer.resolved_id
