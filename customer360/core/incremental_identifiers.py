"""``identifiers`` again only for the records mapped since the last run.

An identifier row's normalized value, status and reason before group sizes depend on
nothing but its raw value and its type (see :mod:`customer360.core.normalized_values`);
its group size, and so an over-size status, on how many records share the value. When
the records stage took most records over from the last run and lists the ones it mapped
(see :mod:`customer360.core.incremental_records`), the last run's table holds the rows
of every record taken over in the same order — which is checked, raw value against raw
value — so only the mapped records' values are classified (looked up among the kept
values, else normalized), and groups are counted again only for the values a mapped
record holds: every other value is shared by the records it was shared by last run.

What the last table was made under is kept as the *identifiers basis*: a fingerprint of
the identifier types (limits included) and classifying code, and the table's rows per
type. No basis or another fingerprint, no list of mapped records, rows that do not line
up (a source mapped again drops its old rows), more than half of the rows mapped, or a
full run: everything is classified as before. The basis is dropped before the table is
replaced and written after it.
"""

from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

import polars as pl

from customer360.core.identifiers import (
    FIRST_OF_KEY,
    IDENTIFIER_SCHEMA,
    ClassifiedIdentifiers,
    ValueClassifier,
    classify_raw,
    kept_row,
    known_values,
    with_group_sizes,
)
from customer360.core.incremental_records import mapped_rows
from customer360.core.normalized_values import type_fingerprints, value_key
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore

BASIS_STATE = "identifiers_basis"
# Above this share of rows to classify, classifying everything costs less.
MAPPED_SHARE = 0.5
# Above this many runs of mapped and taken-over rows, they are put in order by a gather
# rather than by slices (see in_records_order).
MAX_SLICED_RUNS = 64
# What a row of the last table says about its value; the rest comes from the records.
KEPT_COLUMNS = ["value_raw", "value", "status", "reason", "group_size"]


class KeptIdentifiers(NamedTuple):
    table: pl.LazyFrame
    """The last run's table, KEPT_COLUMNS only: read one type at a time."""
    height: int
    rows: dict[str, int]
    """Its rows per identifier type, in the table's order."""


