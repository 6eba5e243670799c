"""The IO manager: assets hand over Polars frames; they are stored as Parquet and made
queryable by name in ``artifacts/customer360.duckdb`` (see :mod:`customer360.core.storage`).
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from customer360.core.storage import ArtifactStore
from customer360.defs.metadata import table_schema

COLUMNS_KEY = "columns"


class ParquetDuckDBIOManager(dg.ConfigurableIOManager):
    """Persists each asset as ``<artifacts_dir>/<asset name>.parquet`` plus a DuckDB view."""

    artifacts_dir: str

    @property
    def store(self) -> ArtifactStore:
        return ArtifactStore(self.artifacts_dir)

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame) -> None:
        table = context.asset_key.path[-1]
        path = self.store.write(table, obj)
        context.add_output_metadata(
            {
                "dagster/row_count": obj.height,
                "dagster/column_schema": table_schema(obj),
                "path": dg.MetadataValue.path(str(path)),
                "duckdb": dg.MetadataValue.text(f'SELECT * FROM "{table}"'),
            }
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        """The whole table, or only the columns the input asks for (see :func:`columns`)."""
        wanted = (context.definition_metadata or {}).get(COLUMNS_KEY)
        return self.store.read(context.asset_key.path[-1], wanted)


def columns(*names: str) -> dg.AssetIn:
    """An input that loads only these columns: steps never hold data they do not use."""
    return dg.AssetIn(metadata={COLUMNS_KEY: list(names)})
