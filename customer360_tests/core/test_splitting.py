"""Over-merge splitting: components with conflicting values or too many records are cut
at their weakest links, and only there."""

from __future__ import annotations

import polars as pl
import pytest

from customer360.core.clusters import resolve_membership
from customer360.core.edges import EDGE_SCHEMA
from customer360.core.spec import Splitting
from customer360.core.splitting import (
    SIZE_GUARD,
    conflict_connection,
    link_strength,
    split_over_merged,
    split_verdict,
)

NAMES = Splitting(conflicts={"first_name": "name"})


def people(*rows: tuple[str, str | None, str | None]) -> pl.DataFrame:
    """(entity_key, first_name, date_of_birth) rows in canonical order."""
    columns = ["entity_key", "first_name", "date_of_birth"]
    return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String), orient="row").with_columns(
        pl.lit("Gomez").alias("last_name")
    )


def links(*rows: tuple[str, str, str, str | float]) -> pl.DataFrame:
    """(a, b, identifier type or 'probabilistic', shared value or match weight)."""
    return pl.DataFrame(
        [
            {
                "entity_key_a": a,
                "entity_key_b": b,
                "rule": "probabilistic" if kind == "probabilistic" else f"{kind}_exact",
                "identifier_type": None if kind == "probabilistic" else kind,
                "value": None if kind == "probabilistic" else evidence,
                "match_probability": None,
                "match_weight": evidence if kind == "probabilistic" else None,
                "evidence": None,
            }
            for a, b, kind, evidence in rows
        ],
        schema=EDGE_SCHEMA,
    )


def cut_pairs(cut: pl.DataFrame) -> set[tuple[str, str, str]]:
    return set(cut.select("entity_key_a", "entity_key_b", "guard").iter_rows())


def test_a_household_phone_is_cut_rather_than_a_persons_own_links():
    # Ann's three records share an email and a card; her till record carries the
    # household landline that Raymond's record holds too. Ann and Raymond conflict.
    records = people(
        ("crm:ann", "Ann", None),
        ("web:ann", "Anne", None),
        ("pos:1", None, None),
        ("crm:ray", "Raymond", None),
        ("web:ray", "Ray", None),
    )
    edges = links(
        ("crm:ann", "web:ann", "email", "ann@x.org"),
        ("crm:ann", "pos:1", "loyalty_id", "L1"),
        ("web:ann", "pos:1", "loyalty_id", "L1"),
        ("crm:ray", "pos:1", "phone", "+15550100"),
        ("crm:ray", "web:ray", "email", "ray@x.org"),
    )
    kept, cut = split_over_merged(records, edges, NAMES)
    assert cut_pairs(cut) == {("crm:ray", "pos:1", "conflicting first_name")}
    assert kept.height == 4
    assert cut.columns == [*edges.columns, "guard"]


def test_the_weakest_probabilistic_link_is_cut_between_conflicting_dates_of_birth():
    records = people(
        ("crm:1", "Jo", "1970-03-04"),
        ("crm:2", "Jo", None),
        ("crm:3", "Jo", "2001-11-12"),
    )
    edges = links(
        ("crm:1", "crm:2", "probabilistic", 20.0), ("crm:2", "crm:3", "probabilistic", 8.0)
    )
    splitting = Splitting(conflicts={"date_of_birth": "date"})
    _, cut = split_over_merged(records, edges, splitting)
    assert cut_pairs(cut) == {("crm:2", "crm:3", "conflicting date_of_birth")}


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("Robert", "1970-03-04"), ("Bob", "1970-03-04")),  # a nickname
        (("Robert", None), ("Bbo", None)),  # a slip in a nickname
        (("Amy", None), ("AYM", None)),  # a slip in a short name
        (("Ann", "1970-03-04"), ("Ann", "1970-04-03")),  # day and month swapped
        (("Ann", "1970-03-04"), ("Ann", "1970-03-05")),  # a typo in the date
    ],
)
def test_nicknames_typos_and_swapped_days_are_no_conflict(one, other):
    records = people(("s:1", *one), ("s:2", *other))
    edges = links(("s:1", "s:2", "email", "e"))
    splitting = Splitting(conflicts={"first_name": "name", "date_of_birth": "date"})
    assert split_over_merged(records, edges, splitting).cut.is_empty()


