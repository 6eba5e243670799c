"""``traits``: every observation of a golden-profile attribute, in long form.

One row per (record, attribute) with a value: the mapped attributes of the record and
its usable identifiers (normalized, not invalid or excluded) as ``<type>_primary``.
Survivorship chooses among these; keeping them as a table shows every value a customer
was ever seen with, and where.
"""

from __future__ import annotations

import polars as pl

from customer360.core.keys import hashed_when_distinct
from customer360.core.spec import Spec

TRAIT_SCHEMA = {
    "entity_key": pl.String,
    "attribute": pl.String,
    "value": pl.String,
    "observed_at": pl.Datetime("us"),
    "source": pl.String,
    "trust": pl.Int32,
}
USABLE_IDENTIFIER_STATUSES = ["linkable", "oversize"]
# The columns of records an observation carries.
OBSERVATION_PROVENANCE = ["entity_key", "source", "trust", "updated_at"]


def build_traits(
    spec: Spec, records: pl.DataFrame, identifiers: pl.DataFrame | pl.LazyFrame
) -> pl.DataFrame:
    """All attribute and identifier observations with their source, trust and time.

    Observations are first collected as (record row, attribute, value) — one attribute
    at a time, without its empty values — and the record's provenance is gathered once
    for all of them at the end, instead of being copied for every (record, attribute)
    pair before the empty ones are dropped. ``identifiers`` may be a scan of the stored
    table: only its usable rows are read.
    """
    row = pl.int_range(pl.len(), dtype=pl.UInt32).alias("row")
    attributes = [a for a in spec.attribute_names if a in records.columns]
    mapped = [
        records.select(
            row, pl.lit(a).alias("attribute"), pl.col(a).cast(pl.String).alias("value")
        ).drop_nulls("value")
        for a in attributes
    ]
    # identifier values find their record's row by the hash of its key (see core.keys)
    key = hashed_when_distinct(records.get_column("entity_key"))
    identified = (
        identifiers.lazy()
        .filter(pl.col("status").is_in(USABLE_IDENTIFIER_STATUSES))
        .select(
            key("entity_key"), (pl.col("identifier_type") + "_primary").alias("attribute"), "value"
        )
        .join(records.lazy().select(key("entity_key"), row), on="entity_key", maintain_order="left")
        .select("row", "attribute", pl.col("value").cast(pl.String))
        .drop_nulls("value")
        .collect()
    )
    observations = pl.concat([*mapped, identified]).rechunk()
    # the rechunked copy is all that is read from here on: the parts go before the
    # provenance is gathered, the step's peak (at ten million records, about 1.2 GB)
    del mapped, identified
    provenance = records.select(OBSERVATION_PROVENANCE).gather(observations.get_column("row"))
    return (
        pl.concat([provenance, observations.drop("row")], how="horizontal")
        .rename({"updated_at": "observed_at"})
        .select(list(TRAIT_SCHEMA))
        .cast(TRAIT_SCHEMA)
    )
