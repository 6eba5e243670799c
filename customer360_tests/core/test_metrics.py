"""Metrics: the run's figures as (metric, dimension, value) rows, checked by hand."""

from __future__ import annotations

import polars as pl
import pytest

from customer360.core.clusters import resolve_membership, summarize_clusters
from customer360.core.edges import EDGE_SCHEMA, SKIPPED_GROUP_SCHEMA
from customer360.core.evaluation import pairwise_scores
from customer360.core.identifiers import IDENTIFIER_SCHEMA
from customer360.core.metrics import (
    METRIC_SCHEMA,
    _cut_links,
    _match_rates,
    build_metrics,
    size_bucket,
)
from customer360.core.records import QUARANTINE_SCHEMA

from .conftest import records_frame

# Five records: crm:1 - shop:1 by email, crm:1 - crm:2 by phone → one cluster of three;
# crm:3 and shop:2 alone. One quarantined shop row; one skipped (oversize) group.
RECORDS = records_frame(
    [{"entity_key": k} for k in ("crm:1", "crm:2", "crm:3", "shop:1", "shop:2")], columns=[]
)
EDGES = pl.DataFrame(
    [
        ("crm:1", "shop:1", "email_exact", "email", "a@x.io", None, None, None),
        ("crm:1", "crm:2", "phone_exact", "phone", "+12125550101", None, None, None),
    ],
    schema=EDGE_SCHEMA,
    orient="row",
)
QUARANTINE = pl.DataFrame(
    [("shop", "shop.csv", 3, None, "missing record key in column 'id'", "{}")],
    schema=QUARANTINE_SCHEMA,
    orient="row",
)
IDENTIFIERS = pl.DataFrame(
    [
        ("crm:1", "email", "a@x.io", "a@x.io", "linkable", None, 2),
        ("shop:1", "email", "a@x.io", "a@x.io", "linkable", None, 2),
        ("crm:3", "email", "bad", None, "invalid", "not a valid email value", None),
        ("crm:1", "phone", "2125550101", "+12125550101", "linkable", None, 2),
        ("crm:2", "phone", "2125550101", "+12125550101", "linkable", None, 2),
    ],
    schema=IDENTIFIER_SCHEMA,
    orient="row",
)
SKIPPED = pl.DataFrame(
    [("email", "info@x.io", 60, "shared by 60 records", ["crm:9"])],
    schema=SKIPPED_GROUP_SCHEMA,
    orient="row",
)


def metrics(scores=None) -> dict[tuple[str, str], float]:
    membership = resolve_membership(RECORDS, EDGES).membership
    clusters = summarize_clusters(membership, EDGES)
    table = build_metrics(
        RECORDS, QUARANTINE, IDENTIFIERS, EDGES, SKIPPED, membership, clusters, scores
    )
    assert table.schema == pl.Schema(METRIC_SCHEMA)
    assert table.select("metric", "dimension").is_unique().all()
    return {(m, d): v for m, d, v in table.rows()}


def test_volumes_and_cluster_figures():
    figures = metrics()
    assert figures[("records", "")] == 5
    assert figures[("quarantined_rows", "")] == 1
    assert figures[("quarantined_rows_per_source", "shop")] == 1
    assert figures[("edges", "")] == 2
    assert figures[("clusters", "")] == 3
    assert figures[("singletons", "")] == 2
    assert figures[("largest_cluster", "")] == 3
    assert figures[("mean_cluster_size", "")] == pytest.approx(5 / 3)
    assert figures[("skipped_groups", "")] == 1
    assert figures[("clusters_by_size", "1")] == 2
    assert figures[("clusters_by_size", "3")] == 1


def test_edges_per_rule_and_identifier_values():
    figures = metrics()
    assert figures[("edges_per_rule", "email_exact")] == 1
    assert figures[("edges_per_rule", "phone_exact")] == 1
    assert figures[("identifier_values", "email/linkable")] == 2
    assert figures[("identifier_values", "email/invalid")] == 1
    assert figures[("identifier_values", "phone/linkable")] == 2


