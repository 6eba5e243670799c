"""Edges: each linkable identifier group becomes a star anchored on its first record."""

from __future__ import annotations

import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from customer360.core.edges import (
    EDGE_SCHEMA,
    SKIPPED_GROUP_SCHEMA,
    build_edges,
    guarded_partners,
    skipped_groups,
)
from customer360.core.identifiers import IDENTIFIER_SCHEMA
from customer360.core.names import NameAgreement, name_key

from .conftest import records_frame


def ordered_records(*keys: str) -> pl.DataFrame:
    """Records in exactly this order (the canonical order edges anchor on)."""
    return records_frame([{"entity_key": k} for k in keys], columns=[])


def identifiers(*rows: tuple[str, str, str, str]) -> pl.DataFrame:
    """(entity_key, identifier_type, value, status) rows as an identifiers table."""
    return pl.DataFrame(
        {
            "entity_key": [r[0] for r in rows],
            "identifier_type": [r[1] for r in rows],
            "value_raw": [r[2] for r in rows],
            "value": [r[2] for r in rows],
            "status": [r[3] for r in rows],
            "reason": [None if r[3] == "linkable" else "why" for r in rows],
            "group_size": [None] * len(rows),
        },
        schema=IDENTIFIER_SCHEMA,
    )


def test_group_of_n_gives_n_minus_1_edges_anchored_on_the_first_record():
    # Record order deliberately differs from alphabetical order: the anchor is the
    # record first in ``records`` ("s:z"), not the smallest key.
    records = ordered_records("s:z", "s:b", "s:a", "s:m")
    ids = identifiers(
        ("s:a", "email", "ann@x.com", "linkable"),
        ("s:m", "email", "ann@x.com", "linkable"),
        ("s:z", "email", "ann@x.com", "linkable"),
        ("s:b", "email", "ann@x.com", "linkable"),
    )
    edges = build_edges(records, ids).edges
    assert edges.schema == pl.Schema(EDGE_SCHEMA)
    # Deterministic edges carry no probabilistic evidence: the last three columns are null.
    assert edges.rows() == [
        ("s:z", "s:b", "email_exact", "email", "ann@x.com", None, None, None),
        ("s:z", "s:a", "email_exact", "email", "ann@x.com", None, None, None),
        ("s:z", "s:m", "email_exact", "email", "ann@x.com", None, None, None),
    ]


def test_each_identifier_type_and_value_is_its_own_group():
    records = ordered_records("s:1", "s:2", "s:3")
    ids = identifiers(
        ("s:2", "email", "b@x.com", "linkable"),
        ("s:3", "email", "b@x.com", "linkable"),
        ("s:1", "email", "a@x.com", "linkable"),  # alone: no edge
        ("s:3", "phone", "+12125550101", "linkable"),
        ("s:1", "phone", "+12125550101", "linkable"),
        # Same text as an email group, other type: no cross-type link.
        ("s:1", "loyalty", "b@x.com", "linkable"),
    )
    edges = build_edges(records, ids).edges
    assert edges.select("entity_key_a", "entity_key_b", "rule").rows() == [
        ("s:2", "s:3", "email_exact"),
        ("s:1", "s:3", "phone_exact"),
    ]


def test_values_that_are_not_linkable_give_no_edges():
    records = ordered_records("s:1", "s:2", "s:3", "s:4")
    ids = identifiers(
        *[(k, "email", "noreply@x.com", "excluded") for k in ("s:1", "s:2")],
        *[(k, "email", "shared@x.com", "oversize") for k in ("s:1", "s:2", "s:3")],
        *[(k, "phone", "+12125550101", "inactive") for k in ("s:3", "s:4")],
    )
    assert build_edges(records, ids).edges.is_empty()


def test_identifiers_of_unknown_records_are_ignored():
    records = ordered_records("s:1", "s:2")
    ids = identifiers(
        ("s:1", "email", "a@x.com", "linkable"),
        ("s:2", "email", "a@x.com", "linkable"),
        ("gone:9", "email", "a@x.com", "linkable"),
    )
    assert build_edges(records, ids).edges.select("entity_key_a", "entity_key_b").rows() == [
        ("s:1", "s:2"),
    ]


def test_skipped_groups_list_oversize_groups_with_sorted_sample_members():
    big = [f"s:{c}" for c in "gfedcba"]  # seven members, listed out of order
    ids = identifiers(
        *[(k, "email", "shared@x.com", "oversize") for k in big],
        *[(k, "phone", "+12125550000", "oversize") for k in ("s:y", "s:x", "s:z")],
        ("s:a", "email", "ann@x.com", "linkable"),
        ("s:b", "email", "ann@x.com", "linkable"),
        ("s:c", "email", "noreply@x.com", "excluded"),
    )
    skipped = skipped_groups(ids)
    assert skipped.schema == pl.Schema(SKIPPED_GROUP_SCHEMA)
    assert skipped.rows() == [
        ("email", "shared@x.com", 7, "why", ["s:a", "s:b", "s:c", "s:d", "s:e"]),
        ("phone", "+12125550000", 3, "why", ["s:x", "s:y", "s:z"]),
    ]


def test_no_oversize_groups_gives_an_empty_skipped_table():
    ids = identifiers(("s:1", "email", "a@x.com", "linkable"))
    skipped = skipped_groups(ids)
    assert skipped.is_empty()
    assert skipped.schema == pl.Schema(SKIPPED_GROUP_SCHEMA)


