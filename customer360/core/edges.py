"""``identity_edges``: which records are linked, and by what evidence.

Records that share a linkable identifier value form a group. Each group becomes a star
— every member linked to the group's anchor — not a clique: a group of n records gives
n-1 edges instead of n(n-1)/2 and still connects the same records. The anchor is the
member that comes first in the records' canonical order (most trusted, earliest), so
the edges are the same from run to run.
"""

from __future__ import annotations

import polars as pl

EDGE_SCHEMA = {
    "entity_key_a": pl.String,
    "entity_key_b": pl.String,
    "rule": pl.String,
    "identifier_type": pl.String,
    "value": pl.String,
    # The probabilistic model's evidence; null on deterministic edges.
    "match_probability": pl.Float64,
    "match_weight": pl.Float64,
    "evidence": pl.List(pl.Struct({"field": pl.String, "level": pl.String, "weight": pl.Float64})),
}
SKIPPED_GROUP_SCHEMA = {
    "identifier_type": pl.String,
    "value": pl.String,
    "group_size": pl.UInt32,
    "reason": pl.String,
    "sample_members": pl.List(pl.String),
}
SAMPLE_MEMBERS = 5


def build_edges(records: pl.DataFrame, identifiers: pl.DataFrame) -> pl.DataFrame:
    """Star edges from every linkable identifier group to its anchor record."""
    order = records.select("entity_key").with_row_index("record_index")
    linkable = identifiers.filter(pl.col("status") == "linkable").join(
        order, on="entity_key", how="inner"
    )
    anchored = linkable.with_columns(
        pl.col("entity_key")
        .sort_by("record_index")
        .first()
        .over("identifier_type", "value")
        .alias("anchor")
    )
    return (
        anchored.filter(pl.col("entity_key") != pl.col("anchor"))
        .sort("identifier_type", "value", "record_index")
        .select(
            pl.col("anchor").alias("entity_key_a"),
            pl.col("entity_key").alias("entity_key_b"),
            (pl.col("identifier_type") + "_exact").alias("rule"),
            "identifier_type",
            "value",
            pl.lit(None, EDGE_SCHEMA["match_probability"]).alias("match_probability"),
            pl.lit(None, EDGE_SCHEMA["match_weight"]).alias("match_weight"),
            pl.lit(None, EDGE_SCHEMA["evidence"]).alias("evidence"),
        )
    )


def skipped_groups(identifiers: pl.DataFrame) -> pl.DataFrame:
    """Over-size identifier groups that link nothing, with a few members to look at."""
    oversize = identifiers.filter(pl.col("status") == "oversize")
    return (
        oversize.group_by("identifier_type", "value")
        .agg(
            pl.len().cast(pl.UInt32).alias("group_size"),
            pl.col("reason").first(),
            pl.col("entity_key").sort().head(SAMPLE_MEMBERS).alias("sample_members"),
        )
        .sort("group_size", "identifier_type", "value", descending=[True, False, False])
        .select(list(SKIPPED_GROUP_SCHEMA))
        .cast(SKIPPED_GROUP_SCHEMA)
    )
