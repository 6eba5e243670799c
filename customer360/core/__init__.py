"""The Dagster-free core: pure functions over Polars frames.

Spec loading, readers, normalizers, edge building, connected components, survivorship,
evaluation and storage live here so that tests, benchmarks and any future service share
them with the asset graph.
"""