def test_a_first_name_the_cluster_holds_as_a_last_name_is_no_conflict_when_swappable():
    records = people(("s:1", "Hiroshi", None), ("s:2", "Gomez", None))  # "Gomez Hiroshi"
    edges = links(("s:1", "s:2", "email", "e"))
    swappable = Splitting(conflicts={"first_name": "name"}, swappable={"first_name": "last_name"})
    assert split_over_merged(records, edges, swappable).cut.is_empty()
    assert split_over_merged(records, edges, NAMES).cut.height == 1


def named(*rows: tuple[str, str | None, str | None]) -> pl.DataFrame:
    """(entity_key, first_name, last_name) rows in canonical order."""
    columns = ["entity_key", "first_name", "last_name"]
    return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String), orient="row")


SWAPPABLE = Splitting(conflicts={"first_name": "name"}, swappable={"first_name": "last_name"})


def test_a_relatives_swapped_record_does_not_excuse_a_first_name_held_as_itself():
    # Karen's order keyed her names the other way round; the model linked her to
    # Lawrence of the same address. "karen" is a last name once, a first name twice.
    records = named(
        ("crm:1", "Lawrence", "Garcia"),
        ("web:1", "Lawrence", "Garcia"),
        ("crm:2", "Karen", "Garcia"),
        ("web:2", "Karen", "Garcia"),
        ("shop:2", "Garcia", "Karen"),
    )
    edges = links(
        ("crm:1", "web:1", "email", "l"),
        ("crm:2", "web:2", "email", "k"),
        ("crm:2", "shop:2", "email", "k"),
        ("crm:1", "crm:2", "probabilistic", 3.0),
    )
    assert cut_pairs(split_over_merged(records, edges, SWAPPABLE).cut) == {
        ("crm:1", "crm:2", "conflicting first_name")
    }


def test_a_swapped_record_with_a_slip_is_still_read_as_swapped():
    # "Smxth Sean": the family name, mistyped, in the given-name field
    records = named(
        ("crm:1", "Sean", "Smith"), ("web:1", "Sean", "Smith"), ("shop:1", "Smxth", "Sean")
    )
    edges = links(("crm:1", "web:1", "email", "s"), ("web:1", "shop:1", "email", "s"))
    assert split_over_merged(records, edges, SWAPPABLE).cut.is_empty()
    assert split_over_merged(records, edges, NAMES).cut.height == 1


def test_every_conflicting_value_ends_in_its_own_piece():
    # three people chained by two shared phones: both links must go
    records = people(("s:1", "Ann", None), ("s:2", "Mary", None), ("s:3", "Zoe", None))
    edges = links(("s:1", "s:2", "phone", "p1"), ("s:2", "s:3", "phone", "p2"))
    _, cut = split_over_merged(records, edges, NAMES)
    assert cut.height == 2


def test_components_are_cut_together_each_at_its_own_weakest_link():
    records = people(
        ("s:1", "Ann", None),
        ("s:2", "Zoe", None),
        ("s:3", "Ann", None),
        ("t:1", "Bob", "1980-01-01"),
        ("t:2", "Bob", None),
        ("t:3", "Bob", "1990-06-30"),
    )
    edges = links(
        ("s:1", "s:2", "phone", "p"),
        ("s:2", "s:3", "probabilistic", 7.0),
        ("t:1", "t:2", "email", "e"),
        ("t:2", "t:3", "probabilistic", 1.0),  # weaker than the email (1.6 bits)
    )
    splitting = Splitting(conflicts={"first_name": "name", "date_of_birth": "date"})
    _, cut = split_over_merged(records, edges, splitting)
    assert cut_pairs(cut) == {
        ("s:2", "s:3", "conflicting first_name"),
        ("s:1", "s:2", "conflicting first_name"),
        ("t:2", "t:3", "conflicting date_of_birth"),
    }


