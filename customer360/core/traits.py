"""``traits``: every observation of a golden-profile attribute, in long form.

One row per (record, attribute) with a value: the mapped attributes of the record and
its usable identifiers (normalized, not invalid or excluded) as ``<type>_primary``.
Survivorship chooses among these; keeping them as a table shows every value a customer
was ever seen with, and where.
"""

from __future__ import annotations

import polars as pl

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


def build_traits(spec: Spec, records: pl.DataFrame, identifiers: pl.DataFrame) -> pl.DataFrame:
    """All attribute and identifier observations with their source, trust and time."""
    provenance = OBSERVATION_PROVENANCE
    attributes = [a for a in spec.attribute_names if a in records.columns]
    mapped = (
        records.select(*provenance, *attributes)
        .unpivot(on=attributes, index=provenance, variable_name="attribute", value_name="value")
        .cast({"value": pl.String})  # no attributes: an all-null column
    )
    identified = (
        identifiers.filter(pl.col("status").is_in(USABLE_IDENTIFIER_STATUSES))
        .select("entity_key", (pl.col("identifier_type") + "_primary").alias("attribute"), "value")
        .join(records.select(provenance), on="entity_key")
        .select(mapped.columns)
    )
    return (
        pl.concat([mapped, identified])
        .drop_nulls("value")
        .select(pl.col("updated_at").alias("observed_at"), pl.exclude("updated_at"))
        .select(list(TRAIT_SCHEMA))
        .cast(TRAIT_SCHEMA)
    )
