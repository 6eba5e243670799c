"""Batches kept as read: unchanged files are not read again, and what a cached read
gives is always what reading every file gives."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer360.core import batch_cache, batches
from customer360.core.batch_cache import BatchCache, clear_batch_cache
from customer360.core.batches import content_hash
from customer360.core.readers import read_one_batch, read_source
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore

from .conftest import crm_source, make_spec, spec_dict, write_csv

HEADER = ["customer_id", "email", "phone", "first_name", "updated"]


def folder_spec(base: Path, **identifier_settings: object) -> Spec:
    raw = spec_dict(crm_source(path="crm"))
    raw["identifier_types"]["email"].update(identifier_settings)
    return make_spec(raw, base)


def put(base: Path, name: str, rows: list[tuple[str, str]]) -> None:
    write_csv(
        base / "crm" / name,
        HEADER,
        [[key, email, "", "Ann", "2024-01-01"] for key, email in rows],
    )


def kept_entries(store: ArtifactStore) -> list[str]:
    return sorted(p.name for p in (store.root / "state" / "batches" / "crm").glob("*.parquet"))


def test_unchanged_batches_come_from_the_cache_and_equal_the_files(tmp_path):
    spec, store = folder_spec(tmp_path), ArtifactStore(tmp_path / "artifacts")
    put(tmp_path, "b1.csv", [("C1", "a@x.io")])
    put(tmp_path, "b2.csv", [("C2", "b@x.io")])
    first = BatchCache(store)
    assert read_source(spec, spec.sources[0], first).equals(read_source(spec, spec.sources[0]))
    assert first.files_read == 2

    put(tmp_path, "b3.csv", [("C3", "c@x.io")])
    second = BatchCache(store)
    frame = read_source(spec, spec.sources[0], second)
    assert second.files_read == 1  # only the new batch
    assert frame.equals(read_source(spec, spec.sources[0]))
    assert len(kept_entries(store)) == 3


def test_a_kept_batch_gives_its_content_hash_without_reading_the_file_again(tmp_path, monkeypatch):
    spec, store = folder_spec(tmp_path), ArtifactStore(tmp_path / "artifacts")
    put(tmp_path, "b1.csv", [("C1", "a@x.io")])
    path = tmp_path / "crm" / "b1.csv"
    read_source(spec, spec.sources[0], BatchCache(store))  # fingerprinted and indexed
    expected = content_hash(path)

    def no_hashing(_path: Path) -> str:
        raise AssertionError("hashed again")

    monkeypatch.setattr(batch_cache, "content_hash", no_hashing)
    monkeypatch.setattr(batches, "content_hash", no_hashing)
    cache = BatchCache(store)
    read_one_batch(spec, spec.sources[0], path, cache)
    assert cache.content_hash(path) == expected


def test_replaced_and_removed_batches_leave_the_cache(tmp_path):
    spec, store = folder_spec(tmp_path), ArtifactStore(tmp_path / "artifacts")
    put(tmp_path, "b1.csv", [("C1", "a@x.io")])
    put(tmp_path, "b2.csv", [("C2", "b@x.io")])
    read_source(spec, spec.sources[0], BatchCache(store))
    before = kept_entries(store)

    put(tmp_path, "b1.csv", [("C1", "changed@x.io")])
    (tmp_path / "crm" / "b2.csv").unlink()
    cache = BatchCache(store)
    frame = read_source(spec, spec.sources[0], cache)
    assert cache.files_read == 1
    assert frame.get_column("email").to_list() == ["changed@x.io"]
    assert len(kept_entries(store)) == 1
    assert not set(kept_entries(store)) & set(before)


def test_same_size_and_time_but_new_content_is_still_read_again(tmp_path):
    """The content hash decides; size and mtime only spare hashing unchanged files."""
    spec, store = folder_spec(tmp_path), ArtifactStore(tmp_path / "artifacts")
    put(tmp_path, "b1.csv", [("C1", "a@x.io")])
    read_source(spec, spec.sources[0], BatchCache(store))
    path = tmp_path / "crm" / "b1.csv"
    stat = path.stat()
    put(tmp_path, "b1.csv", [("C1", "z@x.io")])  # same length
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    frame = read_source(spec, spec.sources[0], BatchCache(store))
    assert frame.get_column("email").to_list() == ["z@x.io"]


def test_a_read_only_cache_uses_kept_batches_and_writes_nothing(tmp_path):
    spec, store = folder_spec(tmp_path), ArtifactStore(tmp_path / "artifacts")
    put(tmp_path, "b1.csv", [("C1", "a@x.io")])
    read_source(spec, spec.sources[0], BatchCache(store))
    put(tmp_path, "b2.csv", [("C2", "b@x.io")])
    folder = store.root / "state" / "batches"
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    preview = BatchCache(store, writable=False)
    frame = read_source(spec, spec.sources[0], preview)
    assert preview.files_read == 1
    assert frame.height == 2
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_sources_with_hashed_identifiers_are_never_kept(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    put(tmp_path, "b1.csv", [("C1", "a@x.io")])
    plain = folder_spec(tmp_path)
    read_source(plain, plain.sources[0], BatchCache(store))
    assert kept_entries(store)
    spec = folder_spec(tmp_path, hash=True)  # hashing turned on: what was kept goes
    cache = BatchCache(store)
    read_source(spec, spec.sources[0], cache)
    read_source(spec, spec.sources[0], cache)
    assert cache.files_read == 2
    assert not (store.root / "state" / "batches" / "crm").exists()


def test_clearing_the_cache_drops_every_kept_batch(tmp_path):
    spec, store = folder_spec(tmp_path), ArtifactStore(tmp_path / "artifacts")
    put(tmp_path, "b1.csv", [("C1", "a@x.io")])
    read_source(spec, spec.sources[0], BatchCache(store))
    clear_batch_cache(store)
    cache = BatchCache(store)
    read_source(spec, spec.sources[0], cache)
    assert cache.files_read == 1


KEYS = st.sampled_from(["C1", "C2", "C3", "C4"])
EMAILS = st.sampled_from(["a@x.io", "b@x.io", "c@x.io"])
operation = st.one_of(
    st.tuples(
        st.just("put"),
        st.sampled_from(["b1.csv", "b2.csv", "b3.csv"]),
        st.lists(st.tuples(KEYS, EMAILS), min_size=1, max_size=3),
    ),
    st.tuples(st.just("remove"), st.sampled_from(["b1.csv", "b2.csv", "b3.csv"]), st.just([])),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=st.lists(operation, min_size=1, max_size=8))
def test_cached_reads_equal_reading_every_file_over_any_history(tmp_path_factory, operations):
    base = tmp_path_factory.mktemp("history")
    (base / "crm").mkdir()
    spec, store = folder_spec(base), ArtifactStore(base / "artifacts")
    source = spec.sources[0]
    for kind, name, rows in operations:
        if kind == "put":
            put(base, name, rows)  # arrival or replacement
        else:
            (base / "crm" / name).unlink(missing_ok=True)  # retraction
        cached = read_source(spec, source, BatchCache(store))
        assert cached.equals(read_source(spec, source))
        assert len(kept_entries(store)) == len(list((base / "crm").glob("*.csv")))


def test_one_batch_read_alone_is_kept_for_the_next_read_of_all_and_leaves_the_others(tmp_path):
    spec, store = folder_spec(tmp_path), ArtifactStore(tmp_path / "artifacts")
    source = spec.sources[0]
    put(tmp_path, "b1.csv", [("C1", "a@x.io")])
    read_source(spec, source, BatchCache(store))
    put(tmp_path, "b2.csv", [("C2", "b@x.io")])

    alone = BatchCache(store)
    frame = read_one_batch(spec, source, tmp_path / "crm" / "b2.csv", alone)
    assert frame.get_column("customer_id").to_list() == ["C2"]
    assert alone.files_read == 1
    assert len(kept_entries(store)) == 2  # b1's entry is not taken for a removed batch

    every = BatchCache(store)
    assert read_source(spec, source, every).equals(read_source(spec, source))
    assert (every.batches, every.files_read) == (2, 0)


def test_only_a_source_read_as_one_kept_batch_has_a_single_file(tmp_path):
    spec, store = folder_spec(tmp_path), ArtifactStore(tmp_path / "artifacts")
    source = spec.sources[0]
    put(tmp_path, "b1.csv", [("C1", "a@x.io")])
    cache = BatchCache(store)
    frame = read_source(spec, source, cache)
    assert frame.equals(pl.read_parquet(cache.single_file(source)))
    put(tmp_path, "b2.csv", [("C2", "b@x.io")])
    cache = BatchCache(store)
    read_source(spec, source, cache)
    assert cache.single_file(source) is None
    hashed = folder_spec(tmp_path, hash=True)
    cache = BatchCache(store)
    read_one_batch(hashed, hashed.sources[0], tmp_path / "crm" / "b1.csv", cache)
    assert cache.single_file(hashed.sources[0]) is None  # never kept
