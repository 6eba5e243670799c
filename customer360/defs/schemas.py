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
_SCHEMA = IdentifiersSchema.to_schema()
_HASH_SEED = 0x1D5


def passes_plainly(frame: pl.DataFrame) -> bool:
    """Whether ``frame`` holds to IdentifiersSchema, tested by one pass of Polars over it.

    pandera makes a pass per rule and compares the key pairs as text, which costs twice
    as much at a million records; here the pairs are compared by a 64-bit hash. Only a
    pass is conclusive (distinct hashes prove the pairs unique): a frame that fails —
    one rule broken, or two pairs sharing a hash — is left to pandera, which names what
    failed. A test keeps these rules and the schema's the same.
    """
    if frame.schema != {name: column.dtype.type for name, column in _SCHEMA.columns.items()}:
        return False
    required = [name for name, column in _SCHEMA.columns.items() if not column.nullable]
    rules = [
        pl.all_horizontal(pl.col(name).null_count() == 0 for name in required),
        pl.col("entity_key").str.contains(":", literal=True).all(),
        pl.col("status").is_in(STATUSES).all(),
        ((pl.col("status") != "linkable") | pl.col("value").is_not_null()).all(),
        pl.struct(_SCHEMA.unique).hash(_HASH_SEED).n_unique() == pl.len(),
    ]
    return all(frame.select(rule.alias(str(i)) for i, rule in enumerate(rules)).row(0))


def identifiers_type(spec: Spec) -> dg.DagsterType:
    """The identifiers schema as the asset's Dagster type, with dagster-pandera's name,
    description and column schema — but a failure is described by :func:`failure_report`:
    pandera's own text quotes failing values and whole rows."""
    show_values = spec.settings.show_personal_data

    def type_check(_context: dg.TypeCheckContext, value: pl.DataFrame) -> dg.TypeCheck:
        if isinstance(value, pl.DataFrame) and passes_plainly(value):
            return dg.TypeCheck(success=True)
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
