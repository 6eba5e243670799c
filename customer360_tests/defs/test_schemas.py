"""The identifiers schema: a failure says what failed, and quotes values only when shown."""

from __future__ import annotations

import dagster as dg
import polars as pl
import pytest

from customer360.defs.schemas import identifiers_type
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
