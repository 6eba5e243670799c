"""The profiles group: the golden profile of every resolved customer."""

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from customer360.core.spec import Spec
from customer360.core.survivorship import build_golden_profiles

GROUP = "profiles"


def build_profile_assets(spec: Spec) -> list[dg.AssetsDefinition]:
    strategies = ", ".join(f"{field}: {spec.strategy(field)}" for field in spec.golden_fields)

    @dg.asset(
        group_name=GROUP,
        kinds={"polars", "parquet", "duckdb"},
        owners=[spec.settings.owner],
        description=(
            "One golden profile per resolved_id: the surviving value of every identifier "
            "(<type>_primary) and attribute with the source it came from, a data-quality "
            "score and audit columns. Survivorship — " + strategies + "."
        ),
    )
    def golden_profiles(
        context: AssetExecutionContext,
        records: pl.DataFrame,
        identifiers: pl.DataFrame,
        membership: pl.DataFrame,
        clusters: pl.DataFrame,
    ) -> pl.DataFrame:
        """``clusters`` is an input so that its blocking size check gates this asset."""
        profiles = build_golden_profiles(spec, records, identifiers, membership)
        context.add_output_metadata(
            {
                "profiles": profiles.height,
                "clusters": clusters.height,
                "mean_quality_score": float(profiles.get_column("quality_score").mean() or 0.0),
                "with_conflicts": int(
                    (profiles.get_column("conflict_rules_applied").list.len() > 0).sum()
                ),
            }
        )
        return profiles

    return [golden_profiles]
