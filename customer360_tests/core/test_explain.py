"""Link explanation: the chain of edges between two records, each with its evidence."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer360.core.edges import EDGE_SCHEMA
from customer360.core.explain import (
    EdgeStep,
    FieldEvidence,
    PairExplanation,
    RecordExplanation,
    UnknownRecordError,
    explain_pair,
    explain_record,
    format_explanation,
    mask_value,
    weakest_links,
)

NAME_EVIDENCE = [
    {"field": "first_name", "level": "exact match", "weight": 5.1},
    {"field": "last_name", "level": "Jaro-Winkler >= 0.92", "weight": 3.2},
    {"field": "phone", "level": "null", "weight": 0.0},
]


def exact(a: str, b: str, identifier_type: str = "email", value: str = "ann@x.com") -> dict:
    """A deterministic edge: both records share this identifier value."""
    return {
        "entity_key_a": a,
        "entity_key_b": b,
        "rule": f"{identifier_type}_exact",
        "identifier_type": identifier_type,
        "value": value,
    }


def probable(
    a: str, b: str, weight: float, probability: float = 0.99, evidence: list | None = None
) -> dict:
    """A probabilistic edge with its match weight, probability and per-field evidence."""
    return {
        "entity_key_a": a,
        "entity_key_b": b,
        "rule": "probabilistic",
        "match_probability": probability,
        "match_weight": weight,
        "evidence": evidence,
    }


def edges(*rows: dict) -> pl.DataFrame:
    """Edges in the identity_edges schema; columns a row leaves out are null."""
    return pl.DataFrame(
        [{name: row.get(name) for name in EDGE_SCHEMA} for row in rows], schema=EDGE_SCHEMA
    )


def membership(**clusters: list[str]) -> pl.DataFrame:
    """resolved_id=[entity_keys] → a membership table."""
    keys = [(key, resolved_id) for resolved_id, members in clusters.items() for key in members]
    return pl.DataFrame(
        {
            "entity_key": [key for key, _ in keys],
            "source": [key.partition(":")[0] for key, _ in keys],
            "record_key": [key.partition(":")[2] for key, _ in keys],
            "resolved_id": [resolved_id for _, resolved_id in keys],
        }
    )


def clusters_of(members: pl.DataFrame) -> pl.DataFrame:
    return members.group_by("resolved_id").agg(pl.len().cast(pl.UInt32).alias("size"))


def walk(path: list[EdgeStep]) -> list[tuple[str, str, str]]:
    return [(step.from_key, step.to_key, step.rule) for step in path]


# A - B - C by email then phone; D alone. The B - C edge is stored the other way round.
CHAIN = edges(
    exact("s:A", "s:B", "email", "ann@x.com"),
    exact("s:C", "s:B", "phone", "+12125550101"),
)
CHAIN_MEMBERSHIP = membership(**{"s:A": ["s:A", "s:B", "s:C"], "s:D": ["s:D"]})


def test_a_deterministic_chain_is_walked_from_the_first_key_to_the_second():
    pair = explain_pair(CHAIN, CHAIN_MEMBERSHIP, "s:A", "s:C")
    assert pair.linked and not pair.split
    assert (pair.resolved_id_a, pair.resolved_id_b, pair.size_a) == ("s:A", "s:A", 3)
    assert walk(pair.path) == [("s:A", "s:B", "email_exact"), ("s:B", "s:C", "phone_exact")]
    assert [(s.identifier_type, s.value) for s in pair.path] == [
        ("email", "ann@x.com"),
        ("phone", "+12125550101"),
    ]
    backwards = explain_pair(CHAIN, CHAIN_MEMBERSHIP, "s:C", "s:A")
    assert walk(backwards.path) == [("s:C", "s:B", "phone_exact"), ("s:B", "s:A", "email_exact")]


def test_the_text_names_the_customer_and_masks_shared_values():
    text = format_explanation(explain_pair(CHAIN, CHAIN_MEMBERSHIP, "s:A", "s:C"))
    assert text.splitlines() == [
        "s:A and s:C are the same customer (resolved_id s:A), joined by 2 links:",
        "  1. s:A —email_exact— s:B   shared email a***@x.com",
        "  2. s:B —phone_exact— s:C   shared phone ***0101",
    ]
    revealed = format_explanation(explain_pair(CHAIN, CHAIN_MEMBERSHIP, "s:A", "s:C"), reveal=True)
    assert "shared email ann@x.com" in revealed and "shared phone +12125550101" in revealed


def test_a_probabilistic_edge_carries_its_probability_weight_and_field_evidence():
    links = edges(probable("s:A", "s:B", 10.4, 0.9993, NAME_EVIDENCE))
    pair = explain_pair(links, membership(**{"s:A": ["s:A", "s:B"]}), "s:B", "s:A")
    (step,) = pair.path
    assert (step.from_key, step.to_key, step.rule) == ("s:B", "s:A", "probabilistic")
    assert (step.match_probability, step.match_weight, step.value) == (0.9993, 10.4, None)
    assert step.evidence[0] == FieldEvidence("first_name", "exact match", 5.1)
    assert format_explanation(pair).splitlines()[1:] == [
        "  1. s:B —probabilistic— s:A   match probability 0.9993, weight +10.4",
        "       first_name  exact match             +5.1",
        "       last_name   Jaro-Winkler >= 0.92    +3.2",
        "       phone       null                     0.0",
    ]


def test_deterministic_links_are_preferred_over_probable_ones_of_the_same_count():
    links = edges(
        probable("s:A", "s:P", 12.0),
        probable("s:P", "s:D", 12.0),
        exact("s:A", "s:B", "email"),
        exact("s:B", "s:D", "phone"),
    )
    members = membership(**{"s:A": ["s:A", "s:B", "s:D", "s:P"]})
    assert walk(explain_pair(links, members, "s:A", "s:D").path) == [
        ("s:A", "s:B", "email_exact"),
        ("s:B", "s:D", "phone_exact"),
    ]


def test_fewer_links_win_unless_they_are_doubtful():
    chain = [exact("s:A", "s:B"), exact("s:B", "s:C"), exact("s:C", "s:D")]
    members = membership(**{"s:A": ["s:A", "s:B", "s:C", "s:D", "s:P"]})
    # One probable link (weight +2: one chance in five it is wrong) beats three exact ones.
    direct = edges(*chain, probable("s:A", "s:D", 2.0))
    assert walk(explain_pair(direct, members, "s:A", "s:D").path) == [
        ("s:A", "s:D", "probabilistic")
    ]
    # Two links at weight -1 (each more likely wrong than right) cost more than three
    # certain ones.
    doubtful = edges(*chain, probable("s:A", "s:P", -1.0), probable("s:P", "s:D", -1.0))
    assert [s.to_key for s in explain_pair(doubtful, members, "s:A", "s:D").path] == [
        "s:B",
        "s:C",
        "s:D",
    ]


def test_of_parallel_edges_between_two_records_the_strongest_is_named():
    links = edges(
        probable("s:A", "s:B", 20.0),
        exact("s:B", "s:A", "phone", "+12125550101"),
        exact("s:A", "s:B", "email", "ann@x.com"),
    )
    pair = explain_pair(links, membership(**{"s:A": ["s:A", "s:B"]}), "s:A", "s:B")
    assert walk(pair.path) == [("s:A", "s:B", "email_exact")]


def test_records_of_separate_clusters_are_plainly_not_linked():
    members = membership(**{"s:A": ["s:A", "s:B", "s:C"], "s:D": ["s:D"]})
    pair = explain_pair(CHAIN, members, "s:B", "s:D")
    assert not pair.linked and not pair.split and pair.path == []
    assert (pair.resolved_id_a, pair.size_a, pair.resolved_id_b, pair.size_b) == (
        "s:A",
        3,
        "s:D",
        1,
    )
    assert format_explanation(pair) == (
        "s:B and s:D are not linked: s:B is customer s:A (3 records), s:D is customer s:D "
        "(1 record). No chain of shared identifiers or probable matches joins them."
    )


# Linked A - B - C - D, then split at the weak B - C link into {A, B} and {C, D}.
SPLIT_EDGES = edges(
    exact("s:A", "s:B", "email"),
    probable("s:B", "s:C", 1.5, 0.74),
    exact("s:C", "s:D", "phone", "+12125550101"),
)
SPLIT_MEMBERSHIP = membership(**{"s:A": ["s:A", "s:B"], "s:D": ["s:C", "s:D"]})


def test_records_of_a_split_cluster_show_the_links_that_would_join_them():
    pair = explain_pair(SPLIT_EDGES, SPLIT_MEMBERSHIP, "s:A", "s:D")
    assert not pair.linked and pair.split
    assert walk(pair.path) == [
        ("s:A", "s:B", "email_exact"),
        ("s:B", "s:C", "probabilistic"),
        ("s:C", "s:D", "phone_exact"),
    ]
    assert [step.crosses_clusters for step in pair.path] == [False, True, False]
    lines = format_explanation(pair).splitlines()
    assert lines[0] == (
        "s:A and s:D are not linked in the published result: s:A is customer s:A (2 records), "
        "s:D is customer s:D (2 records)."
    )
    assert "split at its weakest links" in lines[1]
    assert lines[3] == (
        "  2. s:B —probabilistic— s:C   match probability 0.7400, weight +1.5   [cut]"
    )
    assert "[cut]" not in lines[2] + lines[4]


def test_the_guards_that_split_the_clusters_are_named():
    clusters = pl.DataFrame(
        {
            "resolved_id": ["s:A", "s:D"],
            "split_by": [["conflicting first_name"], ["conflicting date_of_birth"]],
        }
    )
    pair = explain_pair(SPLIT_EDGES, SPLIT_MEMBERSHIP, "s:A", "s:D", clusters)
    assert pair.guards == ("conflicting date_of_birth", "conflicting first_name")
    assert "split at its weakest links (conflicting date_of_birth, conflicting first_name)," in (
        format_explanation(pair)
    )
    record = explain_record(SPLIT_EDGES, SPLIT_MEMBERSHIP, "s:A", clusters)
    assert format_explanation(record).splitlines()[-2] == (
        "1 link to other customers was cut when the cluster was split at its weakest links "
        "(conflicting first_name):"
    )


def test_a_cluster_split_in_three_is_followed_through_the_middle_piece():
    members = membership(**{"s:A": ["s:A"], "s:B": ["s:B"], "s:C": ["s:C"]})
    links = edges(exact("s:A", "s:B"), exact("s:B", "s:C"))
    pair = explain_pair(links, members, "s:A", "s:C")
    assert pair.split
    assert [(s.from_resolved_id, s.to_resolved_id) for s in pair.path] == [
        ("s:A", "s:B"),
        ("s:B", "s:C"),
    ]


def test_linked_records_are_explained_by_edges_inside_their_cluster_only():
    # Inside the cluster A and B are three links apart; a shorter route runs through X,
    # a record split off into another cluster, which the published result does not rest on.
    links = edges(
        exact("s:A", "s:D"),
        exact("s:D", "s:C"),
        exact("s:C", "s:B"),
        exact("s:A", "s:X"),
        exact("s:X", "s:B"),
    )
    members = membership(**{"s:A": ["s:A", "s:B", "s:C", "s:D"], "s:X": ["s:X"]})
    path = explain_pair(links, members, "s:A", "s:B").path
    assert [step.to_key for step in path] == ["s:D", "s:C", "s:B"]


def test_a_record_explained_alone_shows_its_cluster_as_a_tree_of_links():
    links = edges(
        exact("s:A", "s:B", "email"),
        exact("s:B", "s:C", "phone", "+12125550101"),
        probable("s:A", "s:E", 8.0, 0.996, NAME_EVIDENCE[:1]),
    )
    members = membership(**{"s:A": ["s:A", "s:B", "s:C", "s:E"], "s:D": ["s:D"]})
    record = explain_record(links, members, "s:A")
    assert (record.resolved_id, record.members) == ("s:A", ["s:A", "s:B", "s:E", "s:C"])
    assert walk(record.paths["s:C"]) == [
        ("s:A", "s:B", "email_exact"),
        ("s:B", "s:C", "phone_exact"),
    ]
    assert record.cut_links == []
    assert format_explanation(record).splitlines() == [
        "s:A is one of 4 records of customer s:A, held together by 3 links:",
        "  s:A",
        "    —email_exact— s:B   shared email a***@x.com",
        "      —phone_exact— s:C   shared phone ***0101",
        "    —probabilistic— s:E   match probability 0.9960, weight +8.0",
        "         first_name  exact match    +5.1",
    ]


def test_a_record_of_a_split_cluster_lists_the_links_the_split_cut():
    record = explain_record(SPLIT_EDGES, SPLIT_MEMBERSHIP, "s:A")
    assert record.members == ["s:A", "s:B"]
    assert walk(record.cut_links) == [("s:B", "s:C", "probabilistic")]
    assert record.cut_links[0].to_resolved_id == "s:D"
    assert format_explanation(record).splitlines()[-2:] == [
        "1 link to other customers was cut when the cluster was split at its weakest links:",
        "  1. s:B —probabilistic— s:C   match probability 0.7400, weight +1.5   [cut]",
    ]


def test_a_record_alone_says_nothing_links_it():
    record = explain_record(CHAIN, CHAIN_MEMBERSHIP, "s:D")
    assert record == RecordExplanation("s:D", "s:D", ["s:D"], {"s:D": []}, [])
    assert format_explanation(record) == (
        "s:D is customer s:D on its own (1 record): no shared identifier or probable match "
        "links it to another record."
    )


def test_an_unknown_key_is_an_error_that_shows_what_keys_look_like():
    with pytest.raises(UnknownRecordError, match="no record with key 'nobody'") as error:
        explain_pair(CHAIN, CHAIN_MEMBERSHIP, "s:A", "nobody")
    assert "keys look like 's:A'" in str(error.value)
    with pytest.raises(UnknownRecordError, match="did you mean 's:C'"):
        explain_record(CHAIN, CHAIN_MEMBERSHIP, "C")


def test_edges_written_before_probabilistic_matching_are_all_deterministic():
    old = CHAIN.select("entity_key_a", "entity_key_b", "rule", "identifier_type", "value")
    pair = explain_pair(old, CHAIN_MEMBERSHIP, "s:A", "s:C")
    assert [(s.rule, s.match_weight, s.evidence) for s in pair.path] == [
        ("email_exact", None, ()),
        ("phone_exact", None, ()),
    ]


def test_outputs_that_disagree_are_reported_not_explained_away():
    # Membership says one cluster, but no published edge joins the two records.
    members = membership(**{"s:A": ["s:A", "s:B", "s:C", "s:D"]})
    pair = explain_pair(CHAIN, members, "s:A", "s:D")
    assert pair.linked and pair.path == []
    assert "run `customer360 run` again" in format_explanation(pair)
    assert "not reached by any published link (s:D)" in format_explanation(
        explain_record(CHAIN, members, "s:A")
    )


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("john.smith@gmail.com", "j***@gmail.com"),
        ("+12125550101", "***0101"),
        ("(212) 555-0199", "***0199"),
        ("LY100200", "***00"),
        ("LY1", "***"),
    ],
)
def test_masked_values_keep_just_enough_to_recognise_them(value: str, masked: str):
    assert mask_value(value) == masked


# Cluster X: a triangle X1-X2-X3 (no bridges); X4 hangs on X3 by a phone shared by three
# records (X5 shares it too), X6 on X1 by a probable match, X7 on X2 by two edges (email
# and loyalty id: no single one of them holds X7). X5 is also linked to X1 (a cycle).
# Cluster Y: Y1-Y2 by email. Cluster Z: a single record.
WEAK_EDGES = edges(
    exact("x:1", "x:2", "email", "a@x.com"),
    exact("x:2", "x:3", "email", "b@x.com"),
    exact("x:3", "x:1", "email", "c@x.com"),
    exact("x:3", "x:4", "phone", "+12125550101"),
    exact("x:3", "x:5", "phone", "+12125550101"),
    exact("x:1", "x:5", "email", "d@x.com"),
    exact("x:2", "x:7", "email", "f@x.com"),
    exact("x:7", "x:2", "loyalty_id", "LY100200"),
    probable("x:1", "x:6", 4.5, 0.96),
    exact("y:1", "y:2", "email", "e@x.com"),
)
WEAK_MEMBERSHIP = membership(
    **{"x:1": [f"x:{n}" for n in range(1, 8)], "y:1": ["y:1", "y:2"], "z:1": ["z:1"]}
)


def test_weakest_links_are_the_bridges_of_the_largest_clusters_weakest_first():
    weakest = weakest_links(WEAK_EDGES, WEAK_MEMBERSHIP, clusters_of(WEAK_MEMBERSHIP), reveal=True)
    assert weakest.select(
        "resolved_id", "cluster_size", "entity_key_a", "entity_key_b", "rule", "value"
    ).rows() == [
        ("x:1", 7, "x:1", "x:6", "probabilistic", None),
        ("x:1", 7, "x:3", "x:4", "phone_exact", "+12125550101"),
        ("y:1", 2, "y:1", "y:2", "email_exact", "e@x.com"),
    ]
    assert weakest.get_column("match_weight").to_list() == [4.5, None, None]
    assert weakest.get_column("value_group_size").to_list() == [None, 3, 2]


def test_weakest_links_are_limited_per_cluster_and_to_the_largest_clusters():
    weakest = weakest_links(
        WEAK_EDGES, WEAK_MEMBERSHIP, clusters_of(WEAK_MEMBERSHIP), top_clusters=1, per_cluster=1
    )
    assert weakest.select("entity_key_a", "entity_key_b").rows() == [("x:1", "x:6")]


def test_weakest_links_mask_values_unless_told_to_reveal_them():
    weakest = weakest_links(WEAK_EDGES, WEAK_MEMBERSHIP, clusters_of(WEAK_MEMBERSHIP))
    assert weakest.get_column("value").to_list() == [None, "***0101", "e***@x.com"]


def test_weakest_links_of_clusters_without_bridges_is_an_empty_table():
    triangle = edges(exact("x:1", "x:2"), exact("x:2", "x:3"), exact("x:3", "x:1"))
    members = membership(**{"x:1": ["x:1", "x:2", "x:3"], "z:1": ["z:1"]})
    weakest = weakest_links(triangle, members, clusters_of(members))
    assert weakest.is_empty()
    assert "resolved_id" in weakest.columns and "match_weight" in weakest.columns


def connected(pairs: list[tuple[int, int]], start: int, goal: int) -> bool:
    """Plain breadth-first search: the reference the bridge search is checked against."""
    seen, frontier = {start}, [start]
    while frontier:
        node = frontier.pop()
        for a, b in pairs:
            for here, there in ((a, b), (b, a)):
                if here == node and there not in seen:
                    seen.add(there)
                    frontier.append(there)
    return goal in seen


def components(pairs: list[tuple[int, int]], nodes: int) -> dict[int, int]:
    """node → the smallest node it is connected to (a resolved id for each cluster)."""
    return {n: min(m for m in range(nodes) if connected(pairs, n, m)) for n in range(nodes)}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 6)).filter(lambda p: p[0] != p[1]),
        max_size=12,
    )
)
def test_weakest_links_are_exactly_the_edges_whose_removal_disconnects_their_ends(pairs):
    """Against brute force: drop each edge in turn and see whether its ends still meet."""
    resolved = components(pairs, 7)
    members = membership(
        **{
            f"s:{root}": [f"s:{n}" for n in range(7) if resolved[n] == root]
            for root in set(resolved.values())
        }
    )
    links = edges(*(exact(f"s:{a}", f"s:{b}", "email", f"v{i}") for i, (a, b) in enumerate(pairs)))
    weakest = weakest_links(
        links, members, clusters_of(members), top_clusters=7, per_cluster=12, reveal=True
    )
    expected = {
        f"v{i}" for i, (a, b) in enumerate(pairs) if not connected(pairs[:i] + pairs[i + 1 :], a, b)
    }
    assert set(weakest.get_column("value")) == expected


def test_the_same_key_twice_is_one_record():
    pair = explain_pair(CHAIN, CHAIN_MEMBERSHIP, "s:B", "s:B")
    assert pair == PairExplanation("s:B", "s:B", "s:A", "s:A", 3, 3, True, [])
    assert format_explanation(pair) == "s:B is one record (resolved_id s:A)."
