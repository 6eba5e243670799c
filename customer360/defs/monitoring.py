"""The monitoring group: the run's figures, including accuracy against ground truth."""

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from customer360.core.evaluation import pairwise_scores, read_truth
from customer360.core.metrics import build_metrics
from customer360.core.spec import Spec
from customer360.defs.io_manager import columns
from customer360.defs.metadata import figures

GROUP = "monitoring"


def build_monitoring_assets(spec: Spec) -> list[dg.AssetsDefinition]:
    @dg.asset(
        ins={
            "records": columns("entity_key"),
            "quarantine": columns("source"),
            "identifiers": columns("identifier_type", "status"),
            "identity_edges": columns("rule"),
            "membership": columns("entity_key", "resolved_id", "source"),
        },
        group_name=GROUP,
        kinds={"polars", "parquet", "duckdb"},
        owners=[spec.settings.owner],
        description=(
            "The run's figures as (metric, dimension, value): records, quarantined rows, "
            "edges per rule, identifier values per status, clusters and their size "
            "distribution, largest cluster, skipped groups, match rate per source and — "
            "when the spec names a truth file — pairwise precision, recall and F1."
        ),
    )
    def resolution_metrics(
        context: AssetExecutionContext,
        records: pl.DataFrame,
        quarantine: pl.DataFrame,
        identifiers: pl.DataFrame,
        identity_edges: pl.DataFrame,
        skipped_groups: pl.DataFrame,
        membership: pl.DataFrame,
        clusters: pl.DataFrame,
    ) -> pl.DataFrame:
        scores = None
        if spec.truth:
            truth = read_truth(
                spec.resolve(spec.truth.path), spec.truth.key_column, spec.truth.person_column
            )
            scores = pairwise_scores(membership, truth)
            context.log.info(
                f"pairwise precision {scores.precision}, recall {scores.recall}, F1 {scores.f1}"
            )
        metrics = build_metrics(
            records,
            quarantine,
            identifiers,
            identity_edges,
            skipped_groups,
            membership,
            clusters,
            scores,
        )
        headline = metrics.filter(pl.col("dimension") == "")
        context.add_output_metadata(
            {
                **{name: float(value) for name, _, value in headline.iter_rows()},
                "figures": figures(metrics),
            }
        )
        return metrics

    return [resolution_metrics]
