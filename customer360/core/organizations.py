"""Organizations (B2B accounts) resolved from the person records that mention them.

A person record carries up to three organization identifiers:
- ``domain``: the domain of its work email — free-mail domains say nothing about an
  employer and are skipped; over-size email groups still count (a shared
  ``info@acme.com`` mailbox is not a person, but it is certainly Acme);
- ``company``: the company name, normalized so that 'ACME, Inc.', 'Acme Inc' and 'acme'
  agree (lower case, no punctuation, no trailing legal-form words);
- ``account``: an account id from a CRM, trimmed and upper-cased.

Records sharing any (kind, value) belong to the same organization, found as connected
components of star edges exactly like people are. The organization id is derived from
the component's content — its most frequent domain, else account id, else company
name — never from row positions, so it is stable from run to run and independent of
input order. A person (resolved_id) belongs to every organization one of their records
points at.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from customer360.core.clusters import component_labels
from customer360.core.frames import aligned_or_joined
from customer360.core.spec import Organizations

LEGAL_SUFFIXES = [
    "inc",
    "incorporated",
    "llc",
    "ltd",
    "limited",
    "corp",
    "corporation",
    "co",
    "company",
    "plc",
    "gmbh",
    "ag",
    "sa",
]
ORGANIZATION_SCHEMA = {
    "organization_id": pl.String,
    "name": pl.String,
    "domains": pl.List(pl.String),
    "account_ids": pl.List(pl.String),
    "person_count": pl.UInt32,
    "record_count": pl.UInt32,
    "first_seen": pl.Datetime("us"),
    "last_seen": pl.Datetime("us"),
}
MEMBERSHIPS_SCHEMA = {
    "resolved_id": pl.String,
    "organization_id": pl.String,
    "role": pl.String,
    "first_seen": pl.Datetime("us"),
    "last_seen": pl.Datetime("us"),
    "record_count": pl.UInt32,
}
KEY_SCHEMA = {"entity_key": pl.String, "kind": pl.String, "value": pl.String}
# The order in which a component's identifiers name it.
ID_KINDS = ("domain", "account", "company")
NO_VALUES = pl.lit([], dtype=pl.List(pl.String))


def resolve_organizations(
    settings: Organizations,
    records: pl.DataFrame,
    identifiers: pl.DataFrame,
    membership: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(organizations, memberships) from the person records' organization identifiers."""
    people = _person_records(settings, records, membership)
    keys = organization_keys(settings, records, identifiers).join(
        people.select("entity_key"), on="entity_key", how="semi"
    )
    if keys.is_empty():
        return pl.DataFrame(schema=ORGANIZATION_SCHEMA), pl.DataFrame(schema=MEMBERSHIPS_SCHEMA)
    components = _components(keys)
    keys = keys.join(components, on="entity_key")
    named = components.join(_organization_ids(keys), on="component").join(people, on="entity_key")
    return _organizations(named, keys), _memberships(named)


def organization_keys(
    settings: Organizations, records: pl.DataFrame, identifiers: pl.DataFrame
) -> pl.DataFrame:
    """entity_key, kind (domain | company | account), value: one row per distinct key."""
    parts = [pl.DataFrame(schema=KEY_SCHEMA)]
    if settings.email_identifier:
        free_mail = sorted(free_mail_with_typos(settings.free_mail_domains))
        emails = identifiers.filter(
            (pl.col("identifier_type") == settings.email_identifier)
            & pl.col("status").is_in(["linkable", "oversize"])
        )
        domain = pl.col("value").str.extract(r"@([^@]+)$", 1).str.to_lowercase()
        parts.append(
            emails.select(
                "entity_key", pl.lit("domain").alias("kind"), domain.alias("value")
            ).filter(~pl.col("value").is_in(free_mail))
        )
    # Only records that state a company or account are normalized: most state neither.
    if settings.company_attribute in records.columns:
        company = normalize_company(pl.col(settings.company_attribute))
        stating = records.drop_nulls(settings.company_attribute)
        parts.append(_record_keys(stating, "company", company))
    if settings.account_attribute in records.columns:
        account = _none_if_empty(
            pl.col(settings.account_attribute).cast(pl.String).str.strip_chars().str.to_uppercase()
        )
        stating = records.drop_nulls(settings.account_attribute)
        parts.append(_record_keys(stating, "account", account))
    return pl.concat([part.cast(KEY_SCHEMA) for part in parts]).drop_nulls("value").unique()


def free_mail_with_typos(domains: list[str]) -> set[str]:
    """Free-mail domains and every one-edit typo of their name (gmial.com, yahco.com,
    gmal.com): personal addresses with a typo must not found an organization.

    The set is built from the handful of configured domains, not from the data, and
    then matched against the data with one vectorised ``is_in``.
    """
    letters = "abcdefghijklmnopqrstuvwxyz0123456789-"
    variants: set[str] = set()
    for domain in (d.lower() for d in domains):
        name, _, suffix = domain.partition(".")
        edits = {name[:i] + name[i + 1 :] for i in range(len(name))}
        edits |= {name[:i] + name[i + 1] + name[i] + name[i + 2 :] for i in range(len(name) - 1)}
        edits |= {name[:i] + c + name[i + 1 :] for i in range(len(name)) for c in letters}
        edits |= {name[:i] + c + name[i:] for i in range(len(name) + 1) for c in letters}
        variants |= {f"{edit}.{suffix}" for edit in edits if edit} | {domain}
    return variants


