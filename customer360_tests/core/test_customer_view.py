"""customer_360: per-source counts, activity dates, lifetime value and segments."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from customer360.core.customer_view import build_customer_360
from customer360.core.spec import CustomerView

from .conftest import records_frame

AS_OF = datetime(2024, 6, 30)


def golden(resolved_ids: list[str]) -> pl.DataFrame:
    """Golden profiles as survivorship builds them: values, sources and audit columns."""
    n = len(resolved_ids)
    return pl.DataFrame(
        {
            "resolved_id": resolved_ids,
            "email_primary": [f"{rid.replace(':', '')}@x.com" for rid in resolved_ids],
            "first_name": ["Ann"] * n,
            "email_primary_source": ["crm"] * n,
            "first_name_source": ["crm"] * n,
            "record_count": [1] * n,
            "source_systems": [["crm"]] * n,
            "conflict_rules_applied": [[]] * n,
            "quality_score": [1.0] * n,
            "created_at": [AS_OF] * n,
            "last_updated_at": [AS_OF] * n,
        },
        schema_overrides={"conflict_rules_applied": pl.List(pl.String)},
    )


def records(rows: list[dict]) -> pl.DataFrame:
    """Records with an ``order_value`` measure (Float64) taken from each row's 'value'."""
    values = [row.pop("value", None) for row in rows]
    frame = records_frame(rows, columns=["email", "first_name"])
    return frame.with_columns(pl.Series("order_value", values, dtype=pl.Float64))


def singletons(frame: pl.DataFrame) -> pl.DataFrame:
    """Every record its own cluster."""
    return frame.select(
        "entity_key", "source", "record_key", pl.col("entity_key").alias("resolved_id")
    )


def view_of(rows: list[dict], view: CustomerView | None = None, **kwargs) -> dict[str, dict]:
    """customer_360 keyed by resolved_id, every record its own cluster."""
    recs = records(rows)
    table = build_customer_360(
        view or CustomerView(as_of=AS_OF),
        golden(recs.get_column("entity_key").to_list()),
        recs,
        singletons(recs),
        kwargs.get("sources", ["crm", "shop"]),
        kwargs.get("value_measure", "order_value"),
    )
    return {row["resolved_id"]: row for row in table.iter_rows(named=True)}


def test_columns_are_golden_values_counts_dates_and_segments():
    recs = records([{"entity_key": "crm:1", "updated_at": "2024-06-01", "value": 5.0}])
    table = build_customer_360(
        CustomerView(as_of=AS_OF),
        golden(["crm:1"]),
        recs,
        singletons(recs),
        ["crm", "shop"],
        "order_value",
    )
    assert table.columns == [
        "resolved_id",
        "email_primary",
        "first_name",
        "crm_records",
        "shop_records",
        "first_seen",
        "last_seen",
        "lifetime_value",
        "days_since_last_activity",
        "value_tier",
        "lifecycle_status",
        "as_of",
    ]
    assert table.schema["crm_records"] == pl.UInt32
    assert table.schema["lifetime_value"] == pl.Float64
    assert table.get_column("as_of").to_list() == [AS_OF]


def test_value_tiers_use_strictly_above():
    table = view_of(
        [
            {"entity_key": "crm:1", "updated_at": "2024-06-30", "value": 10_000.0},
            {"entity_key": "crm:2", "updated_at": "2024-06-30", "value": 10_000.01},
            {"entity_key": "crm:3", "updated_at": "2024-06-30", "value": 0.0},
            {"entity_key": "crm:4", "updated_at": "2024-06-30", "value": 5_000.0},
            {"entity_key": "crm:5", "updated_at": "2024-06-30", "value": 1_000.5},
        ]
    )
    tiers = {rid: row["value_tier"] for rid, row in table.items()}
    assert tiers == {
        "crm:1": "Gold",  # exactly 10,000 is not above 10,000
        "crm:2": "Platinum",
        "crm:3": "Bronze",
        "crm:4": "Silver",  # exactly 5,000 is not above 5,000
        "crm:5": "Silver",
    }


def test_lifecycle_boundaries_in_whole_days():
    table = view_of(
        [
            {"entity_key": "crm:1", "updated_at": "2024-05-31"},  # 30 days before June 30
            {"entity_key": "crm:2", "updated_at": "2024-05-30"},  # 31
            {"entity_key": "crm:3", "updated_at": "2024-04-01"},  # 90
            {"entity_key": "crm:4", "updated_at": "2024-03-31"},  # 91
            {"entity_key": "crm:5"},  # never updated
            {"entity_key": "crm:6", "updated_at": "2024-06-30"},  # 0
        ]
    )
    days = {rid: row["days_since_last_activity"] for rid, row in table.items()}
    assert days == {"crm:1": 30, "crm:2": 31, "crm:3": 90, "crm:4": 91, "crm:5": None, "crm:6": 0}
    stages = {rid: row["lifecycle_status"] for rid, row in table.items()}
    assert stages == {
        "crm:1": "Active",
        "crm:2": "At Risk",
        "crm:3": "At Risk",
        "crm:4": "Churned",
        "crm:5": "Churned",
        "crm:6": "Active",
    }


