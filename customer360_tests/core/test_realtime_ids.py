"""Ids handed out by the resolve service in real time, as the next batch run sees them:
kept when the batch agrees, merged or split (and said so in lineage) when it does not."""

from __future__ import annotations

import polars as pl

from customer360.core.stable_ids import cluster_lineage, unique_id, with_realtime_assignments

from .test_stable_ids import RUN_2, ids, keys, resolve


def assigned(**ids_by_record: str) -> pl.DataFrame:
    """Real-time assignments: record letter → resolved_id letter (both as crm keys)."""
    return pl.DataFrame(
        {"entity_key": keys(*ids_by_record), "resolved_id": keys(*ids_by_record.values())}
    )


def second_run(links, names, first, realtime):
    """The next batch run over ``names`` after the service assigned ``realtime``."""
    entity_keys = pl.Series(keys(*names))
    previous = with_realtime_assignments(first.membership, realtime, entity_keys)
    second = resolve(links, names, previous, first.registry, RUN_2)
    changes = dict(
        cluster_lineage(previous, second.membership).select("entity_key", "change_type").iter_rows()
    )
    return second, {k.removeprefix("crm:"): v for k, v in changes.items()}


def test_ids_the_batch_agrees_with_are_kept_new_ones_and_matches_alike():
    first = resolve([("A", "B")], "ABC")
    # the service: P matched A's customer by a shared value; Q was new and got its own key
    second, changes = second_run([("A", "B"), ("A", "P")], "ABCPQ", first, assigned(P="A", Q="Q"))
    assert ids(second.membership) == {"A": "A", "B": "A", "C": "C", "P": "A", "Q": "Q"}
    assert changes == dict.fromkeys("ABCPQ", "UNCHANGED")
    assert "crm:Q" in second.registry.get_column("resolved_id").to_list()


def test_a_batch_record_joining_a_customer_made_in_real_time_takes_its_id():
    first = resolve([], "A")
    # Q arrived in real time (new); the batch now also reads D, which shares Q's value
    second, changes = second_run([("D", "Q")], "ADQ", first, assigned(Q="Q"))
    assert ids(second.membership) == {"A": "A", "D": "Q", "Q": "Q"}
    assert changes == {"A": "UNCHANGED", "D": "NEW", "Q": "UNCHANGED"}


def test_when_the_batch_merges_two_customers_the_oldest_id_wins_and_lineage_says_merged():
    first = resolve([], "AC")
    # P matched A, Q was new; a batch record links Q to A's customer
    second, changes = second_run([("A", "P"), ("A", "Q")], "ACPQ", first, assigned(P="A", Q="Q"))
    assert ids(second.membership) == {"A": "A", "C": "C", "P": "A", "Q": "A"}
    assert changes == {"A": "MERGED", "C": "UNCHANGED", "P": "MERGED", "Q": "MERGED"}


def test_when_the_batch_does_not_link_a_matched_record_it_splits_off_with_its_own_id():
    first = resolve([("A", "B")], "AB")
    # the service matched P to A, but in the batch P's value links nothing (e.g. it became
    # shared by more records than max_group_size allows)
    second, changes = second_run([("A", "B")], "ABP", first, assigned(P="A"))
    assert ids(second.membership) == {"A": "A", "B": "A", "P": "P"}
    assert changes == {"A": "SPLIT", "B": "SPLIT", "P": "SPLIT"}


def test_the_published_id_wins_over_the_assignment_and_absent_records_are_ignored():
    first = resolve([], "AP")  # P reached the graph already, under its own id
    realtime = assigned(P="A", Z="Z")  # Z's line is in no batch file the run read
    previous = with_realtime_assignments(first.membership, realtime, pl.Series(keys("A", "P")))
    assert previous is first.membership
    assert with_realtime_assignments(None, realtime, pl.Series(keys("Z"))).rows() == [
        ("crm:Z", "crm:Z")
    ]


def test_unique_id_suffixes_an_issued_id_with_the_smallest_free_number():
    issued = {"inbox:web:1", "inbox:web:1#2"}
    assert unique_id("inbox:web:2", issued.__contains__) == "inbox:web:2"
    assert unique_id("inbox:web:1", issued.__contains__) == "inbox:web:1#3"
