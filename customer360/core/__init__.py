"""The Dagster-free core: pure functions over Polars frames.

Spec loading, readers, normalizers, edge building, matching, connected components and
their split, survivorship, evaluation and storage live here so that tests, benchmarks
and the real-time resolve service share them with the asset graph.
"""
