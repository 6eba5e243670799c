"""Identifiers again only for the records mapped this run: with the last run's table for
the records taken over, the table equals classifying everything — over-size groups
included — and records that do not line up with the last table are refused."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer360.core.identifiers import build_identifiers, classify_identifiers
from customer360.core.incremental_identifiers import (
    KEPT_COLUMNS,
    KeptIdentifiers,
    classify_mapped,
    in_records_order,
    keep_identifiers_basis,
    kept_identifiers,
    mapped_value_keys,
)
from customer360.core.normalized_values import keep_normalized_values, load_normalized_values
from customer360.core.storage import ArtifactStore

from .test_normalized_values import RAW_VALUES, records, spec_with


def last_table(spec, frame: pl.DataFrame) -> KeptIdentifiers:
    table = build_identifiers(spec, frame)
    rows = table.group_by("identifier_type", maintain_order=True).len()
    return KeptIdentifiers(table.select(KEPT_COLUMNS).lazy(), table.height, dict(rows.iter_rows()))


def with_records_inserted(
    frame: pl.DataFrame, added: pl.DataFrame, at: list[int]
) -> tuple[pl.DataFrame, pl.Series]:
    """``frame`` with the rows of ``added`` put before the given positions, in order,
    and which rows of the result they are."""
    index = pl.get_index_type()
    slots = pl.concat(
        [
            pl.DataFrame({"slot": pl.Series(range(frame.height), dtype=index), "new": False}),
            pl.DataFrame({"slot": pl.Series(sorted(at), dtype=index), "new": True}),
        ]
    ).with_columns(pl.col("slot") * 2 - pl.col("new").cast(index))
    both = pl.concat([frame, added]).with_columns(slots).sort("slot", maintain_order=True)
    return both.drop("slot", "new"), both.get_column("new")


def shared(n: int, email: str) -> dict[str, tuple]:
    return {f"s:{key:02d}": (email, None, None) for key in range(n)}


def test_new_records_are_classified_and_their_groups_counted_again(tmp_path: Path) -> None:
    spec = spec_with()  # email groups of more than 2 records are over-size
    before = records({**shared(2, "Ann@Example.com"), "s:50": ("b@c.io", "212-555-0101", "ab-12")})
    added = records({"s:99": ("ann@example.com", "(212) 555 0101", None)})
    after, mapped = with_records_inserted(before, added, [1])
    result = classify_mapped(spec, after, mapped, last_table(spec, before), None)
    assert result is not None
    assert result.table.equals(build_identifiers(spec, after))
    statuses = result.table.filter(pl.col("identifier_type") == "email").get_column("status")
    assert statuses.to_list() == ["oversize", "oversize", "oversize", "linkable"]
    assert sorted(result.fresh.get_column("value_raw")) == ["(212) 555 0101", "ann@example.com"]


def test_a_record_joining_an_over_size_group_counts_all_its_records_again() -> None:
    spec = spec_with()
    before = records(shared(3, "Ann@Example.com"))
    added = records({"s:99": ("ann@example.com", None, None)})
    after, mapped = with_records_inserted(before, added, [3])
    result = classify_mapped(spec, after, mapped, last_table(spec, before), None)
    assert result is not None
    assert result.table.equals(build_identifiers(spec, after))
    assert set(result.table.get_column("reason")) == {"shared by 4 records, above max_group_size 2"}


def test_records_that_do_not_line_up_with_the_last_table_are_refused() -> None:
    spec = spec_with()
    before = records({"s:1": ("b@c.io", None, None), "s:2": ("Ann@Example.com", None, None)})
    last = last_table(spec, before)
    dropped = before.slice(1)  # a record taken over is gone
    assert classify_mapped(spec, dropped, pl.Series([False]), last, None) is None
    changed = before.with_columns(pl.lit("x@y.io").alias("email"))
    assert classify_mapped(spec, changed, pl.Series([False, False]), last, None) is None


def test_the_last_table_is_kept_only_for_the_same_types_and_limits(tmp_path: Path) -> None:
    store, spec = ArtifactStore(tmp_path), spec_with()
    frame = records({"s:1": ("b@c.io", "212-555-0101", None)})
    store.write("identifiers", build_identifiers(spec, frame))
    keep_identifiers_basis(store, spec, store.read("identifiers"))
    kept = kept_identifiers(store, spec)
    assert kept is not None and kept.rows == {"email": 1, "phone": 1}
    assert kept_identifiers(store, spec_with(email={"max_group_size": 5})) is None
    assert kept_identifiers(store, spec_with(phone={"region": "GB"})) is None


row_values = st.tuples(*(st.none() | st.sampled_from(values) for values in RAW_VALUES.values()))
keys = st.sampled_from([f"s:{n}" for n in range(12)])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    old=st.dictionaries(keys, row_values, min_size=1, max_size=8),
    new=st.lists(row_values, min_size=1, max_size=4),
    places=st.lists(st.integers(0, 8), min_size=4, max_size=4),
)
def test_classifying_only_mapped_records_equals_classifying_everything(
    tmp_path: Path, old: dict, new: list, places: list[int]
) -> None:
    store = ArtifactStore(tmp_path / f"run{len(list(tmp_path.iterdir()))}")
    spec = spec_with()
    before = records(old)
    kept = load_normalized_values(store)
    first = classify_identifiers(spec, before, kept)
    keep_normalized_values(store, spec, kept, first.fresh, first.used)
    added = records({f"n:{n}": values for n, values in enumerate(new)})
    after, mapped = with_records_inserted(
        before, added, [min(at, before.height) for at in places[: added.height]]
    )
    known = load_normalized_values(store, mapped_value_keys(spec, after, mapped))
    result = classify_mapped(spec, after, mapped, last_table(spec, before), known)
    assert result is not None
    everything = classify_identifiers(spec, after, load_normalized_values(store))
    assert result.table.equals(everything.table)
    assert result.fresh.sort("key").equals(everything.fresh.sort("key"))
    assert result.used.collect().sort("key").equals(everything.used.collect().sort("key"))


@settings(max_examples=80, deadline=None)
@given(is_new=st.lists(st.booleans(), max_size=30), max_runs=st.sampled_from([0, 3, 64]))
def test_rows_are_put_in_the_records_order_by_slices_or_by_one_gather(
    is_new: list[bool], max_runs: int
) -> None:
    old_rows = [f"old{n}" for n in range(is_new.count(False))]
    taken_over = pl.DataFrame({"row": old_rows}, schema={"row": pl.String})
    mapped = pl.DataFrame(
        {"row": [f"new{n}" for n in range(is_new.count(True))]}, schema=taken_over.schema
    )
    next_of = {False: iter(taken_over.get_column("row")), True: iter(mapped.get_column("row"))}
    expected = [next(next_of[new]) for new in is_new]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("customer360.core.incremental_identifiers.MAX_SLICED_RUNS", max_runs)
        ordered = in_records_order(taken_over, mapped, pl.Series(is_new, dtype=pl.Boolean))
    assert ordered.get_column("row").to_list() == expected
