"""The schema of the identifiers table, whose shape linking, profiling and users rely on:
enforced as the asset's Dagster type and by the ``identifiers_schema`` check.

Its rules are Polars expressions counted in one pass over the table. They name each
failure the way a pandera schema names it (``not_nullable``, ``isin([...])``,
``multiple_fields_uniqueness``, ``dtype('UInt32')``, ``column_in_dataframe`` …), which
this schema was: importing pandera imports pandas, about half a second of every run's
start — a batch run's too — spent before any work.
"""

from typing import NamedTuple

import dagster as dg
import polars as pl

from customer360.core.identifiers import STATUSES
from customer360.core.keys import key_hash
from customer360.core.spec import Spec

SCHEMA_NAME = "IdentifiersSchema"
DESCRIPTION = "One row per (record, identifier type); a linkable row always has a value."
KEY = ["entity_key", "identifier_type"]
LINKABLE_HAS_VALUE = "a linkable identifier has no normalized value"
# Failing values quoted per failed rule when values may be shown.
EXAMPLES = 5


class Column(NamedTuple):
    """A column's type, whether it may be null, and the rule its values keep, if any."""

    dtype: pl.DataType
    nullable: bool
    check: str | None = None  # the value rule's name, shown in the UI and in failures
    valid: pl.Expr | None = None  # true where a non-null value passes the rule


COLUMNS: dict[str, Column] = {
    "entity_key": Column(
        pl.String(),
        False,
        "str_contains(':')",
        pl.col("entity_key").str.contains(":", literal=True),
    ),
    "identifier_type": Column(pl.String(), False),
    "value_raw": Column(pl.String(), False),
    "value": Column(pl.String(), True),
    "status": Column(
        pl.String(), False, f"isin({list(STATUSES)})", pl.col("status").is_in(STATUSES)
    ),
    "reason": Column(pl.String(), True),
    "group_size": Column(pl.UInt32(), True),
}


class _RowRule(NamedTuple):
    """A rule over the table's rows, named as failures report it."""

    column: str  # a column's name, or the schema's for a rule over whole rows
    check: str
    failing: pl.Expr  # true on the rows that break the rule
    case: pl.Expr  # what a failure shows: the value, or the whole row
    suspects: pl.Expr | None = None  # a cheaper count that is 0 when the rule holds


def schema_failures(table: pl.DataFrame) -> pl.DataFrame:
    """Every broken rule with its number of failures and a few failing values (empty when
    the table is valid): columns ``column``, ``check``, ``failures``, ``examples``."""
    found = [(column, check, 1, [case]) for column, check, case in _shape_failures(table.schema)]
    rules = _row_rules(table.schema)
    if rules:
        suspects = table.select(
            (rule.failing.sum() if rule.suspects is None else rule.suspects).alias(str(n))
            for n, rule in enumerate(rules)
        )
        for n, rule in enumerate(rules):
            if suspects.item(0, n):
                cases = table.filter(rule.failing).select(rule.case).to_series()
                if cases.len():
                    found.append(
                        (rule.column, rule.check, cases.len(), cases.head(EXAMPLES).to_list())
                    )
    return pl.DataFrame(
        found,
        schema={
            "column": pl.String,
            "check": pl.String,
            "failures": pl.Int64,
            "examples": pl.List(pl.String),
        },
        orient="row",
    ).sort("column", "check")


def _shape_failures(schema: pl.Schema) -> list[tuple[str, str, str]]:
    """Missing and unexpected columns, and columns of another type."""
    missing = [(SCHEMA_NAME, "column_in_dataframe", name) for name in COLUMNS if name not in schema]
    unexpected = [(SCHEMA_NAME, "column_in_schema", name) for name in schema if name not in COLUMNS]
    mistyped = [
        (name, f"dtype('{column.dtype}')", str(schema[name]))
        for name, column in COLUMNS.items()
        if name in schema and schema[name] != column.dtype
    ]
    return missing + unexpected + mistyped


def _row_rules(schema: pl.Schema) -> list[_RowRule]:
    """The rules over values, for the columns present with their type."""
    usable = {name for name, column in COLUMNS.items() if schema.get(name) == column.dtype}
    rules = []
    for name, column in COLUMNS.items():
        if name not in usable:
            continue
        if not column.nullable:
            shown = pl.col(name).cast(pl.String).fill_null("null")
            rules.append(_RowRule(name, "not_nullable", pl.col(name).is_null(), shown))
        if column.valid is not None:
            failing = pl.col(name).is_not_null() & ~column.valid
            rules.append(_RowRule(name, column.check, failing, pl.col(name)))
    whole_row = pl.struct(pl.all()).struct.json_encode()
    if usable >= set(KEY):
        duplicated = pl.struct(KEY).is_duplicated()
        suspects = pl.len() - key_hash(KEY).n_unique()
        rules.append(
            _RowRule(SCHEMA_NAME, "multiple_fields_uniqueness", duplicated, whole_row, suspects)
        )
    if usable >= {"status", "value"}:
        valid = (pl.col("status") != "linkable") | pl.col("value").is_not_null()
        rules.append(_RowRule(SCHEMA_NAME, LINKABLE_HAS_VALUE, ~valid.fill_null(True), whole_row))
    return [rule._replace(case=rule.case.cast(pl.String)) for rule in rules]


def table_schema() -> dg.TableSchema:
    """The schema as the UI shows it: each column's type, nullability and value rule."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name,
                type=str(column.dtype),
                constraints=dg.TableColumnConstraints(
                    nullable=column.nullable, other=[column.check] if column.check else []
                ),
            )
            for name, column in COLUMNS.items()
        ],
        constraints=dg.TableConstraints(other=[LINKABLE_HAS_VALUE]),
    )


def identifiers_type(spec: Spec) -> dg.DagsterType:
    """The schema as the asset's Dagster type: a failure is described by
    :func:`failure_report`, which quotes values only when the spec allows it."""
    show_values = spec.settings.show_personal_data

    def type_check(_context: dg.TypeCheckContext, value: pl.DataFrame) -> dg.TypeCheck:
        failures = schema_failures(value)
        if failures.is_empty():
            return dg.TypeCheck(success=True)
        return dg.TypeCheck(
            success=False,
            description=failure_report(failures, show_values),
            metadata={"failure_cases": int(failures.get_column("failures").sum())},
        )

    return dg.DagsterType(
        type_check_fn=type_check,
        name=SCHEMA_NAME,
        description=DESCRIPTION,
        metadata={"schema": dg.MetadataValue.table_schema(table_schema())},
        typing_type=pl.DataFrame,
    )


def _cell(text: str) -> str:
    """Text as one Markdown table cell, cut short."""
    return text[:400].replace("|", "\\|")


def failure_report(failures: pl.DataFrame, show_values: bool) -> str:
    """What failed validation (see :func:`schema_failures`), as Markdown: each failing
    (column, check) with its number of failures, and a few failing values or rows only
    when values may be shown."""
    if show_values:
        rows = [
            f"| {column} | {check} | {n} | {_cell(' ; '.join(examples))} |"
            for column, check, n, examples in failures.iter_rows()
        ]
        return "\n".join(
            ["| column | check | failures | examples |", "| --- | --- | --- | --- |", *rows]
        )
    rows = [
        f"| {column} | {check} | {n} |"
        for column, check, n in failures.select("column", "check", "failures").iter_rows()
    ]
    return "\n".join(
        [
            "| column | check | failures |",
            "| --- | --- | --- |",
            *rows,
            "",
            "_Failing values withheld (settings.show_personal_data is off)._",
        ]
    )
