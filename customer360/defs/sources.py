"""One extract asset per source in the spec: the source's rows as read, all text, with
their batch file and row number. Adding a source to the spec adds an asset here."""

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from customer360.core.forget import suppressed_keys
from customer360.core.readers import list_batches, read_source
from customer360.core.spec import Source, Spec
from customer360.core.storage import ArtifactStore

GROUP = "sources"
KIND_BY_FORMAT = {
    "csv": "csv",
    "tsv": "csv",
    "ndjson": "json",
    "json": "json",
    "parquet": "parquet",
    "xlsx": "excel",
    "duckdb": "duckdb",
}


def build_source_assets(spec: Spec, store: ArtifactStore) -> list[dg.AssetsDefinition]:
    return [_extract_asset(spec, source, store) for source in spec.sources]


def _extract_asset(spec: Spec, source: Source, store: ArtifactStore) -> dg.AssetsDefinition:
    location = spec.resolve(source.path)

    @dg.asset(
        name=source.name,
        group_name=GROUP,
        kinds={KIND_BY_FORMAT[source.format], "polars"},
        owners=[spec.settings.owner],
        description=(
            f"{source.description or 'Source extract'} — every row of {location} "
            f"({source.format}) as text, with its batch file and row number; lines or files "
            f"that could not be read carry _reject_reason. Trust rank {source.trust}."
        ),
        metadata={"source_path": dg.MetadataValue.path(str(location)), "trust": source.trust},
    )
    def extract(context: AssetExecutionContext) -> pl.DataFrame:
        batches = list_batches(spec, source)
        context.log.info(f"reading {len(batches)} batch file(s) of '{source.name}' from {location}")
        frame = read_source(spec, source)
        kept = _without_forgotten(frame, source, suppressed_keys(store))
        context.add_output_metadata(
            {"batches": len(batches), "forgotten_rows_dropped": frame.height - kept.height}
        )
        return kept

    return extract


def _without_forgotten(frame: pl.DataFrame, source: Source, forgotten: pl.Series) -> pl.DataFrame:
    """Rows of people who asked to be forgotten never enter the graph again."""
    if forgotten.is_empty() or source.key not in frame.columns:
        return frame
    entity_key = pl.lit(f"{source.name}:") + pl.col(source.key).str.strip_chars()
    return frame.filter(~entity_key.is_in(forgotten.implode()).fill_null(False))
