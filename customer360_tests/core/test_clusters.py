"""Clusters: connected components of the edges; every record gets one resolved_id."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from customer360.core.clusters import (
    CLUSTER_SCHEMA,
    ENDS,
    component_labels,
    resolve_membership,
    summarize_clusters,
    with_ends,
)
from customer360.core.edges import EDGE_SCHEMA, build_edges
from customer360.core.identifiers import build_identifiers
from customer360.core.readers import read_source
from customer360.core.records import build_records
from customer360.core.spec import load_spec

from .conftest import records_frame


def ordered_records(*keys: str) -> pl.DataFrame:
    return records_frame([{"entity_key": k} for k in keys], columns=[])


def edges(*rows: tuple[str, str, str]) -> pl.DataFrame:
    """(entity_key_a, entity_key_b, identifier_type) rows as an edges table."""
    return (
        pl.DataFrame(
            {
                "entity_key_a": [r[0] for r in rows],
                "entity_key_b": [r[1] for r in rows],
                "rule": [f"{r[2]}_exact" for r in rows],
                "identifier_type": [r[2] for r in rows],
                "value": ["v"] * len(rows),
            },
        )
        .with_columns(
            pl.lit(None, EDGE_SCHEMA[c]).alias(c)
            for c in ("match_probability", "match_weight", "evidence")
        )
        .cast(EDGE_SCHEMA)
    )


def resolved(membership: pl.DataFrame) -> dict[str, str]:
    return dict(membership.select("entity_key", "resolved_id").iter_rows())


def test_component_labels_of_a_small_graph():
    labels = component_labels(6, np.array([0, 3, 4]), np.array([1, 4, 5]))
    assert labels[0] == labels[1]
    assert labels[3] == labels[4] == labels[5]
    assert len({labels[0], labels[2], labels[3]}) == 3


def test_chained_edges_make_one_cluster_and_singletons_keep_their_key():
    records = ordered_records("crm:A", "shop:B", "web:C", "web:D")
    links = edges(("crm:A", "shop:B", "email"), ("shop:B", "web:C", "phone"))
    membership = resolve_membership(records, links).membership
    assert membership.columns == ["entity_key", "source", "record_key", "resolved_id"]
    assert resolved(membership) == {
        "crm:A": "crm:A",
        "shop:B": "crm:A",  # A-B by email, B-C by phone: A and C never share a value
        "web:C": "crm:A",
        "web:D": "web:D",
    }
    assert membership.select("source", "record_key").row(1) == ("shop", "B")


def test_resolved_id_is_the_first_record_in_records_order():
    # The edge direction and key order do not matter: "t:9" comes first in records.
    records = ordered_records("t:9", "a:1", "a:2", "b:5", "b:6")
    links = edges(("a:1", "a:2", "email"), ("a:2", "t:9", "phone"), ("b:6", "b:5", "email"))
    assert resolved(resolve_membership(records, links).membership) == {
        "t:9": "t:9",
        "a:1": "t:9",
        "a:2": "t:9",
        "b:5": "b:5",
        "b:6": "b:5",
    }


def test_no_edges_every_record_is_its_own_cluster():
    records = ordered_records("s:1", "s:2", "s:3")
    membership = resolve_membership(records, edges()).membership
    assert resolved(membership) == {"s:1": "s:1", "s:2": "s:2", "s:3": "s:3"}


def test_summarize_clusters():
    records = ordered_records("crm:1", "shop:2", "shop:3", "web:4", "crm:5", "shop:6")
    links = edges(
        ("crm:1", "shop:2", "email"),
        ("crm:1", "shop:3", "email"),
        ("shop:3", "web:4", "phone"),
        ("crm:5", "shop:6", "email"),
    )
    membership = resolve_membership(records, links).membership
    clusters = summarize_clusters(membership, links)
    assert clusters.schema == pl.Schema(CLUSTER_SCHEMA)
    assert clusters.rows() == [
        ("crm:1", 4, 3, ["crm", "shop", "web"], ["email_exact", "phone_exact"], 3, []),
        ("crm:5", 2, 2, ["crm", "shop"], ["email_exact"], 1, []),
    ]


def test_summarize_clusters_names_the_guards_that_split_them():
    records = ordered_records("s:1", "s:2", "s:3", "s:4")
    links = edges(("s:1", "s:2", "email"), ("s:2", "s:3", "phone"), ("s:3", "s:4", "email"))
    kept = links.filter(pl.col("identifier_type") == "email")
    cut = links.filter(pl.col("identifier_type") == "phone").with_columns(
        guard=pl.lit("conflicting first_name")
    )
    clusters = summarize_clusters(resolve_membership(records, kept).membership, kept, cut)
    assert dict(clusters.select("resolved_id", "split_by").iter_rows()) == {
        "s:1": ["conflicting first_name"],
        "s:3": ["conflicting first_name"],
    }
    assert clusters.get_column("linked_by").to_list() == [["email_exact"], ["email_exact"]]


def test_with_ends_gives_record_positions_and_null_for_an_end_that_is_not_a_record():
    records = ordered_records("s:3", "s:1", "s:2")
    links = with_ends(records, edges(("s:1", "s:2", "email"), ("s:2", "gone:9", "phone")))
    assert links.select(ENDS).rows() == [(1, 2), (2, None)]


def test_edges_carrying_their_ends_resolve_and_summarize_as_without():
    records = ordered_records("s:1", "s:2", "s:3", "s:4", "s:5")
    links = edges(("s:1", "s:2", "email"), ("s:2", "s:3", "phone"), ("s:4", "gone:9", "email"))
    kept = links.filter(pl.col("identifier_type") == "email")
    cut = links.filter(pl.col("identifier_type") == "phone").with_columns(
        guard=pl.lit("conflicting first_name")
    )
    plain = resolve_membership(records, kept).membership
    located = with_ends(records, pl.concat([kept, cut.drop("guard")]))
    kept_ends = located.filter(pl.col("identifier_type") == "email")
    cut_ends = located.filter(pl.col("identifier_type") == "phone").with_columns(
        guard=pl.lit("conflicting first_name")
    )
    membership = resolve_membership(records, kept_ends).membership
    assert membership.equals(plain)
    assert summarize_clusters(membership, kept_ends, cut_ends).equals(
        summarize_clusters(plain, kept, cut)
    )


def test_summarize_clusters_with_singletons_sorted_by_size_then_id():
    records = ordered_records("s:c", "s:b", "s:a", "s:d")
    links = edges(("s:a", "s:d", "email"))
    clusters = summarize_clusters(resolve_membership(records, links).membership, links)
    assert clusters.rows() == [
        ("s:a", 2, 1, ["s"], ["email_exact"], 1, []),
        ("s:b", 1, 1, ["s"], [], 0, []),
        ("s:c", 1, 1, ["s"], [], 0, []),
    ]


def test_walkthrough_resolves_to_five_people():
    # By hand from the fixture: John is C001/O001/O002/T001 (email, loyalty id, phone),
    # Jane C002/O003 (email), Bob C003/T002 (email; 'test@%' excludes only addresses
    # starting with 'test@'); Alice O004 and T003 stand alone.
    spec_path = Path(__file__).parents[1] / "fixtures" / "walkthrough" / "customer360.yaml"
    spec = load_spec(spec_path)
    records, quarantine = build_records(spec, {s.name: read_source(spec, s) for s in spec.sources})
    assert quarantine.is_empty()
    links = build_edges(records, build_identifiers(spec, records)).edges
    membership = resolve_membership(records, links).membership
    groups: dict[str, set[str]] = {}
    for key, rid in resolved(membership).items():
        groups.setdefault(rid, set()).add(key.split(":")[1])
    assert groups == {
        "crm_customers:C001": {"C001", "O001", "O002", "T001"},
        "crm_customers:C002": {"C002", "O003"},
        "crm_customers:C003": {"C003", "T002"},
        "ecom_orders:O004": {"O004"},
        "support_tickets:T003": {"T003"},
    }
    # John's four records: 3 email edges + 1 loyalty + 1 phone; Jane 1; Bob 1.
    assert links.height == 7
    clusters = summarize_clusters(membership, links)
    assert clusters.row(0, named=True)["linked_by"] == [
        "email_exact",
        "loyalty_id_exact",
        "phone_exact",
    ]


def test_summarize_clusters_by_the_resolutions_cluster_numbers_as_by_their_ids():
    records = ordered_records("s:c", "s:b", "s:a", "s:d", "s:e")
    links = edges(("s:a", "s:d", "email"), ("s:c", "s:e", "phone"))
    resolution = resolve_membership(records, links)
    assert summarize_clusters(resolution.membership, links, clusters=resolution.clusters).equals(
        summarize_clusters(resolution.membership, links)
    )


def test_summarize_clusters_names_more_sources_and_rules_than_one_word_of_bits_holds():
    # 70 sources and 70 rules: two 64-bit words each, and names beyond the first word
    keys = [f"src{n:02d}:1" for n in range(70)]
    records = ordered_records(*keys)
    links = edges(*((keys[0], key, f"type{n:02d}") for n, key in enumerate(keys[1:])))
    links = pl.concat([links, edges((keys[1], keys[0], "type69"))])
    clusters = summarize_clusters(resolve_membership(records, links).membership, links)
    assert clusters.rows() == [
        (
            "src00:1",
            70,
            70,
            [f"src{n:02d}" for n in range(70)],
            [f"type{n:02d}_exact" for n in range(70)],
            70,
            [],
        )
    ]
