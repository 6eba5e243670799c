"""Missed pairs are put down to the first reason that applies, and name-only links are
measured against truth."""

from __future__ import annotations

import polars as pl

from customer360.core.missed_pairs import (
    REASON_CANDIDATE,
    REASON_GUARDED,
    REASON_NAMES_ONLY,
    REASON_NEAR_IDENTIFIER,
    REASON_NO_NAME,
    REASON_NOT_BLOCKED,
    REASON_SPLIT,
    REASONS,
    missed_pairs,
    missed_summary,
    name_collisions,
)

NAMES = ["first_name", "last_name"]
BLOCKING = [["first_name", "last_name", "postcode"]]

# key: (person, customer, first, last, postcode, date of birth)
RECORDS = {
    "a1": ("p1", "c1", "ann", "lee", None, "1980-01-01"),  # linked, then cut
    "a2": ("p1", "c2", "ann", "li", None, "1980-02-01"),
    "b1": ("p2", "c3", "bob", "ray", None, None),  # a phone the guard held back
    "b2": ("p2", "c4", None, None, None, None),
    "c1": ("p3", "c5", "cy", "ford", None, None),  # emails one slip apart
    "c2": ("p3", "c6", "cy", "ford", None, None),
    "d1": ("p4", "c7", "di", "moss", "10001", "1970-05-05"),  # the model's candidates
    "d2": ("p4", "c8", "di", "moss", "10001", None),
    "e1": ("p5", "c9", "ed", None, None, None),  # no last name on one side
    "e2": ("p5", "c10", "ed", "hale", None, None),
    "f1": ("p6", "c11", "fay", "cole", None, None),  # nothing but the names
    "f2": ("p6", "c12", "fay", "cole", None, None),
    "g1": ("p7", "c13", "gus", "webb", None, "1990-01-01"),  # names and dob, never blocked
    "g2": ("p7", "c14", "gus", "web", None, "1990-01-01"),
    "h1": ("p8", "c15", "hal", "ode", None, None),  # found: not missed
    "h2": ("p8", "c15", "hal", "ode", None, None),
    "x1": ("p9", "c16", "fay", "cole", None, None),  # somebody else of the same name
}


def frames() -> dict[str, pl.DataFrame]:
    keys = list(RECORDS)
    column = dict(
        zip(
            ["person_id", "resolved_id", "first_name", "last_name", "postcode", "date_of_birth"],
            zip(*RECORDS.values(), strict=True),
            strict=True,
        )
    )
    identifiers = pl.DataFrame(
        [
            ("b1", "phone", "+12125550187", "linkable"),
            ("b2", "phone", "+12125550187", "linkable"),
            ("c1", "email", "cy.ford@mail.com", "linkable"),
            ("c2", "email", "cy.frod@mail.com", "linkable"),
            ("f1", "email", "fay@mail.com", "linkable"),
            ("f2", "email", "fay@mail.com", "excluded"),  # not linkable: no evidence
        ],
        schema=["entity_key", "identifier_type", "value", "status"],
        orient="row",
    )
    return {
        "attributes": pl.DataFrame(
            {"entity_key": keys, **{c: list(column[c]) for c in [*NAMES, "postcode"]}}
        ).with_columns(date_of_birth=pl.Series(column["date_of_birth"], dtype=pl.String)),
        "identifiers": identifiers,
        "membership": pl.DataFrame({"entity_key": keys, "resolved_id": column["resolved_id"]}),
        "truth": pl.DataFrame({"entity_key": keys, "person_id": column["person_id"]}),
        "edges": pl.DataFrame({"entity_key_a": ["a1"], "entity_key_b": ["a2"]}),
    }


def test_each_missed_pair_gets_the_first_reason_that_applies() -> None:
    missed = missed_pairs(**frames(), names=NAMES, blocking=BLOCKING)
    reasons = {(a, b): reason for a, b, reason, _ in missed.iter_rows()}
    assert reasons == {
        ("a1", "a2"): REASON_SPLIT,
        ("b1", "b2"): REASON_GUARDED,
        ("c1", "c2"): REASON_NEAR_IDENTIFIER,
        ("d1", "d2"): REASON_CANDIDATE,
        ("e1", "e2"): REASON_NO_NAME,
        ("f1", "f2"): REASON_NAMES_ONLY,
        ("g1", "g2"): REASON_NOT_BLOCKED,
    }
    equal = missed.filter("names_equal").select("entity_key_a").to_series().to_list()
    assert equal == ["c1", "d1", "f1"]


def test_the_summary_lists_every_reason_in_order_with_its_share() -> None:
    missed = missed_pairs(**frames(), names=NAMES, blocking=BLOCKING)
    summary = missed_summary(missed.filter(pl.col("reason") != REASON_SPLIT))
    assert summary["reason"].to_list() == list(REASONS)
    assert summary["pairs"].to_list() == [0, 1, 1, 1, 1, 1, 1]
    assert summary["share"].to_list() == [0.0, *[round(1 / 6, 4)] * 6]
    assert summary["names_equal"].sum() == 3


def test_name_collisions_count_cross_customer_pairs_and_the_true_ones() -> None:
    parts = frames()
    # fay cole: f1-f2 (one person), f1-x1 and f2-x1 (two people); hal ode is one customer;
    # cy ford and di moss are one person each
    pairs, same = name_collisions(parts["attributes"], parts["membership"], parts["truth"], NAMES)
    assert (pairs, same) == (5, 3)
