"""Pandera schemas of tables whose shape other stages and users rely on."""

from __future__ import annotations

import warnings

import dagster as dg
import pandera.polars as pa
import polars as pl
from dagster_pandera import pandera_schema_to_dagster_type

from customer360.core.identifiers import STATUSES


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
    IdentifiersType = pandera_schema_to_dagster_type(IdentifiersSchema)
