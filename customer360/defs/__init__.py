"""The Dagster layer: thin assets, checks and resources over :mod:`customer360.core`."""
