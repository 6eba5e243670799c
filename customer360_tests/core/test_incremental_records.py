"""Records again only for new batches: over any history of arrivals, replacements and
removals, a run that takes the last run's rows over ends with exactly the records and
quarantine of mapping every batch again — and maps only the new batches' rows when
batches were only added."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer360.core.batch_cache import BatchCache
from customer360.core.incremental_records import (
    MappedRecords,
    basis_fingerprint,
    keep_basis,
    kept_basis,
    next_basis,
    plan_records,
    update_records,
)
from customer360.core.ingest import ingest_source
from customer360.core.readers import read_source
from customer360.core.records import build_records
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore

from .conftest import crm_source, make_spec, spec_dict, write_csv

HEADER = ["customer_id", "email", "phone", "first_name", "updated"]
NOBODY = pl.Series("entity_key", [], pl.String)
_MTIMES = itertools.count(1_700_000_000_000_000_000, 1_000_000)


def two_sources_of_one_trust(base: Path) -> Spec:
    """CRM and web: folders of batches, one trust, so their rows are merged by time."""
    for folder in ("crm", "web"):
        (base / folder).mkdir(exist_ok=True)
    raw = spec_dict(crm_source(path="crm"), crm_source(name="web", path="web"))
    return make_spec(raw, base)


def put(base: Path, source: str, batch: str, rows: list[tuple[str, str, str]]) -> None:
    path = write_csv(
        base / source / batch, HEADER, [[key, email, "", "Ann", at] for key, email, at in rows]
    )
    mtime = next(_MTIMES)  # a replacement of the same size is still seen as changed
    os.utime(path, ns=(mtime, mtime))


def run(spec: Spec, store: ArtifactStore) -> MappedRecords:
    """The records stage as the asset runs it: plan, read, map, publish, keep."""
    cache = BatchCache(store)
    fingerprint = basis_fingerprint(spec, NOBODY)
    plan = plan_records(spec, store, kept_basis(store, fingerprint))
    ingested = {
        name: ingest_source(spec, spec.source(name), NOBODY, cache) for name in plan.to_read(spec)
    }
    for name, result in ingested.items():
        store.write(name, result.frame)
    basis = next_basis(spec, cache, fingerprint, plan, ingested)
    previous = (
        (store.read("records"), store.read("quarantine")) if plan.unchanged or plan.added else None
    )
    mapped = update_records(spec, plan, {n: r.frame for n, r in ingested.items()}, previous)
    store.write("records", mapped.records)
    store.write("quarantine", mapped.quarantine)
    keep_basis(store, basis, mapped)
    return mapped


def from_scratch(spec: Spec) -> tuple[pl.DataFrame, pl.DataFrame]:
    return build_records(spec, {source.name: read_source(spec, source) for source in spec.sources})


def test_added_batches_map_only_their_rows_merged_in_update_order(tmp_path: Path) -> None:
    spec, store = two_sources_of_one_trust(tmp_path), ArtifactStore(tmp_path / "artifacts")
    put(tmp_path, "crm", "b1.csv", [("C1", "a@x.io", "2024-01-02"), ("C2", "b@x.io", "2024-01-04")])
    put(tmp_path, "web", "b1.csv", [("W1", "c@x.io", "2024-01-03")])
    assert run(spec, store).rows_mapped == 3
    assert run(spec, store).rows_mapped == 0
    put(tmp_path, "crm", "b2.csv", [("C3", "d@x.io", "2024-01-01"), ("C4", "e@x.io", "")])
    mapped = run(spec, store)
    assert mapped.rows_mapped == 2
    assert mapped.records.get_column("record_key").to_list() == ["C3", "C1", "W1", "C2", "C4"]
    records, quarantine = from_scratch(spec)
    assert mapped.records.equals(records)
    assert mapped.quarantine.equals(quarantine)


def test_a_changed_or_removed_batch_maps_its_source_whole_and_no_other(tmp_path: Path) -> None:
    spec, store = two_sources_of_one_trust(tmp_path), ArtifactStore(tmp_path / "artifacts")
    put(tmp_path, "crm", "b1.csv", [("C1", "a@x.io", "2024-01-02")])
    put(tmp_path, "crm", "b2.csv", [("C2", "b@x.io", "2024-01-03")])
    put(tmp_path, "web", "b1.csv", [("W1", "c@x.io", "2024-01-03")])
    run(spec, store)
    put(tmp_path, "crm", "b1.csv", [("C1", "z@x.io", "2024-01-02")])
    assert run(spec, store).rows_mapped == 2  # both CRM batches, not web's
    (tmp_path / "crm" / "b2.csv").unlink()
    mapped = run(spec, store)
    assert mapped.rows_mapped == 1
    assert mapped.records.equals(from_scratch(spec)[0])


def test_a_basis_of_another_spec_or_forgotten_list_is_not_used(tmp_path: Path) -> None:
    spec, store = two_sources_of_one_trust(tmp_path), ArtifactStore(tmp_path / "artifacts")
    put(tmp_path, "crm", "b1.csv", [("C1", "a@x.io", "2024-01-02")])
    run(spec, store)
    assert kept_basis(store, basis_fingerprint(spec, NOBODY)) is not None
    other = make_spec(
        spec_dict(crm_source(path="crm", trust=2), crm_source(name="web", path="web")), tmp_path
    )
    assert kept_basis(store, basis_fingerprint(other, NOBODY)) is None
    forgotten = pl.Series("entity_key", ["crm:C1"])
    assert kept_basis(store, basis_fingerprint(spec, forgotten)) is None


KEYS = st.sampled_from(["K1", "K2", "K3", "K4", "K5"])
EMAILS = st.sampled_from(["a@x.io", "b@x.io", "not an email"])
TIMES = st.sampled_from(["2024-01-01", "2024-01-02", "2024-01-02 10:00", "", "never"])
BATCH = st.tuples(st.sampled_from(["crm", "web"]), st.sampled_from(["b1.csv", "b2.csv", "b3.csv"]))
operation = st.one_of(
    st.tuples(st.just("put"), BATCH, st.lists(st.tuples(KEYS, EMAILS, TIMES), max_size=3)),
    st.tuples(st.just("remove"), BATCH, st.just([])),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=st.lists(operation, min_size=1, max_size=8))
def test_runs_that_take_rows_over_equal_mapping_everything_over_any_history(
    tmp_path_factory, operations
):
    base = tmp_path_factory.mktemp("history")
    spec, store = two_sources_of_one_trust(base), ArtifactStore(base / "artifacts")
    for kind, (source, batch), rows in operations:
        if kind == "put":
            put(base, source, batch, rows)  # arrival or replacement
        else:
            (base / source / batch).unlink(missing_ok=True)  # retraction
        mapped = run(spec, store)
        records, quarantine = from_scratch(spec)
        assert mapped.records.equals(records)
        assert mapped.quarantine.equals(quarantine)
