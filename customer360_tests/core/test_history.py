"""Golden-profile history: versions open, close and point at their successors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
from polars.testing import assert_frame_equal

from customer360.core.history import update_history

FIELDS = ["email_primary", "first_name"]
RUN_1 = datetime(2024, 1, 1)
RUN_2 = datetime(2024, 2, 1)
RUN_3 = datetime(2024, 3, 1)


def golden(rows: dict[str, tuple[str | None, str | None]]) -> pl.DataFrame:
    """Golden profiles: resolved_id → (email_primary, first_name), plus an audit column
    that the history must ignore."""
    return pl.DataFrame(
        {
            "resolved_id": list(rows),
            "email_primary": [values[0] for values in rows.values()],
            "first_name": [values[1] for values in rows.values()],
            "record_count": [1] * len(rows),
        },
        schema={
            "resolved_id": pl.String,
            "email_primary": pl.String,
            "first_name": pl.String,
            "record_count": pl.UInt32,
        },
    )


def membership(clusters: dict[str, list[str]]) -> pl.DataFrame:
    """entity_key → resolved_id from resolved_id → member entity_keys."""
    return pl.DataFrame(
        [(key, rid) for rid, keys in clusters.items() for key in keys],
        schema={"entity_key": pl.String, "resolved_id": pl.String},
        orient="row",
    )


def rows(history: pl.DataFrame, resolved_id: str) -> list[dict]:
    return history.filter(pl.col("resolved_id") == resolved_id).sort("version").to_dicts()


ANN_BOB = golden({"A": ("ann@x.com", "Ann"), "B": ("bob@x.com", "Bob")})
ANN_BOB_MEMBERS = membership({"A": ["crm:1", "web:1"], "B": ["crm:2"]})


def first_run() -> pl.DataFrame:
    return update_history(None, ANN_BOB, FIELDS, ANN_BOB_MEMBERS, None, RUN_1)


def test_first_run_opens_version_1_for_every_profile():
    history = first_run()
    assert history.columns == [
        "resolved_id",
        "version",
        *FIELDS,
        "valid_from",
        "valid_to",
        "is_current",
        "opened_by",
        "closed_by",
        "superseded_by",
        "values_hash",
    ]
    assert history.schema["version"] == pl.UInt32
    assert history.schema["values_hash"] == pl.UInt64
    assert history.schema["superseded_by"] == pl.List(pl.String)
    assert history.select(
        "resolved_id", "version", *FIELDS, "valid_from", "valid_to", "is_current"
    ).rows() == [
        ("A", 1, "ann@x.com", "Ann", RUN_1, None, True),
        ("B", 1, "bob@x.com", "Bob", RUN_1, None, True),
    ]
    assert history.get_column("opened_by").to_list() == ["new", "new"]
    assert history.get_column("closed_by").to_list() == [None, None]
    assert history.get_column("superseded_by").to_list() == [[], []]


def test_unchanged_values_add_no_version_and_rewrite_nothing():
    history = first_run()
    again = update_history(history, ANN_BOB, FIELDS, ANN_BOB_MEMBERS, ANN_BOB_MEMBERS, RUN_2)
    assert_frame_equal(again, history)


def test_a_stored_hash_this_polars_would_not_compute_opens_no_version():
    # e.g. written by another Polars version: the values are compared by hashing them again
    history = first_run().with_columns(pl.lit(12345, dtype=pl.UInt64).alias("values_hash"))
    again = update_history(history, ANN_BOB, FIELDS, ANN_BOB_MEMBERS, ANN_BOB_MEMBERS, RUN_2)
    assert_frame_equal(again, history)


def test_hash_tells_null_from_empty_text():
    empty = golden({"A": ("ann@x.com", ""), "B": ("bob@x.com", "Bob")})
    history = first_run()
    updated = update_history(history, empty, FIELDS, ANN_BOB_MEMBERS, ANN_BOB_MEMBERS, RUN_2)
    null = golden({"A": ("ann@x.com", None), "B": ("bob@x.com", "Bob")})
    again = update_history(updated, null, FIELDS, ANN_BOB_MEMBERS, ANN_BOB_MEMBERS, RUN_3)
    assert [r["first_name"] for r in rows(again, "A")] == ["Ann", "", None]


def test_changed_attribute_closes_the_version_and_opens_the_next():
    history = first_run()
    renamed = golden({"A": ("ann@x.com", "Anne"), "B": ("bob@x.com", "Bob")})
    updated = update_history(history, renamed, FIELDS, ANN_BOB_MEMBERS, ANN_BOB_MEMBERS, RUN_2)

    old, new = rows(updated, "A")
    assert (old["version"], old["first_name"], old["valid_from"], old["valid_to"]) == (
        1,
        "Ann",
        RUN_1,
        RUN_2,
    )
    assert (old["is_current"], old["opened_by"], old["closed_by"]) == (False, "new", "changed")
    assert old["superseded_by"] == []
    assert (new["version"], new["first_name"], new["valid_from"], new["valid_to"]) == (
        2,
        "Anne",
        RUN_2,
        None,
    )
    assert (new["is_current"], new["opened_by"], new["closed_by"]) == (True, "changed", None)
    assert new["values_hash"] != old["values_hash"]
    # B did not change: its only row is the one written by the first run.
    assert rows(updated, "B") == rows(history, "B")


def test_closed_versions_are_carried_over_unchanged():
    history = first_run()
    renamed = golden({"A": ("ann@x.com", "Anne"), "B": ("bob@x.com", "Bob")})
    second = update_history(history, renamed, FIELDS, ANN_BOB_MEMBERS, ANN_BOB_MEMBERS, RUN_2)
    moved = golden({"A": ("ann@y.com", "Anne"), "B": ("bob@x.com", "Bob")})
    third = update_history(second, moved, FIELDS, ANN_BOB_MEMBERS, ANN_BOB_MEMBERS, RUN_3)

    v1, v2, v3 = rows(third, "A")
    assert v1 == rows(second, "A")[0]
    assert (v2["valid_from"], v2["valid_to"], v2["closed_by"]) == (RUN_2, RUN_3, "changed")
    assert (v3["version"], v3["email_primary"], v3["valid_from"]) == (3, "ann@y.com", RUN_3)


def test_merge_closes_both_clusters_and_points_b_at_a():
    history = first_run()
    # B's only record is now in A's cluster, and A's surviving values change.
    merged = golden({"A": ("ann@x.com", "Annie")})
    after = membership({"A": ["crm:1", "web:1", "crm:2"]})
    updated = update_history(history, merged, FIELDS, after, ANN_BOB_MEMBERS, RUN_2)

    a1, a2 = rows(updated, "A")
    assert (a1["closed_by"], a1["valid_to"], a1["is_current"]) == ("merged", RUN_2, False)
    assert (a2["version"], a2["opened_by"], a2["first_name"], a2["is_current"]) == (
        2,
        "merged",
        "Annie",
        True,
    )
    (b1,) = rows(updated, "B")
    assert (b1["closed_by"], b1["superseded_by"], b1["valid_to"]) == ("merged", ["A"], RUN_2)
    assert b1["is_current"] is False


def test_a_merge_is_seen_whether_or_not_membership_keeps_its_record_order():
    merged = golden({"A": ("ann@x.com", "Annie")})
    in_order = membership({"A": ["crm:1", "web:1", "crm:2"]})  # compared row by row
    reordered = membership({"A": ["crm:2", "crm:1", "web:1"]})  # looked up by key
    by_row, by_key = (
        update_history(first_run(), merged, FIELDS, after, ANN_BOB_MEMBERS, RUN_2)
        for after in (in_order, reordered)
    )
    assert_frame_equal(by_row, by_key)
    assert by_key.select("resolved_id", "opened_by", "closed_by").rows() == [
        ("A", "new", "merged"),
        ("A", "merged", None),
        ("B", "new", "merged"),
    ]


def test_split_closes_the_cluster_and_lists_both_successors():
    history = first_run()
    # A's two records now form two clusters with new resolved_ids.
    split = golden({"B": ("bob@x.com", "Bob"), "C": ("ann@x.com", "Ann"), "D": (None, "Ann")})
    after = membership({"B": ["crm:2"], "C": ["crm:1"], "D": ["web:1"]})
    updated = update_history(history, split, FIELDS, after, ANN_BOB_MEMBERS, RUN_2)

    (a1,) = rows(updated, "A")
    assert (a1["closed_by"], a1["superseded_by"], a1["is_current"]) == ("split", ["C", "D"], False)
    # The successors are new to the history.
    assert [r["opened_by"] for r in rows(updated, "C") + rows(updated, "D")] == ["new", "new"]
    assert rows(updated, "B") == rows(history, "B")


def test_cluster_that_loses_records_and_changes_is_closed_as_split():
    history = first_run()
    # web:1 leaves A for a new cluster C; A's surviving values change.
    smaller = golden({"A": ("ann@x.com", "Ann M"), "B": ("bob@x.com", "Bob"), "C": (None, "A")})
    after = membership({"A": ["crm:1"], "B": ["crm:2"], "C": ["web:1"]})
    updated = update_history(history, smaller, FIELDS, after, ANN_BOB_MEMBERS, RUN_2)

    a1, a2 = rows(updated, "A")
    assert (a1["closed_by"], a2["opened_by"]) == ("split", "split")


def test_cluster_whose_records_are_gone_is_removed():
    history = first_run()
    only_ann = golden({"A": ("ann@x.com", "Ann")})
    after = membership({"A": ["crm:1", "web:1"]})
    updated = update_history(history, only_ann, FIELDS, after, ANN_BOB_MEMBERS, RUN_2)

    (b1,) = rows(updated, "B")
    assert (b1["closed_by"], b1["superseded_by"], b1["valid_to"]) == ("removed", [], RUN_2)
    assert rows(updated, "A") == rows(history, "A")


def test_exactly_one_current_row_per_golden_profile():
    history = first_run()
    merged = golden({"A": ("ann@x.com", "Annie"), "E": ("eve@x.com", "Eve")})
    after = membership({"A": ["crm:1", "web:1", "crm:2"], "E": ["crm:5"]})
    updated = update_history(history, merged, FIELDS, after, ANN_BOB_MEMBERS, RUN_2)
    renamed = golden({"A": ("ann@x.com", "Ann"), "E": ("eve@x.com", "Eve")})
    final = update_history(updated, renamed, FIELDS, after, after, RUN_3)

    current = final.filter(pl.col("is_current"))
    assert sorted(current.get_column("resolved_id").to_list()) == ["A", "E"]
    assert current.get_column("valid_to").null_count() == current.height
    assert final.filter(~pl.col("is_current")).get_column("valid_to").null_count() == 0
    assert final.select("resolved_id", "version").rows() == [
        ("A", 1),
        ("A", 2),
        ("A", 3),
        ("B", 1),
        ("E", 1),
    ]


def test_reappearing_resolved_id_continues_its_versions():
    history = first_run()
    only_ann = golden({"A": ("ann@x.com", "Ann")})
    after = membership({"A": ["crm:1", "web:1"]})
    removed = update_history(history, only_ann, FIELDS, after, ANN_BOB_MEMBERS, RUN_2)
    back = update_history(removed, ANN_BOB, FIELDS, ANN_BOB_MEMBERS, after, RUN_3)

    b1, b2 = rows(back, "B")
    assert (b1["closed_by"], b1["valid_to"]) == ("removed", RUN_2)
    assert (b2["version"], b2["opened_by"], b2["valid_from"], b2["is_current"]) == (
        2,
        "new",
        RUN_3,
        True,
    )


def test_time_zone_aware_as_of_is_stored_as_naive_utc():
    paris = datetime(2024, 1, 1, 9, tzinfo=timezone(timedelta(hours=1)))
    history = update_history(None, ANN_BOB, FIELDS, ANN_BOB_MEMBERS, None, paris)
    assert history.schema["valid_from"] == pl.Datetime("us")
    assert history.get_column("valid_from").to_list() == [datetime(2024, 1, 1, 8)] * 2