def test_match_rate_per_source():
    figures = metrics()
    # crm: crm:1 and crm:2 are linked, crm:3 is not → 2/3. shop: shop:1 of 2 → 1/2.
    assert figures[("match_rate", "crm")] == pytest.approx(0.6667)
    assert figures[("match_rate", "shop")] == 0.5


def test_pairwise_scores_are_added_when_given():
    assert not any(metric.startswith("pairwise_") for metric, _ in metrics())
    truth = pl.DataFrame(
        {
            "entity_key": ["crm:1", "crm:2", "shop:1", "crm:3"],
            "person_id": ["p", "p", "p", "p"],
        }
    )
    membership = resolve_membership(RECORDS, EDGES).membership
    figures = metrics(pairwise_scores(membership, truth))
    # Truth: 4 records of one person (6 pairs); predicted: one cluster of 3 (3 pairs).
    assert figures[("pairwise_precision", "")] == 1.0
    assert figures[("pairwise_recall", "")] == 0.5
    assert figures[("pairwise_true_pairs", "")] == 6


def test_scans_of_identifiers_and_edges_count_as_their_frames_do():
    membership = resolve_membership(RECORDS, EDGES).membership
    clusters = summarize_clusters(membership, EDGES)
    frames = build_metrics(
        RECORDS, QUARANTINE, IDENTIFIERS, EDGES, SKIPPED, membership, clusters, None
    )
    scans = build_metrics(
        RECORDS, QUARANTINE, IDENTIFIERS.lazy(), EDGES.lazy(), SKIPPED, membership, clusters, None
    )
    assert scans.equals(frames)


def test_size_buckets():
    sizes = pl.DataFrame({"size": [1, 2, 5, 6, 10, 11, 20, 21, 50, 51, 100, 101, 5000]})
    labels = sizes.select(size_bucket(pl.col("size"))).to_series().to_list()
    assert labels == [
        "1",
        "2",
        "5",
        "6-10",
        "6-10",
        "11-20",
        "11-20",
        "21-50",
        "21-50",
        "51-100",
        "51-100",
        "101+",
        "101+",
    ]


def test_splits_are_counted_per_guard_with_the_links_they_cut():
    assert metrics()[("split_clusters", "")] == 0
    kept = EDGES.head(1)
    cut = EDGES.tail(1).with_columns(guard=pl.lit("conflicting first_name"))
    membership = resolve_membership(RECORDS, kept).membership
    clusters = summarize_clusters(membership, kept, cut)
    table = build_metrics(
        RECORDS, QUARANTINE, IDENTIFIERS, EDGES, SKIPPED, membership, clusters, None
    )
    figures = {(m, d): v for m, d, v in table.rows()}
    assert figures[("split_clusters", "")] == 2
    assert figures[("split_clusters", "conflicting first_name")] == 2
    assert figures[("cut_links", "")] == 1
    assert figures[("edges", "")] == 2


def test_links_cut_and_match_rates_from_the_clusters_equal_those_joined_on_the_keys():
    kept = EDGES.head(1)
    cut = EDGES.tail(1).with_columns(guard=pl.lit("conflicting first_name"))
    membership = resolve_membership(RECORDS, kept).membership
    clusters = summarize_clusters(membership, kept, cut)
    ids = membership.select("entity_key", "resolved_id")
    ends = EDGES.join(
        ids.rename({"entity_key": "entity_key_a", "resolved_id": "id_a"}), on="entity_key_a"
    ).join(ids.rename({"entity_key": "entity_key_b", "resolved_id": "id_b"}), on="entity_key_b")
    joined_cut = ends.filter(pl.col("id_a") != pl.col("id_b")).height
    joined_rates = (
        membership.join(clusters, on="resolved_id")
        .group_by("source")
        .agg((pl.col("size") > 1).mean().round(4).alias("value"))
        .sort("source")
    )
    assert _cut_links(EDGES.height, clusters) == joined_cut == 1
    rates = _match_rates(membership.select("source"), clusters.drop("resolved_id"))
    assert rates.sort("dimension").get_column("value").to_list() == (
        joined_rates.get_column("value").to_list()
    )
    assert joined_rates.get_column("value").to_list() == [pytest.approx(0.3333), 0.5]
