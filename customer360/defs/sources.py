"""One extract asset per source in the spec: the source's rows as read, all text, with
their batch file and row number. Adding a source to the spec adds an asset here."""

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from customer360.core.batch_cache import BatchCache
from customer360.core.forget import suppressed_keys
from customer360.core.ingest import hashed_columns, ingest_source
from customer360.core.readers import list_batches
from customer360.core.spec import Source, Spec
from customer360.core.storage import ArtifactStore
from customer360.defs.automation import is_full_run

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
    hashed = list(hashed_columns(spec, source).values())
    hashing = (
        f" Columns {', '.join(hashed)} hold the keyed hash of the normalized value."
        if hashed
        else ""
    )
    metadata = {"source_path": dg.MetadataValue.path(str(location)), "trust": source.trust}
    if hashed:
        metadata["hashed_columns"] = dg.MetadataValue.json(hashed)

    @dg.asset(
        name=source.name,
        group_name=GROUP,
        kinds={KIND_BY_FORMAT[source.format], "polars"},
        owners=[spec.settings.owner],
        description=(
            f"{source.description or 'Source extract'} — every row of {location} "
            f"({source.format}) as text, with its batch file and row number; lines or files "
            f"that could not be read carry _reject_reason. Trust rank {source.trust}.{hashing}"
        ),
        metadata=metadata,
    )
    def extract(context: AssetExecutionContext) -> pl.DataFrame:
        batches = list_batches(spec, source)
        context.log.info(f"reading {len(batches)} batch file(s) of '{source.name}' from {location}")
        cache = BatchCache(store, reuse=not is_full_run(context))
        ingested = ingest_source(spec, source, suppressed_keys(store), cache)
        figures = {
            "batches": len(batches),
            "batches_read_from_files": cache.files_read,
            "forgotten_rows_dropped": ingested.forgotten_rows_dropped,
        }
        if ingested.hashed_values_dropped:  # invalid or excluded: not hashed, not kept
            figures["hashed_values_dropped"] = dg.MetadataValue.json(ingested.hashed_values_dropped)
        context.add_output_metadata(figures)
        return ingested.frame

    return extract
