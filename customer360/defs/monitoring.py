"""The monitoring group: the run's figures, including accuracy against ground truth."""

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from customer360.core.evaluation import read_truth, scores_from_cells
from customer360.core.kept_scores import cells_for, keep_cells, kept_cells, truth_stamp
from customer360.core.metrics import build_metrics
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore
from customer360.defs.automation import is_full_run
from customer360.defs.io_manager import columns
from customer360.defs.metadata import figures

GROUP = "monitoring"


def build_monitoring_assets(spec: Spec, store: ArtifactStore) -> list[dg.AssetsDefinition]:
    # only the rules are counted, from a scan: the links cut come from the clusters'
    # edge counts
    edge_columns = columns("rule", lazy=True)
    edge_ins = {"identity_edges": edge_columns}
    if spec.matching and spec.matching.enabled:
        edge_ins["match_edges"] = edge_columns

    @dg.asset(
        ins={
            "records": columns("trust"),  # only counted: the narrowest column
            "quarantine": columns("source"),
            "identifiers": columns("identifier_type", "status", lazy=True),  # counted
            **edge_ins,
            # the keys and ids only to score them against a truth file
            "membership": columns(*(("entity_key", "resolved_id") if spec.truth else ()), "source"),
            "clusters": columns("size", "sources", "edge_count", "split_by"),
        },
        group_name=GROUP,
        kinds={"polars", "parquet", "duckdb"},
        owners=[spec.settings.owner],
        description=(
            "The run's figures as (metric, dimension, value): records, quarantined rows, "
            "edges per rule, identifier values per status, clusters and their size "
            "distribution, largest cluster, skipped groups, clusters split off over-merges "
            "(per guard) and links cut, match rate per source and — "
            "when the spec names a truth file — pairwise precision, recall, F1 and the "
            "numbers of over-merged clusters and split people."
        ),
    )
    def resolution_metrics(
        context: AssetExecutionContext,
        records: pl.DataFrame,
        quarantine: pl.DataFrame,
        identifiers: pl.LazyFrame,
        skipped_groups: pl.DataFrame,
        membership: pl.DataFrame,
        clusters: pl.DataFrame,
        **edge_sets: pl.LazyFrame,
    ) -> pl.DataFrame:
        scores, scores_updated = None, False
        if spec.truth:
            path, key, person = (
                spec.resolve(spec.truth.path),
                spec.truth.key_column,
                spec.truth.person_column,
            )
            stamp = truth_stamp(path, key, person)
            kept = None if is_full_run(context) else kept_cells(store, stamp)
            # a batch run updates the last run's (cluster, person) cells from the
            # records that changed cluster instead of scoring every record again
            cells = cells_for(membership, read_truth(path, key, person), kept)
            scores, scores_updated = scores_from_cells(cells), kept is not None
            context.log.info(
                f"pairwise precision {scores.precision}, recall {scores.recall}, F1 {scores.f1}"
                + (" (cells updated from the last run's)" if scores_updated else "")
            )
            keep_cells(store, cells, stamp, store.path("membership"))
        metrics = build_metrics(
            records,
            quarantine,
            identifiers,
            pl.concat(list(edge_sets.values())),
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
                "pairwise_scores_updated_from_last_run": scores_updated,
            }
        )
        return metrics

    return [resolution_metrics]


def build_accuracy_checks(spec: Spec) -> list[dg.AssetChecksDefinition]:
    """With a truth file: precision and F1 must reach the spec's bars."""
    if spec.truth is None:
        return []
    bars = {"pairwise_precision": spec.truth.min_precision, "pairwise_f1": spec.truth.min_f1}

    @dg.asset_check(
        asset="resolution_metrics",
        description="Pairwise precision and F1 against the truth file reach the spec's "
        "truth.min_precision and truth.min_f1.",
    )
    def accuracy_meets_truth_bars(resolution_metrics: pl.DataFrame) -> dg.AssetCheckResult:
        headline = resolution_metrics.filter(pl.col("dimension") == "")
        figures = dict(zip(headline["metric"], headline["value"], strict=True))
        short = [name for name, bar in bars.items() if figures.get(name, 0.0) < bar]
        return dg.AssetCheckResult(
            passed=not short,
            metadata={
                **{name: float(figures.get(name, 0.0)) for name in bars},
                **{f"min_{name.removeprefix('pairwise_')}": bar for name, bar in bars.items()},
            },
            description=f"below the bar: {', '.join(short)}" if short else None,
        )

    return [accuracy_meets_truth_bars]
