"""What enters the graph from a source: its rows as read, less the records of people who
asked to be forgotten, with hashed identifiers already hashed.

The source extracts are the first tables the graph writes, so this is where a hashed
identifier's plain text must go: the column it is mapped from is replaced by the keyed
hash of its normalized value (see :mod:`customer360.core.privacy`). Everything
downstream — records, identifiers, edges, golden profiles, quarantined rows — is built
from the extract and so holds only the hash. The extract assets and the dry run both
read through here, so a preview sees exactly what a run would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import polars as pl

from customer360.core.identifiers import exclusion_reason
from customer360.core.normalize import normalize
from customer360.core.privacy import keyed_hash, read_salt
from customer360.core.readers import (
    RAW_LINE_COLUMN,
    SourceReadError,
    hashed_column_problems,
    read_one_batch,
    read_source,
)
from customer360.core.records import clean_text
from customer360.core.spec import Source, Spec

if TYPE_CHECKING:
    from pathlib import Path

    from customer360.core.batch_cache import BatchCache

# Stands in for a malformed line of a source with hashed identifiers: the line could not
# be split into columns, so the identifier in it cannot be found to be hashed.
WITHHELD_LINE = "(line withheld: this source has hashed identifiers)"


class Ingested(NamedTuple):
    frame: pl.DataFrame
    forgotten_rows_dropped: int
    # identifier type → {"invalid": n, "excluded": n}: hashed values that were dropped
    hashed_values_dropped: dict[str, dict[str, int]]


def ingest_source(
    spec: Spec, source: Source, forgotten: pl.Series, cache: BatchCache | None = None
) -> Ingested:
    """Every batch of a source, without forgotten records, hashed identifiers hashed;
    batches read before come from ``cache`` when one is given."""
    return _ingest(spec, source, read_source(spec, source, cache), forgotten)


def ingest_batch(
    spec: Spec, source: Source, path: Path, forgotten: pl.Series, cache: BatchCache | None = None
) -> Ingested:
    """One batch file of a source, as :func:`ingest_source` ingests each of them."""
    return _ingest(spec, source, read_one_batch(spec, source, path, cache), forgotten)


def _ingest(spec: Spec, source: Source, frame: pl.DataFrame, forgotten: pl.Series) -> Ingested:
    kept = without_forgotten(frame, source, forgotten)
    hashed, dropped = hash_identifiers(spec, source, kept)
    return Ingested(hashed, frame.height - kept.height, dropped)


def without_forgotten(frame: pl.DataFrame, source: Source, forgotten: pl.Series) -> pl.DataFrame:
    """Rows of people who asked to be forgotten never enter the graph again."""
    if forgotten.is_empty() or source.key not in frame.columns:
        return frame
    entity_key = pl.lit(f"{source.name}:") + pl.col(source.key).str.strip_chars()
    return frame.filter(~entity_key.is_in(forgotten.implode()).fill_null(False))


def hashed_columns(spec: Spec, source: Source) -> dict[str, str]:
    """The source columns replaced by a hash, by the identifier type mapped from them."""
    return {
        name: column
        for name, column in source.identifiers.items()
        if name in spec.hashed_identifier_types
    }


def hash_identifiers(
    spec: Spec, source: Source, frame: pl.DataFrame
) -> tuple[pl.DataFrame, dict[str, dict[str, int]]]:
    """Replace each column a hashed identifier is mapped from by the keyed hash of its
    normalized value; return the frame and, per type, how many values were dropped.

    A value the normalizer rejects, or one an exclusion matches, becomes null instead:
    linking would ignore it anyway, and the identifiers table could only show it by
    keeping its plain text. Exclusions are matched here, on the normalized plain value,
    because patterns such as ``noreply@%`` cannot be matched on a hash.
    """
    if not hashed_columns(spec, source):
        return frame, {}
    problems = hashed_column_problems(spec, source, frame.columns)
    if problems:  # a spec loaded without its files: never take plain text for a hash
        raise SourceReadError("; ".join(problems))
    hashed = {  # a column no batch has (every batch unreadable) holds nothing to hash
        name: column
        for name, column in hashed_columns(spec, source).items()
        if column in frame.columns
    }
    salt = read_salt(spec)
    missing_tokens = [token.lower() for token in spec.settings.missing_values]
    region = spec.settings.default_region
    replaced, dropped = [], {}
    for name, column in hashed.items():
        id_type = spec.identifier_types[name]
        text = frame.select(clean_text(pl.col(column), missing_tokens)).to_series()
        screened = pl.DataFrame(
            {"text": text, "value": normalize(text, id_type, region)}
        ).with_columns(exclusion_reason(id_type, region).alias("exclusion"))
        invalid = pl.col("text").is_not_null() & pl.col("value").is_null()
        excluded = pl.col("exclusion").is_not_null()
        counts = screened.select(invalid.sum().alias("invalid"), excluded.sum().alias("excluded"))
        dropped[name] = {key: int(count) for key, count in counts.row(0, named=True).items()}
        kept = screened.select(pl.when(excluded).then(None).otherwise(pl.col("value"))).to_series()
        replaced.append(keyed_hash(kept, salt).alias(column))
    if RAW_LINE_COLUMN in frame.columns:
        replaced.append(
            pl.when(pl.col(RAW_LINE_COLUMN).is_not_null())
            .then(pl.lit(WITHHELD_LINE))
            .alias(RAW_LINE_COLUMN)
        )
    return frame.with_columns(replaced), dropped
