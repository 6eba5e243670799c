"""``resolution_metrics``: the run's figures as a long table (metric, dimension, value),
so that new figures never change the table's shape and runs can be compared in SQL.
"""

from __future__ import annotations

import polars as pl

from customer360.core.edges import is_guarded
from customer360.core.evaluation import PairwiseScores

METRIC_SCHEMA = {"metric": pl.String, "dimension": pl.String, "value": pl.Float64}
# Upper bounds of the cluster-size histogram buckets; the last bucket is open-ended.
SIZE_BUCKETS = [1, 2, 3, 4, 5, 10, 20, 50, 100]


def size_bucket(size: pl.Expr) -> pl.Expr:
    """A readable histogram bucket label for a cluster size ('1', '6-10', '101+')."""
    expr: pl.Expr = pl.lit(f"{SIZE_BUCKETS[-1] + 1}+")
    for lower, upper in reversed(list(zip([0, *SIZE_BUCKETS], SIZE_BUCKETS, strict=False))):
        label = str(upper) if upper - lower == 1 else f"{lower + 1}-{upper}"
        expr = pl.when(size <= upper).then(pl.lit(label)).otherwise(expr)
    return expr


def build_metrics(
    records: pl.DataFrame,
    quarantine: pl.DataFrame,
    identifiers: pl.DataFrame | pl.LazyFrame,
    edges: pl.DataFrame | pl.LazyFrame,
    skipped: pl.DataFrame,
    membership: pl.DataFrame,
    clusters: pl.DataFrame,
    scores: PairwiseScores | None,
) -> pl.DataFrame:
    """Every figure of the run: volumes, edges per rule, cluster sizes, match rates, P/R/F1.

    ``edges`` need only their ``rule``, ``membership`` only its ``source``, ``clusters``
    their ``size``, ``sources``, ``edge_count`` and ``split_by``: the figures that link
    records and clusters are counted from the clusters' own summary, not by joining the
    records' keys to them. ``identifiers`` and ``edges`` may be scans of the stored
    tables: they are only counted, and a scan counts them without holding their rows."""
    sizes = clusters.get_column("size")
    per_rule = edges.lazy().group_by("rule").len().collect()
    edge_count = int(per_rule.get_column("len").sum())
    totals = {
        "records": records.height,
        "quarantined_rows": quarantine.height,
        "edges": edge_count,
        "clusters": clusters.height,
        "singletons": int((sizes == 1).sum()),
        "largest_cluster": int(sizes.max() or 0),
        "mean_cluster_size": float(sizes.mean() or 0.0),
        "skipped_groups": skipped.height,
        "guarded_groups": skipped.filter(is_guarded(pl.col("reason"))).height,
        "split_clusters": clusters.filter(pl.col("split_by").list.len() > 0).height,
        "cut_links": _cut_links(edge_count, clusters),
    }
    frames = [
        pl.DataFrame(
            {"metric": list(totals), "dimension": "", "value": list(totals.values())},
            schema=METRIC_SCHEMA,
        ),
        _counted(per_rule, "edges_per_rule", "rule"),
        _counted(
            identifiers.lazy()
            .group_by("identifier_type", "status")
            .len()
            .with_columns((pl.col("identifier_type") + "/" + pl.col("status")).alias("dimension"))
            .collect(),
            "identifier_values",
            "dimension",
        ),
        _counted(quarantine.group_by("source").len(), "quarantined_rows_per_source", "source"),
        _counted(
            clusters.group_by(size_bucket(pl.col("size")).alias("bucket")).len(),
            "clusters_by_size",
            "bucket",
        ),
        _match_rates(membership, clusters),
        _counted(
            clusters.select(pl.col("split_by").explode().drop_nulls().alias("guard"))
            .group_by("guard")
            .len(),
            "split_clusters",
            "guard",
        ),
    ]
    if scores is not None:
        frames.append(
            pl.DataFrame(
                {
                    "metric": [f"pairwise_{k}" for k in scores.as_dict()],
                    "dimension": "",
                    "value": list(scores.as_dict().values()),
                },
                schema=METRIC_SCHEMA,
            )
        )
    return pl.concat(frames).sort("metric", "dimension")


def _counted(frame: pl.DataFrame, metric: str, dimension: str) -> pl.DataFrame:
    return frame.select(
        pl.lit(metric).alias("metric"),
        pl.col(dimension).cast(pl.String).alias("dimension"),
        pl.col("len").cast(pl.Float64).alias("value"),
    )


def _cut_links(edge_count: int, clusters: pl.DataFrame) -> int:
    """Edges whose ends ended up in different clusters: links a split cut.

    Every edge joins two records; one the split kept lies inside a cluster and is counted
    in that cluster's ``edge_count``, one it cut joins two clusters and is counted in
    none. So the cut links are the edges less those counted inside clusters — a sum over
    the clusters instead of looking up both ends of every edge."""
    return edge_count - int(clusters.get_column("edge_count").sum())


def _match_rates(membership: pl.DataFrame, clusters: pl.DataFrame) -> pl.DataFrame:
    """Per source, the share of records linked to at least one other record.

    A record linked to none is a cluster of size one, whose only source is its own: the
    unlinked records per source are counted among the clusters, the records per source
    from the membership's ``source`` alone (no join of records to their clusters)."""
    alone = (
        clusters.filter(pl.col("size") == 1)
        .group_by(pl.col("sources").list.first().alias("source"))
        .agg(pl.len().alias("alone"))
    )
    return (
        membership.group_by("source")
        .agg(pl.len().alias("records"))
        .join(alone, on="source", how="left")
        .select(
            pl.lit("match_rate").alias("metric"),
            pl.col("source").alias("dimension"),
            ((pl.col("records") - pl.col("alone").fill_null(0)) / pl.col("records"))
            .round(4)
            .alias("value"),
        )
    )