def table_fingerprint(spec: Spec) -> str:
    """What the last table must have been made under: every type's classification
    (see :func:`type_fingerprints`) and its group limits."""
    types = {name: spec.identifier_types[name].model_dump_json() for name in spec.identifier_types}
    text = json.dumps([type_fingerprints(spec), types], sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def kept_identifiers(store: ArtifactStore, spec: Spec) -> KeptIdentifiers | None:
    """The last run's table and its rows per type, if made under this spec's types."""
    basis = store.read_json_state(BASIS_STATE)
    if basis is None or basis.get("fingerprint") != table_fingerprint(spec):
        return None
    if not store.exists("identifiers"):
        return None
    table = store.scan("identifiers").select(KEPT_COLUMNS)
    return KeptIdentifiers(table, store.row_count("identifiers"), basis["rows"])


def mapped_mask(store: ArtifactStore, height: int) -> pl.Series | None:
    """Which of the ``height`` records the records stage mapped this run (the others it
    took over); None when it mapped them all, or so many that classifying everything
    costs less."""
    rows = mapped_rows(store)
    if rows is None or rows.len() > MAPPED_SHARE * height:
        return None
    if rows.len() and rows.max() >= height:  # not this table's: records written since
        return None
    return pl.repeat(False, height, eager=True).scatter(rows, True)


def mapped_value_keys(spec: Spec, records: pl.DataFrame, mapped: pl.Series) -> pl.Series:
    """The keys (see :func:`value_key`) of the mapped records' raw identifier values."""
    types = [name for name in spec.identifier_types if name in records.columns]
    rows = records.filter(mapped).select(pl.col(types).cast(pl.String))
    values = rows.unpivot(value_name="value_raw").drop_nulls("value_raw")
    return values.select(value_key(pl.col("value_raw"))).to_series()


def classify_mapped(
    spec: Spec,
    records: pl.DataFrame,
    mapped: pl.Series,
    last: KeptIdentifiers,
    known: pl.DataFrame | None,
) -> ClassifiedIdentifiers | None:
    """The identifiers table with only the values of the ``mapped`` records classified
    (looked up in ``known``, the kept values of their keys, else normalized) and the
    others' taken from the ``last`` table; None when the records taken over do not line
    up with it. Equal to :func:`~customer360.core.identifiers.classify_identifiers`."""
    types = [name for name in spec.identifier_types if name in records.columns]
    if not types or set(last.rows) - set(types) or sum(last.rows.values()) != last.height:
        return None
    fingerprints = type_fingerprints(spec)
    parts, offset = [], 0
    for name in types:  # the table holds them in this order; a type without rows is absent
        rows = last.table.slice(offset, last.rows.get(name, 0)).collect()
        offset += rows.height
        part = _classified_type(spec, name, records, mapped, rows, fingerprints[name], known)
        if part is None:
            return None
        parts.append(part)
    return ClassifiedIdentifiers(*(pl.concat(frames) for frames in zip(*parts, strict=True)))


def keep_identifiers_basis(store: ArtifactStore, spec: Spec, table: pl.DataFrame) -> None:
    """Keep what the table was made under, once it is written."""
    runs = table.select(pl.col("identifier_type").rle()).unnest("identifier_type")
    rows = {name: int(n) for n, name in runs.select("len", "value").iter_rows()}
    store.write_json_state(BASIS_STATE, {"fingerprint": table_fingerprint(spec), "rows": rows})


def forget_identifiers_basis(store: ArtifactStore) -> None:
    """Drop the basis before the table is replaced (a run that stops in between leaves
    none, and the next run classifies everything)."""
    store.drop_json_state(BASIS_STATE)


def _classified_type(
    spec: Spec,
    name: str,
    records: pl.DataFrame,
    mapped: pl.Series,
    last: pl.DataFrame,
    fingerprint: int,
    known: pl.DataFrame | None,
) -> ClassifiedIdentifiers | None:
    """One type's part of the table (see :func:`classify_mapped`), or None when the
    records taken over do not line up with ``last``, the type's rows of the last table."""
    raw = records.select(
        "entity_key", pl.col(name).alias("value_raw"), mapped.alias("mapped")
    ).drop_nulls("value_raw")
    is_new = raw.get_column("mapped")
    old_at = is_new.not_().arg_true()
    if old_at.len() != last.height:
        return None
    if not (raw.get_column("value_raw").gather(old_at) == last.get_column("value_raw")).all():
        return None
    new = raw.filter("mapped").drop("mapped").with_columns(value_key(pl.col("value_raw")))
    classifier = ValueClassifier(name, spec.identifier_types[name], spec.settings.default_region)
    classified, unseen = classify_raw(new, classifier, known_values(known, fingerprint))
    fresh = classified.filter(unseen).select(kept_row(fingerprint))
    sized = classified.select(
        "value", "status", "reason", pl.lit(None, dtype=pl.UInt32).alias("group_size")
    )
    values = in_records_order(last.drop("value_raw"), sized, is_new)
    table = raw.select("entity_key", "value_raw").hstack(values)
    table = _with_group_sizes_of_mapped_values(spec, name, table, classified)
    status_before_sizes = pl.col("status") == "oversize"
    used = (
        table.lazy()
        .with_columns(value_key(pl.col("value_raw")))
        .filter(FIRST_OF_KEY)
        .select(
            pl.lit(fingerprint, dtype=pl.UInt64).alias("fingerprint"),
            "key",
            "value_raw",
            "value",
            pl.when(status_before_sizes)
            .then(pl.lit("linkable"))
            .otherwise(pl.col("status"))
            .alias("status"),
            pl.when(status_before_sizes).then(None).otherwise(pl.col("reason")).alias("reason"),
        )
    )
    table = table.with_columns(pl.lit(name).alias("identifier_type"))
    return ClassifiedIdentifiers(table.select(list(IDENTIFIER_SCHEMA)), fresh, used)


def in_records_order(
    taken_over: pl.DataFrame, mapped: pl.DataFrame, is_new: pl.Series
) -> pl.DataFrame:
    """The rows of ``taken_over`` and ``mapped``, each in the records' order, put in the
    records' order: a mapped record's row where ``is_new`` is true.

    A batch's records mostly follow their source's older ones, so they make a run or
    two: the frames are then cut into slices and stacked, which moves no row (gathering
    every row cost 0.6 CPU s of an email's 7.4 million at ten million records). Only when
    the runs are many is every row gathered.
    """
    runs = is_new.rle().struct.unnest()
    if runs.height > MAX_SLICED_RUNS:
        index = pl.get_index_type()
        old_at, new_at = is_new.not_().arg_true(), is_new.arg_true()
        order = (
            pl.repeat(0, is_new.len(), dtype=index, eager=True)
            .scatter(old_at, pl.int_range(0, old_at.len(), dtype=index, eager=True))
            .scatter(new_at, pl.int_range(old_at.len(), is_new.len(), dtype=index, eager=True))
        )
        return pl.concat([taken_over, mapped]).gather(order)
    pieces, taken = [], {False: 0, True: 0}
    for length, new in runs.iter_rows():  # a few runs, not rows
        pieces.append((mapped if new else taken_over).slice(taken[new], length))
        taken[new] += length
    return pl.concat(pieces or [taken_over, mapped])


def _with_group_sizes_of_mapped_values(
    spec: Spec, name: str, table: pl.DataFrame, classified: pl.DataFrame
) -> pl.DataFrame:
    """Group sizes and over-size statuses counted again for the values a mapped record
    holds — over every row holding one, so the counts are whole; every other row keeps
    the last run's."""
    touched = classified.filter(pl.col("status") == "linkable").get_column("value").unique()
    linkable = pl.col("status").is_in(["linkable", "oversize"])
    again = table.select(
        (linkable & pl.col("value").is_in(touched.implode())).arg_true()
    ).to_series()
    resized = with_group_sizes(
        spec.identifier_types[name],
        table.gather(again).with_columns(
            pl.lit("linkable").alias("status"), pl.lit(None, dtype=pl.String).alias("reason")
        ),
    )
    return table.with_columns(
        table.get_column(column).clone().scatter(again, resized.get_column(column))
        for column in ("status", "reason", "group_size")
    )