def normalize_company(name: pl.Expr) -> pl.Expr:
    """Lower case; apostrophes and dots dropped, other punctuation as spaces; trailing
    legal-form words (inc, llc, ltd …) removed; spaces collapsed; empty → null."""
    suffixes = "|".join(LEGAL_SUFFIXES)
    text = (
        name.cast(pl.String)
        .str.to_lowercase()
        .str.replace_all(r"['’.]", "")
        .str.replace_all(r"[^\p{L}\p{N}\s]", " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .str.replace(rf"(?:\s(?:{suffixes}))+$", "")
    )
    return _none_if_empty(text)


def _none_if_empty(text: pl.Expr) -> pl.Expr:
    return pl.when(text == "").then(None).otherwise(text)


def _record_keys(records: pl.DataFrame, kind: str, value: pl.Expr) -> pl.DataFrame:
    return records.select("entity_key", pl.lit(kind).alias("kind"), value.alias("value"))


def organization_attributes(settings: Organizations) -> list[str]:
    """The record attributes organization resolution reads."""
    names = (settings.company_attribute, settings.account_attribute, settings.role_attribute)
    return [name for name in names if name]


def _person_records(
    settings: Organizations, records: pl.DataFrame, membership: pl.DataFrame
) -> pl.DataFrame:
    """The records with their person, dates, trust, raw company text and role."""

    def text_or_null(column: str | None, alias: str) -> pl.Expr:
        if column in records.columns:
            return pl.col(column).cast(pl.String).alias(alias)
        return pl.lit(None, dtype=pl.String).alias(alias)

    return aligned_or_joined(
        records.select(
            "entity_key",
            "updated_at",
            "trust",
            text_or_null(settings.company_attribute, "company_text"),
            text_or_null(settings.role_attribute, "role"),
        ),
        membership.select("entity_key", "resolved_id"),
        on="entity_key",
    )


def _components(keys: pl.DataFrame) -> pl.DataFrame:
    """entity_key → component, linking every record to the first record (by entity_key)
    sharing each of its keys."""
    nodes = keys.select("entity_key").unique().sort("entity_key").with_row_index("position")
    edges = keys.join(nodes, on="entity_key").with_columns(
        pl.col("position").min().over("kind", "value").alias("anchor")
    )
    labels = component_labels(
        nodes.height,
        edges.get_column("position").to_numpy().astype(np.int64),
        edges.get_column("anchor").to_numpy().astype(np.int64),
    )
    return nodes.select("entity_key", pl.Series("component", labels))


def _most_frequent(keys: pl.DataFrame, kind: str) -> pl.DataFrame:
    """component → its most frequent value of one kind (ties: alphabetical)."""
    counts = keys.filter(pl.col("kind") == kind).group_by("component", "value").len()
    return counts.group_by("component").agg(
        pl.col("value").sort_by(["len", "value"], descending=[True, False]).first().alias(kind)
    )


def _organization_ids(keys: pl.DataFrame) -> pl.DataFrame:
    """component → organization_id = "org:" + top domain, else account, else company."""
    ids = keys.select("component").unique()
    for kind in ID_KINDS:
        ids = ids.join(_most_frequent(keys, kind), on="component", how="left")
    slug = pl.coalesce("domain", "account", pl.col("company").str.replace_all(" ", "-"))
    return ids.select(
        "component",
        ("org:" + slug).alias("organization_id"),
        pl.col("domain").alias("top_domain"),
        pl.col("account").alias("top_account"),
    )


def _organizations(named: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """One row per organization: name, its domains and accounts, people and dates."""
    summary = named.group_by("component", "organization_id", "top_domain", "top_account").agg(
        pl.col("resolved_id").n_unique().alias("person_count"),
        pl.len().alias("record_count"),
        pl.col("updated_at").min().alias("first_seen"),
        pl.col("updated_at").max().alias("last_seen"),
    )
    names = (
        named.drop_nulls("company_text")
        .group_by("component", "company_text")
        .agg(pl.len(), pl.col("trust").min())
        .group_by("component")
        .agg(
            pl.col("company_text")
            .sort_by(["len", "trust", "company_text"], descending=[True, False, False])
            .first()
        )
    )
    listed = [
        keys.filter(pl.col("kind") == kind)
        .group_by("component")
        .agg(pl.col("value").unique().sort().alias(column))
        for kind, column in (("domain", "domains"), ("account", "account_ids"))
    ]
    organizations = summary.join(names, on="component", how="left")
    for values in listed:
        organizations = organizations.join(values, on="component", how="left")
    return (
        organizations.with_columns(
            pl.coalesce("company_text", "top_domain", "top_account").alias("name"),
            pl.col("domains", "account_ids").fill_null(NO_VALUES),
        )
        .select(list(ORGANIZATION_SCHEMA))
        .cast(ORGANIZATION_SCHEMA)
        .sort("organization_id")
    )


def _memberships(named: pl.DataFrame) -> pl.DataFrame:
    """One row per (person, organization) with the most recent role stated for it."""
    most_recent_first = pl.col("role").sort_by(
        ["updated_at", "trust", "entity_key"], descending=[True, False, False], nulls_last=True
    )
    return (
        named.group_by("resolved_id", "organization_id")
        .agg(
            most_recent_first.drop_nulls().first().alias("role"),
            pl.col("updated_at").min().alias("first_seen"),
            pl.col("updated_at").max().alias("last_seen"),
            pl.len().alias("record_count"),
        )
        .select(list(MEMBERSHIPS_SCHEMA))
        .cast(MEMBERSHIPS_SCHEMA)
        .sort("resolved_id", "organization_id")
    )
