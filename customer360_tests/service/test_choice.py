"""The default chooser follows the batch's merge rule: the oldest id wins."""

from __future__ import annotations

from customer360.service.choice import Candidate, Conflict, choose_by_exact_identifiers
from customer360.service.mapping import Observation

RECORD = Observation([], {})


def test_no_candidate_is_a_new_customer() -> None:
    choice = choose_by_exact_identifiers(RECORD, [])
    assert (choice.resolved_id, choice.matched_on, choice.confidence) == (None, [], 1.0)


def test_one_customer_matched_on_every_identifier_that_points_at_it() -> None:
    choice = choose_by_exact_identifiers(
        RECORD,
        [Candidate("crm:A", "email", "crm:A", 3), Candidate("crm:A", "phone", "shop:7", 3)],
    )
    assert (choice.resolved_id, choice.matched_on, choice.matched_entity_key) == (
        "crm:A",
        ["email", "phone"],
        "crm:A",
    )
    assert choice.confidence == 1.0 and choice.conflicts == []


def test_several_customers_the_first_issued_wins_then_registered_before_real_time() -> None:
    candidates = [
        Candidate("inbox:web:2", "loyalty_id", "inbox:web:2", None),  # handed out in real time
        Candidate("crm:B", "phone", "crm:B", 9),
        Candidate("crm:A", "email", "crm:A", 4),  # issued first
        Candidate("crm:A", "phone", "crm:A2", 4),
    ]
    choice = choose_by_exact_identifiers(RECORD, candidates)
    assert choice.resolved_id == "crm:A" and choice.matched_on == ["email", "phone"]
    assert choice.conflicts == [
        Conflict("crm:B", ["phone"]),
        Conflict("inbox:web:2", ["loyalty_id"]),
    ]
    # links: email and phone to A, phone to B, loyalty_id to the real-time id — 2 of 4 for A
    assert choice.confidence == 0.5


def test_ids_handed_out_in_real_time_order_by_id_as_the_batch_registers_them_together() -> None:
    choice = choose_by_exact_identifiers(
        RECORD,
        [
            Candidate("inbox:web:9", "email", "inbox:web:9", None),
            Candidate("inbox:web:10", "phone", "inbox:web:10", None),
        ],
    )
    assert choice.resolved_id == "inbox:web:10"  # '1' sorts before '9'


def test_customers_the_record_conflicts_with_are_passed_over_but_still_reported() -> None:
    candidates = [
        Candidate("crm:A", "phone", "crm:A", 1, conflicting=True),  # oldest, another birth date
        Candidate("crm:B", "email", "crm:B", 5),
        Candidate("crm:B", "phone", "crm:B2", 5),
        Candidate("crm:C", "loyalty_id", "crm:C", 7),
    ]
    choice = choose_by_exact_identifiers(RECORD, candidates)
    assert (choice.resolved_id, choice.matched_on) == ("crm:B", ["email", "phone"])
    assert choice.conflicts == [Conflict("crm:A", ["phone"]), Conflict("crm:C", ["loyalty_id"])]
    assert choice.confidence == 0.5  # two of the four links point at the choice


def test_when_every_customer_conflicts_the_oldest_is_chosen_as_before() -> None:
    candidates = [
        Candidate("crm:B", "email", "crm:B", 5, conflicting=True),
        Candidate("crm:A", "phone", "crm:A", 1, conflicting=True),
    ]
    choice = choose_by_exact_identifiers(RECORD, candidates)
    assert choice.resolved_id == "crm:A" and choice.conflicts == [Conflict("crm:B", ["email"])]


def test_customers_the_split_will_divide_again_go_by_link_strength_not_age() -> None:
    # a guarded phone reaches one record of the older B and two of A; B and A conflict
    candidates = [
        Candidate("crm:B", "phone", "crm:B", 2, strength=1800),
        Candidate("crm:A", "phone", "crm:A", 6, strength=1800),
        Candidate("crm:A", "phone", "crm:A2", 6, strength=1800),
    ]
    choice = choose_by_exact_identifiers(RECORD, candidates)
    assert (choice.resolved_id, choice.matched_entity_key) == ("crm:A", "crm:A")
    assert choice.conflicts == [Conflict("crm:B", ["phone"])]
    assert choice.confidence == 0.5  # links count identifier types, not records


def test_equal_strength_goes_to_the_oldest() -> None:
    candidates = [
        Candidate("crm:A", "email", "crm:A", 6, strength=1900),
        Candidate("crm:B", "email", "crm:B", 2, strength=1900),
    ]
    assert choose_by_exact_identifiers(RECORD, candidates).resolved_id == "crm:B"


def test_a_strong_link_to_a_customer_the_record_conflicts_with_does_not_count() -> None:
    candidates = [
        Candidate("crm:A", "email", "crm:A", 1, conflicting=True, strength=5000),
        Candidate("crm:B", "phone", "crm:B", 2, strength=1700),
        Candidate("crm:C", "loyalty_id", "crm:C", 3, strength=1900),
    ]
    choice = choose_by_exact_identifiers(RECORD, candidates)
    assert choice.resolved_id == "crm:C"
    assert [c.resolved_id for c in choice.conflicts] == ["crm:A", "crm:B"]
