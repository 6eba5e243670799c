"""The ``identifiers`` table: one row per (record, identifier type) with the raw value,
the normalized value and a status saying whether it may link records — and if not, why.

Statuses, in the order they are decided:
- ``inactive``: the identifier type is switched off in the spec;
- ``invalid``: the normalizer found no valid value in the raw text;
- ``excluded``: the value matches an exclusion (placeholder, test address …);
- ``oversize``: more records share the value than the type's max_group_size allows —
  a shared mailbox or a store's default phone, not a person;
- ``linkable``: none of the above; the value links records.
"""

from __future__ import annotations

from typing import NamedTuple

import polars as pl

from customer360.core.normalize import normalize
from customer360.core.normalized_values import KEPT_SCHEMA, type_fingerprints, value_key
from customer360.core.spec import IdentifierType, Spec

STATUSES = ("linkable", "inactive", "invalid", "excluded", "oversize")
# What linking and profiling read of this table.
VALUE_COLUMNS = ["entity_key", "identifier_type", "value", "status"]
IDENTIFIER_SCHEMA = {
    "entity_key": pl.String,
    "identifier_type": pl.String,
    "value_raw": pl.String,
    "value": pl.String,
    "status": pl.String,
    "reason": pl.String,
    "group_size": pl.UInt32,
}


class ClassifiedIdentifiers(NamedTuple):
    table: pl.DataFrame  # the identifiers table
    fresh: pl.DataFrame  # values classified for the first time, to keep (KEPT_SCHEMA)
    used: pl.LazyFrame  # every value the table holds, classified or looked up (KEPT_SCHEMA)


def build_identifiers(spec: Spec, records: pl.DataFrame) -> pl.DataFrame:
    """Unpivot the records' identifier columns, normalize, exclude and size the groups."""
    return classify_identifiers(spec, records).table


def classify_identifiers(
    spec: Spec, records: pl.DataFrame, kept: pl.DataFrame | None = None
) -> ClassifiedIdentifiers:
    """The identifiers table, taking each value's normalized form, status and reason from
    ``kept`` (see :mod:`customer360.core.normalized_values`) where it was classified
    before under the same fingerprint, and classifying only the others. Group sizes
    depend on every record, so they are always counted over the whole table; the table
    equals the one built without ``kept``."""
    fingerprints = type_fingerprints(spec)
    parts = [
        _classified_type(spec, name, id_type, records, fingerprints[name], kept)
        for name, id_type in spec.identifier_types.items()
        if name in records.columns
    ]
    if not parts:
        nothing = pl.DataFrame(schema=KEPT_SCHEMA)
        return ClassifiedIdentifiers(
            pl.DataFrame(schema=IDENTIFIER_SCHEMA), nothing, nothing.lazy()
        )
    return ClassifiedIdentifiers(*(pl.concat(frames) for frames in zip(*parts, strict=True)))


def _classified_type(
    spec: Spec,
    name: str,
    id_type: IdentifierType,
    records: pl.DataFrame,
    fingerprint: int,
    kept: pl.DataFrame | None,
) -> ClassifiedIdentifiers:
    """One type's part of the table, and of the values to keep."""
    raw = (
        records.select("entity_key", pl.col(name).alias("value_raw"))
        .drop_nulls("value_raw")
        .with_columns(value_key(pl.col("value_raw")))
    )
    classifier = ValueClassifier(name, id_type, spec.settings.default_region)
    known = known_values(kept, fingerprint)
    classified, new = classify_raw(raw, classifier, known)
    as_kept = kept_row(fingerprint)
    table = with_group_sizes(
        id_type, classified.with_columns(pl.lit(name).alias("identifier_type"))
    )
    fresh = classified.filter(new).select(as_kept)
    # with nothing kept of this type, the values used are those classified for the first time
    used = fresh.lazy() if known is None else classified.lazy().filter(FIRST_OF_KEY).select(as_kept)
    return ClassifiedIdentifiers(table.select(list(IDENTIFIER_SCHEMA)), fresh, used)


# The first row of each distinct value key: where a value is kept once.
FIRST_OF_KEY = pl.col("key").is_first_distinct()


def classify_raw(
    raw: pl.DataFrame, classifier: ValueClassifier, known: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.Expr]:
    """``raw`` (entity_key, value_raw, key) with value, reason and status — looked up
    among ``known`` values where there are any, classified otherwise — and the filter of
    the rows whose value is new to the kept ones (the first row of each key no run kept).
    """
    if known is None:
        classified = raw.hstack(classifier.classify(raw.get_column("value_raw")).drop("value_raw"))
        return classified, FIRST_OF_KEY
    # a key kept for another raw value stays with that value (lookups compare both)
    return looked_up(raw, known, classifier), FIRST_OF_KEY & pl.col("kept_raw").is_null()


def kept_row(fingerprint: int) -> list[pl.Expr | str]:
    """The columns of a kept value, under the type's ``fingerprint``."""
    return [pl.lit(fingerprint, dtype=pl.UInt64).alias("fingerprint"), *list(KEPT_SCHEMA)[1:]]