def test_oversize_components_are_cut_at_their_weakest_link():
    # two people of three records each, joined by one value that four records share
    keys = [f"s:{i}" for i in range(6)]
    records = people(*[(key, None, None) for key in keys])
    edges = links(
        ("s:0", "s:1", "email", "a"),
        ("s:1", "s:2", "email", "b"),
        ("s:0", "s:2", "probabilistic", 25.0),
        ("s:3", "s:4", "email", "c"),
        ("s:4", "s:5", "email", "d"),
        ("s:2", "s:3", "phone", "shared"),
        ("s:2", "s:4", "phone", "shared"),
        ("s:2", "s:5", "phone", "shared"),
    )
    kept, cut = split_over_merged(records, edges, Splitting(max_cluster_size=4))
    assert set(cut.get_column("guard")) == {SIZE_GUARD}
    assert set(cut.get_column("value")) == {"shared"}
    assert sorted(_pieces(keys, kept)) == [3, 3]


def test_a_value_many_records_share_is_weaker_than_a_rare_one():
    # one record links to two people: through a value four records share (weak) and
    # through one only two records share (strong); the conflict cuts the weak one
    records = people(
        ("s:a", "Ann", None),
        ("s:x", None, None),
        ("s:b", "Zoe", None),
        ("s:b2", "Zoe", None),
        ("s:b3", "Zoe", None),
    )
    edges = links(
        ("s:a", "s:x", "email", "rare"),
        ("s:b", "s:x", "phone", "shared"),
        ("s:b", "s:b2", "phone", "shared"),
        ("s:b", "s:b3", "phone", "shared"),
    )
    _, cut = split_over_merged(records, edges, NAMES)
    assert cut_pairs(cut) == {("s:b", "s:x", "conflicting first_name")}


def test_without_splitting_nothing_is_cut():
    records = people(("s:1", "Ann", None), ("s:2", "Zoe", None))
    edges = links(("s:1", "s:2", "phone", "p"))
    kept, cut = split_over_merged(records, edges, None)
    assert kept.equals(edges) and cut.is_empty()


def test_the_split_does_not_depend_on_edge_order():
    records = people(
        ("s:1", "Ann", None), ("s:2", None, None), ("s:3", "Zoe", None), ("s:4", "Zoe", None)
    )
    edges = links(
        ("s:1", "s:2", "email", "e"),
        ("s:2", "s:3", "phone", "p"),
        ("s:2", "s:4", "phone", "p"),
        ("s:3", "s:4", "probabilistic", 9.0),
    )
    forward = split_over_merged(records, edges, NAMES).cut
    backward = split_over_merged(records, edges.reverse(), NAMES).cut
    assert cut_pairs(forward) == cut_pairs(backward)


def _pieces(keys: list[str], kept: pl.DataFrame) -> list[int]:
    records = pl.DataFrame({"entity_key": keys, "source": "s", "record_key": keys})
    membership = resolve_membership(records, kept).membership
    return membership.group_by("resolved_id").len().get_column("len").to_list()


PERSON = Splitting(
    conflicts={"first_name": "name", "date_of_birth": "date"},
    swappable={"first_name": "last_name"},
)


def customers(*rows: tuple[str, str | None, str | None, str | None]) -> pl.DataFrame:
    """(resolved_id, first_name, last_name, date_of_birth) name keys, one row a record."""
    columns = ["resolved_id", "first_name", "last_name", "date_of_birth"]
    return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String), orient="row")


def record(first_name: str | None, last_name: str | None, date_of_birth: str | None) -> dict:
    return {"first_name": first_name, "last_name": last_name, "date_of_birth": date_of_birth}


def conflicts_of(record: dict, held: pl.DataFrame, splitting: Splitting | None) -> set[str]:
    with conflict_connection() as con:
        return split_verdict(record, held, splitting, con).conflicting


def test_customers_whose_records_cannot_be_the_records_person_conflict():
    held = customers(
        ("crm:1", "jacob", "brown", "1980-03-14"),
        ("crm:1", "jake", "brown", None),  # a nickname of the record's name
        ("crm:2", "jacob", "brown", "1992-07-01"),  # another birth date
        ("crm:3", "emma", "brown", None),  # another first name
        ("crm:4", "jacob", "brown", "1980-14-03"),  # day and month swapped
        ("crm:5", "jacbo", "brown", "1908-03-14"),  # a slip in each
        ("crm:6", None, None, None),  # nothing to compare
    )
    found = conflicts_of(record("jacob", "brown", "1980-03-14"), held, PERSON)
    assert found == {"crm:2", "crm:3"}


