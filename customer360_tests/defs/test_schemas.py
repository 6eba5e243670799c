"""The identifiers schema: a failure says what failed, and quotes values only when shown."""

from __future__ import annotations

import dagster as dg
import pandera.errors
import polars as pl
import pytest

from customer360.core.identifiers import STATUSES
from customer360.defs.schemas import IdentifiersSchema, identifiers_type, passes_plainly
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


def valid_identifiers() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "entity_key": ["crm:C1", "crm:C1", "web:W1"],
            "identifier_type": ["email", "phone", "email"],
            "value_raw": ["john@acme.com", "n/a", "JOHN@acme.com"],
            "value": ["john@acme.com", None, "john@acme.com"],
            "status": ["linkable", "invalid", "linkable"],
            "reason": [None, "not a valid phone value", None],
            "group_size": [2, None, 2],
        },
        schema_overrides={"group_size": pl.UInt32},
    )


BROKEN_RULES = {
    "extra column": lambda f: f.with_columns(pl.lit(1).alias("extra")),
    "missing column": lambda f: f.drop("reason"),
    "wrong type": lambda f: f.with_columns(pl.col("group_size").cast(pl.Int64)),
    "entity_key null": lambda f: f.with_columns(pl.lit(None, pl.String).alias("entity_key")),
    "identifier_type null": lambda f: f.with_columns(
        pl.lit(None, pl.String).alias("identifier_type")
    ),
    "value_raw null": lambda f: f.with_columns(pl.lit(None, pl.String).alias("value_raw")),
    "status null": lambda f: f.with_columns(pl.lit(None, pl.String).alias("status")),
    "entity_key without source": lambda f: f.with_columns(pl.lit("C1").alias("entity_key")),
    "unknown status": lambda f: f.with_columns(pl.lit("maybe").alias("status")),
    "repeated pair": lambda f: f.with_columns(pl.lit("email").alias("identifier_type")),
    "linkable without value": lambda f: f.with_columns(pl.lit(None, pl.String).alias("value")),
}


def test_a_valid_table_passes_the_plain_test_and_the_schema() -> None:
    assert passes_plainly(valid_identifiers())
    IdentifiersSchema.validate(valid_identifiers())


@pytest.mark.parametrize("broken", BROKEN_RULES)
def test_the_plain_test_passes_nothing_the_schema_fails(broken: str) -> None:
    frame = BROKEN_RULES[broken](valid_identifiers())
    assert not passes_plainly(frame)
    with pytest.raises(pandera.errors.SchemaErrors):
        IdentifiersSchema.validate(frame, lazy=True)


def test_the_plain_test_knows_every_rule_of_the_schema() -> None:
    # a rule added to the schema must be added to passes_plainly (and to BROKEN_RULES)
    schema = IdentifiersSchema.to_schema()
    rules = {
        name: (str(column.dtype), column.nullable, [(c.name, c.statistics) for c in column.checks])
        for name, column in schema.columns.items()
    }
    assert rules == {
        "entity_key": ("String", False, [("str_contains", {"pattern": ":"})]),
        "identifier_type": ("String", False, []),
        "value_raw": ("String", False, []),
        "value": ("String", True, []),
        "status": ("String", False, [("isin", {"allowed_values": list(STATUSES)})]),
        "reason": ("String", True, []),
        "group_size": ("UInt32", True, []),
    }
    assert (schema.strict, schema.unique, schema.coerce) == (
        True,
        ["entity_key", "identifier_type"],
        False,
    )
    assert [check.name for check in schema.checks] == ["linkable_rows_have_values"]
