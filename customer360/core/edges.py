"""``identity_edges``: which records are linked, and by what evidence.

Records that share a linkable identifier value form a group. Each group becomes a star
— every member linked to the group's anchor — not a clique: a group of n records gives
n-1 edges instead of n(n-1)/2 and still connects the same records. The anchor is the
member that comes first in the records' canonical order (most trusted, earliest), so
the edges are the same from run to run.

Some identifiers are shared by people who live or work together: a household landline,
a family loyalty card. An identifier type with ``corroborate: <attribute>`` is guarded:
when records in one of its groups carry conflicting values of that attribute (first
names that are neither equal, a nickname of each other nor a typo away), the group is
no longer taken as one person. It then links only the pairs of records that agree on
the attribute, and records without it are not linked through that value at all. The
guarded groups are listed beside the over-size ones.
"""

from __future__ import annotations

from typing import NamedTuple

import duckdb
import polars as pl

from customer360.core.keys import hashed_when_distinct
from customer360.core.names import NameAgreement, compatible_sql, name_key, nickname_pairs

EDGE_SCHEMA = {
    "entity_key_a": pl.String,
    "entity_key_b": pl.String,
    "rule": pl.String,
    "identifier_type": pl.String,
    "value": pl.String,
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
GUARDED_REASON = "conflicting {attribute}: links only records that agree on it"
"""The reason skipped_groups gives a guarded group (the metrics count them by it)."""


def is_guarded(reason: pl.Expr) -> pl.Expr:
    """True for skipped_groups rows that the corroboration guard limited."""
    return reason.str.starts_with(GUARDED_REASON.split("{", 1)[0])


class IdentifierLinks(NamedTuple):
    edges: pl.DataFrame
    """In EDGE_SCHEMA."""
    guarded_groups: pl.DataFrame
    """Groups whose conflicting attribute values limited what they link (SKIPPED_GROUP_SCHEMA)."""


def build_edges(
    records: pl.DataFrame,
    identifiers: pl.DataFrame | pl.LazyFrame,
    corroborate: dict[str, str] | None = None,
) -> IdentifierLinks:
    """Edges from every linkable identifier group, and the groups the guard held back.

    ``corroborate`` maps an identifier type to the attribute (a column of ``records``)
    that must not conflict inside its groups. ``identifiers`` may be a scan: only its
    linkable rows are then loaded.
    """
    corroborate = corroborate or {}
    linkable = _linkable_groups(records, identifiers)
    conflicting, agreeing_pairs = _guarded_groups(records, linkable, corroborate)
    held_back = pl.col("group").is_in(conflicting.implode())
    anchor_row = (pl.col("group") != pl.col("group").shift()).fill_null(True)
    star = (
        linkable.filter(~held_back)
        .with_columns(anchor_row.alias("anchor_row"))
        .with_columns(pl.when("anchor_row").then("entity_key").forward_fill().alias("anchor"))
        .filter(~pl.col("anchor_row"))
        .select(
            pl.col("anchor").alias("entity_key_a"),
            pl.col("entity_key").alias("entity_key_b"),
            "identifier_type",
            "value",
        )
    )
    edges = pl.concat([star, agreeing_pairs]).with_columns(
        (pl.col("identifier_type") + "_exact").alias("rule")
    )
    return IdentifierLinks(
        _with_edge_schema(edges), _held_back(linkable.filter(held_back), corroborate)
    )


def _linkable_groups(
    records: pl.DataFrame, identifiers: pl.DataFrame | pl.LazyFrame
) -> pl.DataFrame:
    """identifier_type, value, entity_key of every linkable identifier, with its record's
    position in the canonical order (``record_index``) and the number of its group
    (``group``), sorted by group and then canonical order: each group's first row is its
    anchor, and group numbers follow (identifier_type, value) in text order.

    The groups are then told apart by one integer rather than two text columns, and the
    rows are sorted type by type on (value, record_index): about half the work of one
    sort on all three columns. Records are found by the 64-bit hashes of their keys when
    those are distinct (see :mod:`customer360.core.keys`; identifiers are made from the
    records): an integer join, a fraction of the memory of a text one. The rows carry
    only the record's position through the join and the sorts; its key is gathered
    from the records once they are in order. Sorted, a row starts a group where its
    value or type differs from the row before.
    """
    key = hashed_when_distinct(records.get_column("entity_key"))
    order = records.select(key("entity_key").alias("key")).with_row_index("record_index")
    linkable = (
        identifiers.lazy()
        .filter(pl.col("status") == "linkable")
        .select("identifier_type", "value", key("entity_key").alias("key"))
        .join(order.lazy(), on="key", how="inner")
        .drop("key")
        .collect()
    )
    types = linkable.get_column("identifier_type").unique().sort()
    by_type = [
        linkable.filter(pl.col("identifier_type") == id_type).sort("value", "record_index")
        for id_type in types
    ]
    empty = linkable.clear()  # the columns, when no row is linkable
    del linkable
    starts = pl.any_horizontal(
        (pl.col(column) != pl.col(column).shift()).fill_null(True)
        for column in ("identifier_type", "value")
    )
    groups = pl.concat([empty, *by_type])
    keys = records.get_column("entity_key").gather(groups.get_column("record_index"))
    return groups.select(
        "identifier_type",
        "value",
        keys.alias("entity_key"),
        "record_index",
        (starts.cum_sum() - 1).cast(pl.UInt32).alias("group"),
    )


def _guarded_groups(
    records: pl.DataFrame, linkable: pl.DataFrame, corroborate: dict[str, str]
) -> tuple[pl.Series, pl.DataFrame]:
    """(the numbers of the groups with conflicting attribute values, the agreeing pairs
    inside them)."""
    no_pairs = pl.DataFrame(
        schema={
            k: EDGE_SCHEMA[k] for k in ("entity_key_a", "entity_key_b", "identifier_type", "value")
        }
    )
    no_groups = pl.Series("group", [], dtype=pl.UInt32)
    if not corroborate:
        return no_groups, no_pairs
    rows = linkable.select("group", "record_index").with_row_index("row")
    keyed = pl.concat(
        [
            _with_name_keys(
                rows.filter(linkable.get_column("identifier_type") == id_type), records, attribute
            )
            for id_type, attribute in corroborate.items()
        ]
    ).filter(pl.col("agree_on").is_not_null())
    # a group naming one spelling only cannot conflict: only the others need pairs
    members = keyed.filter(pl.col("agree_on").n_unique().over("group") > 1)
    pairs = (
        members.join(members, on="group", suffix="_b")
        .filter(pl.col("record_index") < pl.col("record_index_b"))
        .sort("group", "record_index", "record_index_b")
    )
    pairs = pairs.join(
        _name_agreement(pairs.select("agree_on", "agree_on_b").unique()),
        on=["agree_on", "agree_on_b"],
        maintain_order="left",
    )
    conflicting = pairs.filter(~pl.col("agree")).get_column("group").unique().sort()
    agreeing = pairs.filter(pl.col("agree"), pl.col("group").is_in(conflicting.implode()))
    ends = linkable.select("entity_key", "identifier_type", "value")
    pair_rows = ends.gather(agreeing.get_column("row"))
    agreeing_pairs = pair_rows.select(
        pl.col("entity_key").alias("entity_key_a"),
        ends.get_column("entity_key").gather(agreeing.get_column("row_b")).alias("entity_key_b"),
        "identifier_type",
        "value",
    )
    return conflicting.cast(pl.UInt32), agreeing_pairs


def _with_name_keys(members: pl.DataFrame, records: pl.DataFrame, attribute: str) -> pl.DataFrame:
    """Members with the name key of their record's ``attribute`` as ``agree_on``, looked
    up by record position (``record_index``) rather than by joining on the entity key,
    and keyed only for the members rather than for every record."""
    names = records.get_column(attribute).gather(members.get_column("record_index"))
    return members.with_columns(names.alias("agree_on")).with_columns(
        name_key("agree_on").alias("agree_on")
    )


def _name_agreement(spellings: pl.DataFrame) -> pl.DataFrame:
    """Whether each pair of name keys (``agree_on``, ``agree_on_b``) may be one person's.

    The rule depends on the two spellings only, and the record pairs of guarded groups
    repeat the same few spellings: deciding each distinct pair once is ten times less
    work than deciding every record pair.
    """
    with duckdb.connect() as con:
        con.register("spellings", spellings.to_arrow())
        con.register("nickname_pairs", nickname_pairs().to_arrow())
        return con.sql(
            f"""
            SELECT agree_on, agree_on_b, {compatible_sql("agree_on", "agree_on_b")} AS agree
            FROM spellings
            """
        ).pl()


def guarded_partners(
    member_names: list[str | None], name: str | None, agreement: NameAgreement
) -> list[int] | None:
    """What :func:`build_edges` makes of one more record joining a guarded group: the
    group's rule applied to one record at a time, for the resolve service.

    ``member_names`` are the name keys of the group's records, ``name`` the newcomer's.
    None when the group with the newcomer names no conflicting spellings: it links like
    any group, through its anchor. Otherwise the indexes of the members whose names
    agree with the newcomer's — the pairs the batch keeps — and none when the newcomer
    has no name.
    """
    spellings = sorted({n for n in [*member_names, name] if n is not None})
    conflict = any(
        not agreement.compatible(left, right)
        for i, left in enumerate(spellings)
        for right in spellings[i + 1 :]
    )
    if not conflict:
        return None
    if name is None:
        return []
    return [
        index
        for index, member in enumerate(member_names)
        if member is not None and agreement.compatible(name, member)
    ]


def _held_back(members: pl.DataFrame, corroborate: dict[str, str]) -> pl.DataFrame:
    """The guarded groups (``members``: their rows), in the shape of skipped_groups."""
    reasons = pl.DataFrame(
        {
            "identifier_type": list(corroborate),
            "reason": [
                GUARDED_REASON.format(attribute=attribute) for attribute in corroborate.values()
            ],
        },
        schema={"identifier_type": pl.String, "reason": pl.String},
    )
    return _group_summary(members.join(reasons, on="identifier_type"))


def skipped_groups(
    identifiers: pl.DataFrame | pl.LazyFrame, guarded: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Over-size groups that link nothing and guarded groups that link only agreeing
    records, each with a few members to look at (``identifiers`` may be a scan)."""
    oversize = _group_summary(identifiers.lazy().filter(pl.col("status") == "oversize").collect())
    held = [guarded] if guarded is not None else []
    return pl.concat([oversize, *held]).sort(
        "group_size", "identifier_type", "value", descending=[True, False, False]
    )


def _group_summary(members: pl.DataFrame) -> pl.DataFrame:
    return (
        members.group_by("identifier_type", "value")
        .agg(
            pl.len().cast(pl.UInt32).alias("group_size"),
            pl.col("reason").first(),
            pl.col("entity_key").sort().head(SAMPLE_MEMBERS).alias("sample_members"),
        )
        .select(list(SKIPPED_GROUP_SCHEMA))
        .cast(SKIPPED_GROUP_SCHEMA)
    )


def _with_edge_schema(edges: pl.DataFrame) -> pl.DataFrame:
    """Identifier edges in the shared edge schema (the match columns stay empty)."""
    return edges.with_columns(
        pl.lit(None, EDGE_SCHEMA[column]).alias(column)
        for column in EDGE_SCHEMA
        if column not in edges.columns
    ).select(list(EDGE_SCHEMA))
