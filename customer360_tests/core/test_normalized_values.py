"""Identifier values kept normalized between runs: a run that looks them up builds the
same identifiers table as one that normalizes everything."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer360.core.identifiers import build_identifiers, classify_identifiers
from customer360.core.normalized_values import (
    KEPT_SCHEMA,
    MAX_SEGMENTS,
    STATE_FOLDER,
    clear_normalized_values,
    keep_normalized_values,
    load_normalized_values,
    type_fingerprints,
    value_key,
)
from customer360.core.storage import ArtifactStore

from .conftest import LOYALTY_EXPRESSION, make_spec, records_frame

RAW_VALUES = {
    "email": ["Ann@Example.com", " ann@example.com", "noreply@shop.com", "not an email", "b@c.io"],
    "phone": ["212-555-0101", "(212) 555 0101", "0000000000", "12", "+44 20 7946 0958"],
    "loyalty_id": ["ab-12", "AB12", "x 9", "--"],
}


def spec_with(**overrides: dict):
    types = {
        "email": {
            "normalizer": "email",
            "max_group_size": 2,
            "exclusions": [{"like": "noreply@%", "reason": "no-reply"}],
        },
        "phone": {"normalizer": "phone", "exclusions": [{"value": "0000000000", "reason": "x"}]},
        "loyalty_id": {"normalizer": "expression", "expression": LOYALTY_EXPRESSION},
    }
    for name, changes in overrides.items():
        types[name] = {**types[name], **changes}
    return spec_of(types)


def spec_of(types: dict[str, dict]):
    """A spec of these identifier types, read from one source's columns of their names."""
    return make_spec(
        {
            "identifier_types": types,
            "sources": [
                {
                    "name": "s",
                    "path": "s.csv",
                    "format": "csv",
                    "key": "id",
                    "trust": 1,
                    "identifiers": {name: name for name in types},
                },
            ],
        }
    )


def records(rows: dict[str, tuple]) -> pl.DataFrame:
    """Records by key; each row is (email, phone, loyalty_id)."""
    return records_frame(
        [
            {"entity_key": key, **dict(zip(RAW_VALUES, values, strict=True))}
            for key, values in sorted(rows.items())
        ],
        columns=list(RAW_VALUES),
    )


def run(spec, store: ArtifactStore, frame: pl.DataFrame, *, full: bool = False):
    """One run as the identifiers asset does it: look up what is kept, keep what is new."""
    kept = None if full else load_normalized_values(store)
    result = classify_identifiers(spec, frame, kept)
    keep_normalized_values(store, spec, kept, result.fresh, result.used)
    return result


row_values = st.tuples(*(st.none() | st.sampled_from(values) for values in RAW_VALUES.values()))
histories = st.lists(
    st.dictionaries(st.sampled_from([f"s:{n}" for n in range(8)]), row_values, max_size=8),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=histories, spec_changed_at=st.integers(0, 6))
def test_looked_up_runs_equal_full_runs_through_arrivals_replacements_and_removals(
    tmp_path: Path, history: list[dict[str, tuple]], spec_changed_at: int
) -> None:
    store = ArtifactStore(tmp_path / f"run{len(list(tmp_path.iterdir()))}")
    for step, rows in enumerate(history):  # each step: the records of that run
        spec = spec_with(phone={"region": "GB"}) if step >= spec_changed_at else spec_with()
        frame = records(rows)
        assert run(spec, store, frame).table.equals(build_identifiers(spec, frame))


def test_only_values_not_seen_before_are_normalized(tmp_path: Path) -> None:
    store, spec = ArtifactStore(tmp_path), spec_with()
    first = run(spec, store, records({"s:1": ("Ann@Example.com", "212-555-0101", "ab-12")}))
    assert first.fresh.height == 3
    again = run(
        spec,
        store,
        records(
            {
                "s:1": ("Ann@Example.com", "212-555-0101", "ab-12"),
                "s:2": ("b@c.io", "212-555-0101", None),
            }
        ),
    )
    assert again.fresh.get_column("value_raw").to_list() == ["b@c.io"]
    assert run(spec, store, records({"s:2": ("b@c.io", None, None)})).fresh.is_empty()


def test_a_changed_type_is_normalized_again_and_the_others_are_not(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    frame = records({"s:1": ("Ann@Example.com", "+44 20 7946 0958", "ab-12")})
    run(spec_with(), store, frame)
    changed = spec_with(phone={"region": "GB"})
    result = run(changed, store, frame)
    assert result.fresh.get_column("value_raw").to_list() == ["+44 20 7946 0958"]
    assert result.table.equals(build_identifiers(changed, frame))
    # nothing of the type as it was is kept (a type hashed now must leave no plain text)
    fingerprints = set(load_normalized_values(store).get_column("fingerprint"))
    assert fingerprints == set(type_fingerprints(changed).values())
    # a group limit is applied over the whole table every run: no value is normalized again
    limited = spec_with(phone={"region": "GB"}, email={"max_group_size": 5})
    assert run(limited, store, frame).fresh.is_empty()


def test_a_kept_row_whose_key_another_value_shares_is_never_used(tmp_path: Path) -> None:
    spec, frame = spec_with(), records({"s:1": ("Ann@Example.com", None, None)})
    fingerprint = type_fingerprints(spec)["email"]
    key = pl.select(value_key(pl.lit("Ann@Example.com"))).item()
    impostor = pl.DataFrame(
        {
            "fingerprint": [fingerprint],
            "key": [key],
            "value_raw": ["someone@else.com"],
            "value": ["someone@else.com"],
            "status": ["linkable"],
            "reason": [None],
        },
        schema=KEPT_SCHEMA,
    )
    for kept in (impostor, pl.concat([impostor, impostor])):  # twice: a merge cut short
        result = classify_identifiers(spec, frame, kept)
        assert result.table.get_column("value").to_list() == ["ann@example.com"]
        assert result.fresh.is_empty()  # the key stays with the value kept under it


def test_segments_are_merged_into_the_values_in_use(tmp_path: Path) -> None:
    store, spec = ArtifactStore(tmp_path), spec_with()
    folder = tmp_path / "state" / STATE_FOLDER
    for n in range(MAX_SEGMENTS + 1):
        run(spec, store, records({f"s:{n}": (f"user{n}@example.com", None, None)}))
        assert len(list(folder.glob("*.parquet"))) == (n % MAX_SEGMENTS) + 1
    kept = load_normalized_values(store)
    assert kept.get_column("value_raw").to_list() == [f"user{MAX_SEGMENTS}@example.com"]
    run(spec, store, records({"s:1": ("b@c.io", None, None)}), full=True)
    assert load_normalized_values(store).get_column("value_raw").to_list() == ["b@c.io"]
    clear_normalized_values(store)
    assert load_normalized_values(store) is None


def test_types_alike_but_for_their_name_keep_their_own_reasons(tmp_path: Path) -> None:
    inactive = {"normalizer": "email", "active": False}
    spec = spec_of({"email": inactive, "work_email": inactive})
    frame = records_frame(
        [{"entity_key": "s:1", "email": "a@b.co", "work_email": "a@b.co"}],
        columns=["email", "work_email"],
    )
    store = ArtifactStore(tmp_path)
    run(spec, store, frame)
    again = run(spec, store, frame).table
    assert again.equals(build_identifiers(spec, frame))
    assert again.get_column("reason").to_list() == [
        "identifier type 'email' is inactive in the spec",
        "identifier type 'work_email' is inactive in the spec",
    ]
