"""One extract asset per source in the spec, partitioned by batch file: each file in the
source's folder (or the source's single file) is a dynamic partition named by its path
relative to the source's path. Adding a source to the spec adds an asset here.

Materializing a partition reads that one batch — parsed once and kept by content (see
:mod:`customer360.core.batch_cache`) — and records what it held: rows read, rows the
reader rejected, the file and its content hash. The records stage reads the union of
the current batches itself, so a removed file's rows leave with its partition and no
run ever loads every partition through the IO manager.
"""

from typing import TYPE_CHECKING

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from customer360.core.batch_cache import BatchCache
from customer360.core.forget import suppressed_keys
from customer360.core.ingest import hashed_columns, ingest_batch
from customer360.core.readers import REJECT_COLUMN, batch_path, list_batches
from customer360.core.spec import Source, Spec
from customer360.core.storage import ArtifactStore
from customer360.defs.automation import is_full_run
from customer360.defs.concurrency import writes_tags
from customer360.defs.partitions import batch_partitions, ingest_job_name

if TYPE_CHECKING:  # what define_asset_job returns; not exported by dagster itself
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

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


def build_ingest_jobs(spec: Spec, store: ArtifactStore) -> list["UnresolvedAssetJobDefinition"]:
    """Per source, a job that ingests one batch (a partition of its extract asset). Each
    source has its own partition set, and a run carries one partition key, so each
    source has its own job."""
    return [
        dg.define_asset_job(
            ingest_job_name(source.name),
            selection=dg.AssetSelection.assets(source.name),
            description=f"Ingest one batch file of '{source.name}' (a partition of its "
            "extract). The batch-file sensor starts it for each new or changed file, then "
            "one resolve_customers run for all of them.",
            tags=writes_tags(store.root),
        )
        for source in spec.sources
    ]


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
        partitions_def=batch_partitions(source.name),
        description=(
            f"{source.description or 'Source extract'} — one partition per batch file of "
            f"{location} ({source.format}), read as text with its batch and row number; "
            "each materialization records the batch's rows read, rows the reader rejected "
            "(malformed lines, an unreadable file), the file and its content hash. "
            f"The stacked current batches are the table '{source.name}', written by the "
            f"records stage. Trust rank {source.trust}.{hashing}"
        ),
        metadata=metadata,
    )
    def extract(context: AssetExecutionContext) -> dg.MaterializeResult:
        path = batch_path(spec, source, context.partition_key)
        if path not in list_batches(spec, source):
            raise dg.Failure(
                f"batch '{context.partition_key}' of '{source.name}' is not one of its batch "
                f"files ({path}): the file is gone (the batch-file sensor deletes its "
                "partition and retracts its records), or the partition was added by hand for "
                f"a file the source does not read (a {source.format} file in {location})"
            )
        cache = BatchCache(store, reuse=not is_full_run(context))
        ingested = ingest_batch(spec, source, path, suppressed_keys(store), cache)
        frame = ingested.frame
        rejected = (
            frame.select(pl.col(REJECT_COLUMN).is_not_null().sum()).item()
            if REJECT_COLUMN in frame.columns
            else 0
        )
        figures = {
            "file": dg.MetadataValue.path(str(path)),
            "content_hash": cache.content_hash(path),
            "rows_read": frame.height,
            "rows_rejected": int(rejected),
            "read_from_file": cache.files_read > 0,
            "forgotten_rows_dropped": ingested.forgotten_rows_dropped,
        }
        if ingested.hashed_values_dropped:  # invalid or excluded: not hashed, not kept
            figures["hashed_values_dropped"] = dg.MetadataValue.json(ingested.hashed_values_dropped)
        context.log.info(f"'{source.name}' batch {context.partition_key}: {frame.height} rows")
        return dg.MaterializeResult(metadata=figures)

    return extract
