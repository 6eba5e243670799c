"""The service sees a record's identifiers exactly as the batch will: same mappings,
placeholders, normalizers, exclusions and statuses."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer360.core.identifiers import ValueClassifier, build_identifiers
from customer360.core.readers import read_source
from customer360.core.records import build_records
from customer360.core.spec import IdentifierType, Spec
from customer360.service.mapping import RecordMapper
from customer360_tests.core.conftest import NORMALIZERS, make_spec

SPEC = {
    "identifier_types": {
        "email": {
            "normalizer": "email",
            "exclusions": [
                {"like": "noreply@%", "reason": "no-reply"},
                {"value": "None@None.com", "reason": "placeholder"},
            ],
        },
        "phone": {"normalizer": "phone", "exclusions": [{"value": "0000000000", "reason": "x"}]},
        "loyalty_id": {"normalizer": "expression", "expression": "upper(value)"},
        "fax": {"normalizer": "digits", "active": False},
    },
    "sources": [
        {
            "name": "inbox",
            "path": "inbox/",
            "format": "ndjson",
            "key": "inbox_key",
            "trust": 1,
            "identifiers": {
                "email": "email",
                "phone": "phone",
                "loyalty_id": "replace(card, ' ', '')",  # an expression mapping
                "fax": "fax",
            },
        }
    ],
    "service": {"inbox_source": "inbox"},
}
RECORDS = [
    {"email": "  Ann@Example.COM ", "phone": "(212) 555-0101", "card": "ly 1"},
    {"email": "mailto:<noreply@shop.com>", "phone": "000-000-0000"},
    {"email": "NONE@none.com", "phone": "+44 20 7946 0958", "fax": "555-1"},
    {"email": "N/A", "phone": "12", "card": "  "},
    {"email": "bad@", "phone": "-", "card": "x y z"},
]


def batch_identifiers(spec: Spec, tmp_path: Path, records: list[dict]) -> dict:
    """(entity_key, identifier type) -> (value, status), as the batch finds them in an
    inbox file holding ``records``."""
    (tmp_path / "inbox").mkdir()
    lines = [{"inbox_key": str(n), **record} for n, record in enumerate(records)]
    (tmp_path / "inbox" / "batch.ndjson").write_text("\n".join(map(json.dumps, lines)) + "\n")
    mapped, _ = build_records(spec, {"inbox": read_source(spec, spec.sources[0])})
    return {
        (key, name): (value, status)
        for key, name, value, status in build_identifiers(spec, mapped)
        .select("entity_key", "identifier_type", "value", "status")
        .iter_rows()
    }


def test_the_service_classifies_each_identifier_as_the_batch_does(tmp_path: Path) -> None:
    spec = make_spec(SPEC, tmp_path)
    batch = batch_identifiers(spec, tmp_path, RECORDS)

    mapper = RecordMapper(spec)
    service = {
        (f"inbox:{n}", i.identifier_type): (i.value, i.status)
        for n, record in enumerate(RECORDS)
        for i in mapper.observe(record).identifiers
    }

    assert service == batch
    assert {status for _, status in batch.values()} == {
        "linkable",
        "invalid",
        "excluded",
        "inactive",
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    normalizer=st.sampled_from(sorted(NORMALIZERS)),
    values=st.lists(
        st.one_of(
            st.text(max_size=30),
            st.from_regex(r"\(?[2-9]\d\d\)?[ .-]?\d{3}[ .-]?\d{4}", fullmatch=True),
            st.emails().map(lambda e: f" {e.upper()} "),
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_one_value_at_a_time_gives_what_the_whole_column_gives(normalizer, values) -> None:
    classifier = ValueClassifier("id", IdentifierType(**NORMALIZERS[normalizer]), "US")
    column = classifier.classify(pl.Series(values, dtype=pl.String)).rows()
    one_by_one = [classifier.classify(pl.Series([value])).row(0) for value in values]
    assert one_by_one == column


def test_outputs_over_absent_columns_are_what_the_batch_maps_them_to(tmp_path: Path) -> None:
    """A request brings a few columns; mappings that give a value without their column
    (a default) or read several columns must still map as the batch maps the line."""
    spec_dict = json.loads(json.dumps(SPEC))
    spec_dict["identifier_types"]["fax"] = {"normalizer": "digits"}
    spec_dict["identifier_types"]["loyalty_id"] = {
        "normalizer": "expression",
        "expression": "upper(value)",
    }
    inbox = spec_dict["sources"][0]
    inbox["identifiers"] |= {
        "loyalty_id": "coalesce(card, 'ly-guest')",  # a default when the card is absent
        "fax": "concat_ws('', fax, phone)",  # two columns, either may be absent
    }
    inbox["attributes"] = {"first_name": "coalesce(first_name, nickname)"}
    spec_dict["identifier_types"]["phone"]["corroborate"] = "first_name"
    spec = make_spec(spec_dict, tmp_path)
    records = [
        {"email": "ann@example.com"},
        {"card": "ly 7"},
        {"phone": "212 555 0101", "nickname": "Annie"},
        {"fax": "1-800", "first_name": " ANN "},
        {"fax": "1-800", "phone": "212 555 0101", "card": "x", "first_name": "Ann"},
    ]
    batch = batch_identifiers(spec, tmp_path, records)

    mapper = RecordMapper(spec)
    observed = [mapper.observe(record) for record in records]
    service = {
        (f"inbox:{n}", i.identifier_type): (i.value, i.status)
        for n, observation in enumerate(observed)
        for i in observation.identifiers
    }

    assert service == batch
    assert batch[("inbox:0", "loyalty_id")] == ("LY-GUEST", "linkable")
    assert batch[("inbox:2", "fax")] == ("2125550101", "linkable")
    names = [o.names["first_name"] for o in observed]
    assert names == [None, None, "annie", "ann", "ann"]
