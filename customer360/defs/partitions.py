"""Batches as partitions: each source's extract asset has its own dynamic partition set,
one partition per batch file named by its path relative to the source's path, and its
own job that ingests one batch (a run carries one partition key of one partition set)."""

import dagster as dg

INGEST_JOB_PREFIX = "ingest_"


def partitions_name(source_name: str) -> str:
    return f"{source_name}_batches"


def batch_partitions(source_name: str) -> dg.DynamicPartitionsDefinition:
    """The source's batches; the batch-file sensor adds and deletes them."""
    return dg.DynamicPartitionsDefinition(name=partitions_name(source_name))


def ingest_job_name(source_name: str) -> str:
    return f"{INGEST_JOB_PREFIX}{source_name}"
