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

import polars as pl

from customer360.core.normalize import normalize
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


def build_identifiers(spec: Spec, records: pl.DataFrame) -> pl.DataFrame:
    """Unpivot the records' identifier columns, normalize, exclude and size the groups."""
    parts = [
        _normalized_type(spec, name, id_type, records)
        for name, id_type in spec.identifier_types.items()
        if name in records.columns
    ]
    if not parts:
        return pl.DataFrame(schema=IDENTIFIER_SCHEMA)
    long = pl.concat(parts)
    return _with_group_sizes(spec, long).select(list(IDENTIFIER_SCHEMA))


def _normalized_type(
    spec: Spec, name: str, id_type: IdentifierType, records: pl.DataFrame
) -> pl.DataFrame:
    raw = records.select("entity_key", pl.col(name).alias("value_raw")).drop_nulls("value_raw")
    classifier = ValueClassifier(name, id_type, spec.settings.default_region)
    return classifier.with_statuses(
        raw.with_columns(
            pl.lit(name).alias("identifier_type"),
            classifier.normalize(raw.get_column("value_raw")).alias("value"),
        )
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


def _with_group_sizes(spec: Spec, long: pl.DataFrame) -> pl.DataFrame:
    """Count the records sharing each linkable value and mark over-size groups."""
    limits = pl.DataFrame(
        {
            "identifier_type": list(spec.identifier_types),
            "max_group_size": [t.max_group_size for t in spec.identifier_types.values()],
        },
        schema={"identifier_type": pl.String, "max_group_size": pl.UInt32},
    )
    linkable = pl.col("status") == "linkable"
    sized = long.join(limits, on="identifier_type", how="left").with_columns(
        pl.when(linkable)
        .then(pl.len().over("identifier_type", "value", linkable))
        .cast(pl.UInt32)
        .alias("group_size")
    )
    oversize = linkable & (pl.col("group_size") > pl.col("max_group_size"))
    return sized.with_columns(
        pl.when(oversize).then(pl.lit("oversize")).otherwise(pl.col("status")).alias("status"),
        pl.when(oversize)
        .then(
            pl.format(
                "shared by {} records, above max_group_size {}",
                pl.col("group_size"),
                pl.col("max_group_size"),
            )
        )
        .otherwise(pl.col("reason"))
        .alias("reason"),
    )