def test_a_swapped_given_name_is_no_conflict():
    held = customers(("crm:1", "brown", "jacob", None), ("crm:2", "emma", "stone", None))
    assert conflicts_of(record("jacob", "brown", None), held, PERSON) == {"crm:2"}
    no_swaps = Splitting(conflicts=PERSON.conflicts)
    assert conflicts_of(record("jacob", "brown", None), held, no_swaps) == {
        "crm:1",
        "crm:2",
    }


def test_without_conflict_attributes_or_values_nobody_conflicts():
    held = customers(("crm:1", "emma", "stone", "1970-01-01"))
    assert conflicts_of(record("jacob", "brown", None), held, None) == set()
    assert conflicts_of(record(None, None, None), held, PERSON) == set()


def test_a_relatives_swapped_record_does_not_hide_a_customer_the_record_conflicts_with():
    held = customers(
        ("crm:1", "karen", "garcia", None),
        ("crm:1", "karen", "garcia", None),
        ("crm:1", "garcia", "karen", None),  # one of Karen's records, names swapped
    )
    assert conflicts_of(record("lawrence", "garcia", None), held, PERSON) == {"crm:1"}
    assert conflicts_of(record("karen", "garcia", None), held, PERSON) == set()


def kept_apart(record: dict, held: pl.DataFrame, splitting: Splitting | None = PERSON) -> bool:
    with conflict_connection() as con:
        return split_verdict(record, held, splitting, con).kept_apart


def test_customers_whose_records_conflict_with_each_other_are_kept_apart():
    theresa_and_terence = customers(
        ("crm:1", "theresa", "brown", None),
        ("crm:2", "terence", "brown", None),
        ("crm:2", "terence", "brown", None),
    )
    # "terry" is a nickname of both: the record conflicts with neither, they with each other
    assert kept_apart(record("terry", "brown", None), theresa_and_terence)
    assert conflicts_of(record("terry", "brown", None), theresa_and_terence, PERSON) == set()
    twins = customers(("crm:1", "jacob", "brown", "1980-03-14"), ("crm:2", "jake", None, None))
    assert not kept_apart(record("jacob", "brown", None), twins)
    assert not kept_apart(record("jacob", "brown", None), twins, None)


def test_only_customers_the_record_can_join_are_weighed_against_each_other():
    held = customers(
        ("crm:1", "jacob", "brown", None),
        ("crm:2", "jake", "brown", None),
        ("crm:3", "emma", "brown", None),  # conflicts with all: the record is cut from her
    )
    assert conflicts_of(record("jacob", "brown", None), held, PERSON) == {"crm:3"}
    assert not kept_apart(record("jacob", "brown", None), held)


def test_a_conflict_inside_one_customer_does_not_keep_customers_apart():
    held = customers(
        ("crm:1", "emma", "stone", None),
        ("crm:1", "jacob", "stone", None),  # one customer already, conflict or not
        ("crm:2", None, None, "1980-01-01"),  # nothing that conflicts with crm:1's
    )
    assert not kept_apart(record(None, None, None), held)
    another_birth_date = customers(("crm:3", None, None, "1971-06-30"))
    assert kept_apart(record(None, None, None), held.vstack(another_birth_date))


def test_link_strength_is_the_split_weight_in_hundredths_of_a_bit():
    links = pl.DataFrame(
        {"match_weight": [None, None, 3.456, -2.0], "group_size": [2, 1024, 5, 5]},
        schema={"match_weight": pl.Float64, "group_size": pl.Int64},
    )
    strengths = links.select(link_strength(pl.col("match_weight"), pl.col("group_size"), 1024))
    # log2(1024 / 2) = 9 bits; a value every record shares still links, at the least
    assert strengths.to_series().to_list() == [900, 1, 346, 1]
