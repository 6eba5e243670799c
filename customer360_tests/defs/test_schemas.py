"""The identifiers schema: a failure says what failed, and quotes values only when shown."""

from __future__ import annotations

import dagster as dg
import polars as pl
import pytest

from customer360.defs.schemas import identifiers_type, schema_failures
from customer360_tests.core.conftest import make_spec, spec_dict


def linkable_row_without_value() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "entity_key": ["crm:C1"],
            "identifier_type": ["email"],
            "value_raw": ["john@acme.com"],
            "value": [None],
            "status": ["linkable"],
            "reason": [None],
            "group_size": [1],
        },
        schema_overrides={"value": pl.String, "reason": pl.String, "group_size": pl.UInt32},
    )


@pytest.mark.parametrize("shown", [False, True], ids=["hidden", "shown"])
def test_a_failed_type_check_quotes_values_only_when_personal_data_is_shown(shown: bool) -> None:
    spec = make_spec(spec_dict(settings={"show_personal_data": shown}))
    result = dg.check_dagster_type(identifiers_type(spec), linkable_row_without_value())
    assert not result.success
    assert "a linkable identifier has no normalized value" in result.description
    assert ("john@acme.com" in result.description) is shown


def test_valid_identifiers_pass() -> None:
    valid = linkable_row_without_value().with_columns(value=pl.lit("john@acme.com"))
    assert dg.check_dagster_type(identifiers_type(make_spec(spec_dict())), valid).success


def test_every_broken_rule_is_named_and_counted() -> None:
    valid = linkable_row_without_value().with_columns(value=pl.lit("john@acme.com"))
    broken = pl.concat(
        [
            valid,
            valid,  # the same (entity_key, identifier_type) twice, with the row above
            valid.with_columns(entity_key=pl.lit("no-colon"), status=pl.lit("unheard-of")),
            valid.with_columns(entity_key=pl.lit("crm:C2"), value_raw=None, value=None),
            valid.with_columns(entity_key=pl.lit("crm:C3"), value_raw=None),
        ]
    )
    failures = schema_failures(broken)
    assert failures.select("column", "check", "failures").rows() == [
        ("IdentifiersSchema", "a linkable identifier has no normalized value", 1),
        ("IdentifiersSchema", "multiple_fields_uniqueness", 2),
        ("entity_key", "str_contains(':')", 1),
        ("status", "isin(['linkable', 'inactive', 'invalid', 'excluded', 'oversize'])", 1),
        ("value_raw", "not_nullable", 2),
    ]
    assert failures.filter(pl.col("column") == "entity_key")["examples"].to_list() == [["no-colon"]]


def test_missing_unexpected_and_mistyped_columns_fail() -> None:
    valid = linkable_row_without_value().with_columns(value=pl.lit("john@acme.com"))
    reshaped = valid.drop("reason").with_columns(
        pl.col("group_size").cast(pl.Int64), extra=pl.lit(1)
    )
    assert schema_failures(reshaped).select("column", "check", "examples").rows() == [
        ("IdentifiersSchema", "column_in_dataframe", ["reason"]),
        ("IdentifiersSchema", "column_in_schema", ["extra"]),
        ("group_size", "dtype('UInt32')", ["Int64"]),
    ]


def test_a_linkable_row_without_status_is_not_reported_twice() -> None:
    """A null status fails as null, not also as a linkable row without a value."""
    row = linkable_row_without_value().with_columns(status=pl.lit(None, pl.String))
    assert schema_failures(row).select("column", "check").rows() == [("status", "not_nullable")]


def test_the_type_shows_the_schema_in_the_ui() -> None:
    schema = identifiers_type(make_spec(spec_dict())).metadata["schema"].schema
    assert [(c.name, c.type, c.constraints.nullable) for c in schema.columns][:2] == [
        ("entity_key", "String", False),
        ("identifier_type", "String", False),
    ]
    assert schema.columns[0].constraints.other == ["str_contains(':')"]
    assert schema.constraints.other == ["a linkable identifier has no normalized value"]