def named_records(*rows: tuple[str, str | None]) -> pl.DataFrame:
    """(entity_key, first_name) rows, in this order."""
    return records_frame(
        [{"entity_key": k, "first_name": name} for k, name in rows], columns=["first_name"]
    )


def test_guarded_group_with_conflicting_names_links_only_agreeing_records():
    # A household landline: Mary twice, Robert once, and a till record without a name.
    records = named_records(("s:1", "Mary"), ("s:2", "Robert"), ("s:3", "MARY "), ("s:4", None))
    ids = identifiers(*[(k, "phone", "+12125550101", "linkable") for k in records["entity_key"]])
    links = build_edges(records, ids, {"phone": "first_name"})
    assert links.edges.select("entity_key_a", "entity_key_b").rows() == [("s:1", "s:3")]
    assert links.guarded_groups.select("identifier_type", "value", "group_size").rows() == [
        ("phone", "+12125550101", 4)
    ]
    assert links.guarded_groups["reason"][0].startswith("conflicting first_name")


def test_nicknames_and_typos_do_not_count_as_conflicts():
    records = named_records(("s:1", "Robert"), ("s:2", "Bob"), ("s:3", "ROBERT"), ("s:4", None))
    ids = identifiers(*[(k, "phone", "+12125550101", "linkable") for k in records["entity_key"]])
    links = build_edges(records, ids, {"phone": "first_name"})
    # one person: a star over all four records, the nameless one included
    assert links.edges.select("entity_key_a", "entity_key_b").rows() == [
        ("s:1", "s:2"),
        ("s:1", "s:3"),
        ("s:1", "s:4"),
    ]
    assert links.guarded_groups.is_empty()


def test_a_slip_of_the_keyboard_is_the_same_name():
    records = named_records(("s:1", "Jonathan"), ("s:2", "Jonahtan"))
    ids = identifiers(*[(k, "phone", "+12125550101", "linkable") for k in ("s:1", "s:2")])
    links = build_edges(records, ids, {"phone": "first_name"})
    assert links.edges.select("entity_key_a", "entity_key_b").rows() == [("s:1", "s:2")]


def test_unguarded_identifier_types_ignore_names():
    records = named_records(("s:1", "Mary"), ("s:2", "Robert"))
    ids = identifiers(*[(k, "email", "family@x.com", "linkable") for k in ("s:1", "s:2")])
    links = build_edges(records, ids, {"phone": "first_name"})
    assert links.edges.select("entity_key_a", "entity_key_b").rows() == [("s:1", "s:2")]


def test_guarded_groups_are_listed_among_skipped_groups():
    records = named_records(("s:1", "Mary"), ("s:2", "Robert"))
    ids = identifiers(*[(k, "phone", "+12125550101", "linkable") for k in ("s:1", "s:2")])
    links = build_edges(records, ids, {"phone": "first_name"})
    assert links.edges.is_empty()
    skipped = skipped_groups(ids, links.guarded_groups)
    assert skipped.select("identifier_type", "group_size").rows() == [("phone", 2)]


def test_a_scan_of_the_identifiers_links_and_skips_as_the_table():
    records = named_records(("s:1", "Mary"), ("s:2", "Robert"), ("s:3", "Mary"))
    ids = identifiers(
        *[(k, "phone", "+12125550101", "linkable") for k in ("s:1", "s:2", "s:3")],
        ("s:1", "email", "m@x.com", "linkable"),
        ("s:3", "email", "m@x.com", "linkable"),
        ("s:2", "email", "shop@x.com", "oversize"),
    )
    table = build_edges(records, ids, {"phone": "first_name"})
    scanned = build_edges(records, ids.lazy(), {"phone": "first_name"})
    assert scanned.edges.equals(table.edges) and not table.edges.is_empty()
    assert scanned.guarded_groups.equals(table.guarded_groups)
    assert skipped_groups(ids.lazy(), scanned.guarded_groups).equals(
        skipped_groups(ids, table.guarded_groups)
    )


NAMES = ["Mary", "MARY ", "Robert", "Bob", "Jon", "John", "Jonathan", "Jonahtan", "Ann", " ", None]


@settings(max_examples=60, deadline=None)
@given(
    members=st.lists(st.sampled_from(NAMES), min_size=1, max_size=5),
    newcomer=st.sampled_from(NAMES),
)
@example(members=[None], newcomer=None)  # no names at all
@example(members=["Mary", "Robert"], newcomer=None)  # a conflict the nameless cannot join
def test_one_more_record_links_where_the_batch_links_it(
    members: list[str | None], newcomer: str | None
) -> None:
    """The service's one-record rule gives the batch's edges for that record."""
    rows = [(f"s:{i}", name) for i, name in enumerate([*members, newcomer])]
    records = named_records(*rows)
    ids = identifiers(*[(key, "phone", "+12125550101", "linkable") for key, _ in rows])
    edges = build_edges(records, ids, {"phone": "first_name"}).edges
    new_key = rows[-1][0]
    batch = sorted(
        other
        for a, b in edges.select("entity_key_a", "entity_key_b").iter_rows()
        for other in ((b,) if a == new_key else (a,) if b == new_key else ())
    )

    names = pl.DataFrame({"name": [*members, newcomer]}, schema={"name": pl.String})
    keys = names.select(name_key("name")).to_series()
    partners = guarded_partners(keys[:-1].to_list(), keys[-1], NameAgreement())
    service = ["s:0"] if partners is None else sorted(f"s:{i}" for i in partners)
    assert service == batch
