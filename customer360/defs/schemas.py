"""Pandera schemas of tables whose shape other stages and users rely on."""

import warnings

import dagster as dg
import pandera.errors
import pandera.polars as pa
import polars as pl
from dagster_pandera import pandera_schema_to_dagster_type

from customer360.core.identifiers import STATUSES
from customer360.core.spec import Spec


class IdentifiersSchema(pa.DataFrameModel):
    """One row per (record, identifier type); a linkable row always has a value."""

    entity_key: str = pa.Field(nullable=False, str_contains=":")
    identifier_type: str = pa.Field(nullable=False)
    value_raw: str = pa.Field(nullable=False)
    value: str = pa.Field(nullable=True)
    status: str = pa.Field(nullable=False, isin=list(STATUSES))
    reason: str = pa.Field(nullable=True)
    group_size: pl.UInt32 = pa.Field(nullable=True)

    class Config:
        strict = True
        unique = ["entity_key", "identifier_type"]

    @pa.dataframe_check(error="a linkable identifier has no normalized value")
    def linkable_rows_have_values(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("status") != "linkable") | pl.col("value").is_not_null()
        )


with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    _PANDERA_TYPE = pandera_schema_to_dagster_type(IdentifiersSchema)


def identifiers_type(spec: Spec) -> dg.DagsterType:
    """The identifiers schema as the asset's Dagster type, with dagster-pandera's name,
    description and column schema — but a failure is described by :func:`failure_report`:
    pandera's own text quotes failing values and whole rows."""
    show_values = spec.settings.show_personal_data

    def type_check(_context: dg.TypeCheckContext, value: pl.DataFrame) -> dg.TypeCheck:
        try:
            IdentifiersSchema.validate(value, lazy=True)
        except pandera.errors.SchemaErrors as errors:
            return dg.TypeCheck(
                success=False,
                description=failure_report(errors, show_values),
                metadata={"failure_cases": len(errors.failure_cases)},
            )
        return dg.TypeCheck(success=True)

    return dg.DagsterType(
        type_check_fn=type_check,
        name=_PANDERA_TYPE.unique_name,
        description=_PANDERA_TYPE.description,
        metadata=_PANDERA_TYPE.metadata,
        typing_type=pl.DataFrame,
    )


def failure_report(errors: pandera.errors.SchemaErrors, show_values: bool) -> str:
    """What failed validation, as Markdown: pandera's own report when values may be shown,
    else each failing (column, check) with its number of failures and no values."""
    if show_values:
        return f"```\n{str(errors)[:2000]}\n```"
    counts = errors.failure_cases.group_by("column", "check").len().sort("column", "check")
    rows = [f"| {column} | {check} | {n} |" for column, check, n in counts.iter_rows()]
    return "\n".join(
        [
            "| column | check | failures |",
            "| --- | --- | --- |",
            *rows,
            "",
            "_Failing values withheld (settings.show_personal_data is off)._",
        ]
    )
