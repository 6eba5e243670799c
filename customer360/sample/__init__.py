"""Synthetic, deliberately messy customer data with ground truth, for demos and evaluation."""

from customer360.sample.generator import SOURCE_FILES, SampleSummary, generate_sample

__all__ = ["SOURCE_FILES", "SampleSummary", "generate_sample"]
