"""Metadata every asset shows in the UI: column schema, row count, a small preview."""

from __future__ import annotations

import dagster as dg
import polars as pl

from customer360.defs.column_docs import COLUMN_DOCS


def table_schema(frame: pl.DataFrame, extra_docs: dict[str, str] | None = None) -> dg.TableSchema:
    docs = {**COLUMN_DOCS, **(extra_docs or {})}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=str(dtype), description=docs.get(name))
            for name, dtype in frame.schema.items()
        ]
    )


def preview(frame: pl.DataFrame, rows: int = 5) -> dg.MetadataValue:
    """The first rows as a Markdown table (lists joined, long text cut)."""
    head = frame.head(rows).with_columns(
        pl.col(pl.List(pl.String)).list.join(", "),
    )
    text = head.select(pl.all().cast(pl.String).fill_null("").str.slice(0, 40))
    header = "| " + " | ".join(text.columns) + " |"
    rule = "| " + " | ".join("---" for _ in text.columns) + " |"
    body = ["| " + " | ".join(row) + " |" for row in text.iter_rows()]
    return dg.MetadataValue.md("\n".join([header, rule, *body]))