def known_values(kept: pl.DataFrame | None, fingerprint: int) -> pl.DataFrame | None:
    """The kept values of one fingerprint; None when there are none."""
    if kept is None:
        return None
    known = kept.filter(pl.col("fingerprint") == fingerprint).drop("fingerprint")
    return None if known.is_empty() else known.rename({"value_raw": "kept_raw"})


def looked_up(raw: pl.DataFrame, known: pl.DataFrame, classifier: ValueClassifier) -> pl.DataFrame:
    """``raw`` with value, reason and status: looked up in ``known`` where the raw value
    is there, classified where it is not; ``hit`` and ``kept_raw`` say which."""
    joined = raw.join(known, on="key", how="left", maintain_order="left")
    if joined.height != raw.height:  # a key kept twice (never written so): one row each
        joined = raw.join(
            known.filter(pl.col("key").is_first_distinct()),
            on="key",
            how="left",
            maintain_order="left",
        )
    joined = joined.with_columns(
        (pl.col("value_raw") == pl.col("kept_raw")).fill_null(False).alias("hit")
    )
    missed = joined.get_column("hit").not_().arg_true()
    fresh = classifier.classify(joined.get_column("value_raw").gather(missed))
    return joined.with_columns(
        joined.get_column(column).clone().scatter(missed, fresh.get_column(column))
        for column in ("value", "reason", "status")
    )


class ValueClassifier:
    """One identifier type's values: normalized, with the status each has before group
    sizes are known (inactive, invalid, excluded or linkable) and the reason.

    The batch classifies a whole column at once; the resolve service classifies the
    values of one record per request with the same object, so both apply exactly the same
    normalizer and exclusions. Building the exclusion expression normalizes the exact
    exclusion values, so it is built once here rather than per call.

    A hashed type's values arrive already normalized, screened by the exclusions and
    hashed (see :mod:`customer360.core.ingest`): they are taken as they are.
    """

    def __init__(self, name: str, id_type: IdentifierType, default_region: str) -> None:
        self.name = name
        self.id_type = id_type
        self.default_region = default_region
        exclusion = (
            pl.lit(None, dtype=pl.String)
            if id_type.hash
            else exclusion_reason(id_type, default_region)
        )
        self._exclusion = exclusion.alias("reason")
        inactive = not id_type.active
        self._status = [
            pl.when(inactive)
            .then(pl.lit("inactive"))
            .when(pl.col("value").is_null())
            .then(pl.lit("invalid"))
            .when(pl.col("reason").is_not_null())
            .then(pl.lit("excluded"))
            .otherwise(pl.lit("linkable"))
            .alias("status"),
            pl.when(inactive)
            .then(pl.lit(f"identifier type '{name}' is inactive in the spec"))
            .when(pl.col("value").is_null())
            .then(pl.lit(f"not a valid {id_type.normalizer} value"))
            .otherwise(pl.col("reason"))
            .alias("reason"),
        ]

    def normalize(self, raw: pl.Series) -> pl.Series:
        if self.id_type.hash:
            return raw.cast(pl.String)
        return normalize(raw, self.id_type, self.default_region)

    def with_statuses(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``status`` and ``reason`` added to a frame with the normalized ``value``."""
        return frame.with_columns(self._exclusion).with_columns(self._status)

    def classify(self, raw: pl.Series) -> pl.DataFrame:
        """``value_raw``, ``value``, ``status`` and ``reason`` of each raw value."""
        frame = pl.DataFrame({"value_raw": raw.cast(pl.String), "value": self.normalize(raw)})
        return self.with_statuses(frame)


def exclusion_reason(id_type: IdentifierType, region: str) -> pl.Expr:
    """The reason of the first exclusion a normalized value matches, else null.

    Exact values are normalized like the data, so 'NoReply@X.com' in the spec excludes
    'noreply@x.com' in the data; patterns apply to the normalized value.
    """
    reason: pl.Expr = pl.lit(None, dtype=pl.String)
    for exclusion in reversed(id_type.exclusions):
        pattern = exclusion.as_regex()
        if pattern is not None:
            matches = pl.col("value").str.contains(pattern)
        else:
            exact = normalize(pl.Series([exclusion.value]), id_type, region)[0]
            if exact is None:
                exact = exclusion.value
            matches = pl.col("value") == exact
        reason = pl.when(matches.fill_null(False)).then(pl.lit(exclusion.reason)).otherwise(reason)
    return reason


def with_group_sizes(id_type: IdentifierType, rows: pl.DataFrame) -> pl.DataFrame:
    """Count the records sharing each linkable value of one type and mark over-size
    groups."""
    linkable = pl.col("status") == "linkable"
    sized = rows.with_columns(
        pl.when(linkable)
        .then(pl.len().over(pl.when(linkable).then(pl.col("value"))))
        .cast(pl.UInt32)
        .alias("group_size")
    )
    oversize = linkable & (pl.col("group_size") > id_type.max_group_size)
    return sized.with_columns(
        pl.when(oversize).then(pl.lit("oversize")).otherwise(pl.col("status")).alias("status"),
        pl.when(oversize)
        .then(
            pl.format(
                "shared by {} records, above max_group_size {}",
                pl.col("group_size"),
                pl.lit(id_type.max_group_size),
            )
        )
        .otherwise(pl.col("reason"))
        .alias("reason"),
    )
