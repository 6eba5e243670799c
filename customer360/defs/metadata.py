"""Metadata every asset shows in the UI: column schema, row count, a small preview."""

import dagster as dg
import polars as pl

from customer360.core.privacy import personal_columns
from customer360.core.spec import Spec
from customer360.defs.column_docs import COLUMN_DOCS


def table_schema(schema: pl.Schema, extra_docs: dict[str, str] | None = None) -> dg.TableSchema:
    docs = {**COLUMN_DOCS, **(extra_docs or {})}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=str(dtype), description=docs.get(name))
            for name, dtype in schema.items()
        ]
    )


def preview(frame: pl.DataFrame, spec: Spec, rows: int = 5) -> dg.MetadataValue:
    """The first rows as a Markdown table. Unless the spec's ``settings.show_personal_data``
    is on, personal columns (see :func:`personal_columns`) are left out and named below
    the table: run metadata is read by more people than the outputs are."""
    personal = personal_columns(spec)
    withheld = (
        [] if spec.settings.show_personal_data else [c for c in frame.columns if c in personal]
    )
    lines = _markdown(frame.drop(withheld), rows)
    if withheld:
        lines.append(
            f"\n_Withheld as personal (settings.show_personal_data is off): {', '.join(withheld)}_"
        )
    return dg.MetadataValue.md("\n".join(lines))


def figures(frame: pl.DataFrame) -> dg.MetadataValue:
    """A whole table of figures (metric names, counts, shares, scores: nothing personal)
    as Markdown."""
    return dg.MetadataValue.md("\n".join(_markdown(frame, frame.height)))


def _markdown(frame: pl.DataFrame, rows: int) -> list[str]:
    """The first rows as Markdown table lines (lists joined, long text cut)."""
    if not frame.columns:
        return []
    head = frame.head(rows).with_columns(
        pl.col(pl.List(pl.String)).list.join(", "),
    )
    text = head.select(pl.all().cast(pl.String).fill_null("").str.slice(0, 40))
    header = "| " + " | ".join(text.columns) + " |"
    rule = "| " + " | ".join("---" for _ in text.columns) + " |"
    body = ["| " + " | ".join(row) + " |" for row in text.iter_rows()]
    return [header, rule, *body]
