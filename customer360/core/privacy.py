"""Personal data: the keyed hash of identifiers, and which values must stay out of sight.

Hashing. An identifier type with ``hash: true`` is replaced, at ingestion, by
HMAC-SHA256(salt, normalized value) in hex (see :mod:`customer360.core.ingest`).
Normalizing first keeps equal people equal: ' JOHN@ACME.COM' and 'john@acme.com' give one
hash. The salt is a secret read from an environment variable (``settings.salt_env_var``)
at the moment of hashing; it is never kept in the spec, an output, the state, a log or
run metadata. Without it nobody can test a list of known addresses against the hashes,
and with it the same value always gives the same hash, run after run — change the salt
and every hash changes.

Personal columns. Identifier and attribute values are personal, under every name the
graph gives them (the spec's names, ``<type>_primary``, the long tables' ``value``, the
organizations built from them); keys, resolved ids, sources, counts, statuses and
timestamps are not. Unless ``settings.show_personal_data`` is on, previews in run
metadata leave personal columns out and messages that might quote a value do not.
"""

from __future__ import annotations

import hmac
import os

import polars as pl

from customer360.core.normalize import normalize
from customer360.core.spec import Spec

# Long enough that the hashes cannot be reversed by guessing the salt.
MIN_SALT_LENGTH = 16
HASH_ALGORITHM = "sha256"
HEX_DIGEST = r"^[0-9a-f]{64}$"
# Columns of the graph's own tables that hold identifier or attribute values (or are
# built from them), whatever the spec calls its identifiers and attributes.
PERSONAL_OUTPUT_COLUMNS = frozenset(
    {
        "value_raw",  # identifiers: the value as found in the source
        "value",  # identifiers, identity_edges, skipped_groups, traits, resolved_traits
        "raw_record",  # quarantine: the rejected row as read
        "organization_id",  # organizations: named after an email domain, account or company
        "name",
        "domains",
        "account_ids",
        "role",  # memberships: the person's job title
    }
)


class SaltError(ValueError):
    """Hashing was asked for, but the salt's environment variable is missing or too short."""


def salt_problems(spec: Spec) -> list[str]:
    """Why the spec's hashed identifiers cannot be hashed in this environment, if they
    cannot: one problem naming the variable and how to set it, in the spec's vocabulary."""
    if not spec.hashed_identifier_types:
        return []
    variable = spec.settings.salt_env_var
    if len(os.environ.get(variable, "")) >= MIN_SALT_LENGTH:
        return []
    hashed = ", ".join(f"identifier_types.{name}.hash" for name in spec.hashed_identifier_types)
    return [
        f"settings.salt_env_var: hashing ({hashed}) needs a secret salt of at least "
        f"{MIN_SALT_LENGTH} characters in the environment variable {variable}, which is "
        "not set or too short; "
        f"set it before running, e.g. export {variable}=\"$(python3 -c 'import secrets; "
        "print(secrets.token_hex(32))')\", keep it secret, and keep it: another salt gives "
        "other hashes, so earlier outputs and forget requests would no longer match"
    ]


def read_salt(spec: Spec) -> bytes:
    """The salt of the spec's hashed identifiers, from the environment (never stored)."""
    problems = salt_problems(spec)
    if problems:
        raise SaltError(problems[0])
    return os.environ[spec.settings.salt_env_var].encode("utf-8")


def keyed_hash(values: pl.Series, salt: bytes) -> pl.Series:
    """HMAC-SHA256 of every value (hex; null stays null). HMAC is not a Polars
    expression, so each distinct value is hashed once and joined back to the rows."""
    distinct = values.drop_nulls().unique()
    digests = pl.Series([keyed_hash_one(value, salt) for value in distinct], dtype=pl.String)
    lookup = pl.DataFrame({"plain": distinct, "hashed": digests})
    return (
        pl.DataFrame({"plain": values})
        .join(lookup, on="plain", how="left", maintain_order="left")
        .get_column("hashed")
        .alias(values.name)
    )


def keyed_hash_one(value: str, salt: bytes) -> str:
    """HMAC-SHA256 of one value, in hex: what :func:`keyed_hash` gives each value (the
    resolve service hashes one request's values without building a frame)."""
    return hmac.digest(salt, value.encode("utf-8"), HASH_ALGORITHM).hex()


def hash_earlier_plain_values(spec: Spec, frame: pl.DataFrame) -> pl.DataFrame:
    """A table kept across runs (the golden-profile history) with the ``<type>_primary``
    values of hashed types that earlier runs stored in plain text — before hashing was
    switched on — hashed as this run hashes them. Golden values are already normalized,
    so the hash is the one ingestion gives: such versions read as unchanged, not as new
    ones."""
    columns = [
        f"{name}_primary"
        for name in spec.hashed_identifier_types
        if f"{name}_primary" in frame.columns
    ]
    if not columns:
        return frame
    salt = read_salt(spec)
    plain = [
        pl.when(pl.col(column).str.contains(HEX_DIGEST))
        .then(pl.col(column))
        .otherwise(keyed_hash(frame.get_column(column), salt))
        .alias(column)
        for column in columns
    ]
    return frame.with_columns(plain)


def lookup_value(spec: Spec, identifier_type: str, value: str) -> str | None:
    """A value as the ``identifiers`` table holds it: normalized, and hashed when its type
    is hashed — so that a person can be found by what they tell us."""
    id_type = spec.identifier_types[identifier_type]
    region = spec.settings.default_region
    normalized = normalize(pl.Series([value], dtype=pl.String), id_type, region)
    if id_type.hash:
        normalized = keyed_hash(normalized, read_salt(spec))
    return normalized[0]


def personal_columns(spec: Spec) -> frozenset[str]:
    """Columns whose values are personal: every identifier and attribute of the spec,
    under each name the graph's tables give them."""
    identifiers = set(spec.identifier_types)
    primaries = {f"{name}_primary" for name in identifiers}
    return frozenset(identifiers | primaries | set(spec.attribute_names) | PERSONAL_OUTPUT_COLUMNS)


def error_detail(error: Exception, spec: Spec) -> str:
    """An error's own text, or — unless personal data may be shown — only its kind:
    library errors quote the values they failed on (a failed cast lists them)."""
    if spec.settings.show_personal_data:
        return str(error)
    return (
        f"{type(error).__name__}; its text may quote personal values and is withheld — "
        "set settings.show_personal_data: true to see it"
    )