def test_counts_dates_and_value_are_per_cluster():
    recs = records(
        [
            {"entity_key": "crm:1", "updated_at": "2024-01-10", "value": 100.0},
            {"entity_key": "shop:7", "updated_at": "2024-03-05", "value": 25.5},
            {"entity_key": "shop:8", "updated_at": "2024-02-01"},  # no order value
            {"entity_key": "crm:2", "updated_at": "2024-06-01", "value": 999.0},
        ]
    )
    members = pl.DataFrame(
        {
            "entity_key": ["crm:1", "shop:7", "shop:8", "crm:2"],
            "source": ["crm", "shop", "shop", "crm"],
            "record_key": ["1", "7", "8", "2"],
            "resolved_id": ["crm:1", "crm:1", "crm:1", "crm:2"],
        }
    )
    table = build_customer_360(
        CustomerView(as_of=AS_OF),
        golden(["crm:1", "crm:2"]),
        recs,
        members,
        ["crm", "shop", "web"],
        "order_value",
    )
    assert table.select(
        "resolved_id", "crm_records", "shop_records", "web_records", "lifetime_value"
    ).rows() == [("crm:1", 1, 2, 0, 125.5), ("crm:2", 1, 0, 0, 999.0)]
    ann = table.row(0, named=True)
    assert (ann["first_seen"], ann["last_seen"]) == (datetime(2024, 1, 10), datetime(2024, 3, 5))
    assert ann["days_since_last_activity"] == 117  # March 5 → June 30 (2024 is a leap year)


def test_profiles_in_any_order_come_out_sorted_each_with_its_own_activity():
    recs = records(
        [
            {"entity_key": "crm:1", "updated_at": "2024-01-10", "value": 10.0},
            {"entity_key": "shop:7", "updated_at": "2024-03-05", "value": 20.0},
            {"entity_key": "crm:2", "updated_at": "2024-06-01", "value": 30.0},
        ]
    )
    table = build_customer_360(
        CustomerView(as_of=AS_OF),
        golden(["shop:7", "crm:2", "crm:1"]),
        recs,
        singletons(recs),
        ["crm", "shop"],
        "order_value",
    )
    assert table.select(
        "resolved_id", "email_primary", "shop_records", "lifetime_value"
    ).rows() == [
        ("crm:1", "crm1@x.com", 0, 10.0),
        ("crm:2", "crm2@x.com", 0, 30.0),
        ("shop:7", "shop7@x.com", 1, 20.0),
    ]


def test_profile_without_records_gets_zeros_and_the_last_segments():
    recs = records([{"entity_key": "crm:1", "updated_at": "2024-06-01", "value": 50.0}])
    table = build_customer_360(
        CustomerView(as_of=AS_OF),
        golden(["crm:1", "crm:9"]),
        recs,
        singletons(recs),
        ["crm"],
        "order_value",
    )
    orphan = table.row(1, named=True)
    assert orphan["resolved_id"] == "crm:9"
    assert (orphan["crm_records"], orphan["lifetime_value"], orphan["last_seen"]) == (0, 0.0, None)
    assert (orphan["value_tier"], orphan["lifecycle_status"]) == ("Bronze", "Churned")


def test_no_value_measure_means_zero_value():
    table = view_of(
        [{"entity_key": "crm:1", "updated_at": "2024-06-01", "value": 50_000.0}],
        value_measure=None,
    )
    assert (table["crm:1"]["lifetime_value"], table["crm:1"]["value_tier"]) == (0.0, "Bronze")


def test_unknown_value_measure_is_an_error():
    with pytest.raises(ValueError, match="revenue"):
        view_of([{"entity_key": "crm:1"}], value_measure="revenue")


def test_default_as_of_is_the_latest_update():
    table = view_of(
        [
            {"entity_key": "crm:1", "updated_at": "2024-01-01"},
            {"entity_key": "shop:2", "updated_at": "2024-03-01 12:00:00"},
        ],
        view=CustomerView(),
    )
    latest = datetime(2024, 3, 1, 12)
    assert {row["as_of"] for row in table.values()} == {latest}
    assert table["shop:2"]["days_since_last_activity"] == 0
    # Jan 1 00:00 → Mar 1 12:00 is 60.5 days: 60 whole days.
    assert table["crm:1"]["days_since_last_activity"] == 60
    assert table["crm:1"]["lifecycle_status"] == "At Risk"


def test_custom_bands():
    view = CustomerView.model_validate(
        {
            "as_of": "2024-06-30T00:00:00",
            "value_tiers": [{"name": "High", "above": 100}, {"name": "Low"}],
            "lifecycle": [
                {"name": "Hot", "within_days": 7},
                {"name": "Warm", "within_days": 60},
                {"name": "Cold", "within_days": 365},
                {"name": "Lost"},
            ],
        }
    )
    table = view_of(
        [
            {"entity_key": "crm:1", "updated_at": "2024-06-23", "value": 100.5},  # 7 days
            {"entity_key": "crm:2", "updated_at": "2024-06-22", "value": 100.0},  # 8 days
            {"entity_key": "crm:3", "updated_at": "2023-07-01", "value": 1.0},  # 365 days
            {"entity_key": "crm:4", "updated_at": "2023-06-30"},  # 366 days
        ],
        view=view,
    )
    segments = {rid: (row["value_tier"], row["lifecycle_status"]) for rid, row in table.items()}
    assert segments == {
        "crm:1": ("High", "Hot"),
        "crm:2": ("Low", "Warm"),
        "crm:3": ("Low", "Cold"),
        "crm:4": ("Low", "Lost"),
    }


def test_time_zone_of_a_configured_as_of_is_dropped_like_the_records():
    view = CustomerView.model_validate({"as_of": "2024-06-30T00:00:00+02:00"})
    table = view_of([{"entity_key": "crm:1", "updated_at": "2024-05-31"}], view=view)
    assert table["crm:1"]["as_of"] == AS_OF
    assert table["crm:1"]["days_since_last_activity"] == 30
