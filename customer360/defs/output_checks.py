"""Checks on the customer-facing outputs: keys, relationships, history and freshness."""

import dagster as dg
import polars as pl

from customer360.core.keys import distinct_count, missing_count
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore
from customer360.defs.checks import key_check, stored_column

CUSTOMER_360_INPUTS = ["golden_profiles", "records", "membership"]


def build_output_checks(spec: Spec, store: ArtifactStore) -> list[dg.AssetChecksDefinition]:
    @dg.asset_check(
        asset="golden_profile_history",
        additional_deps=["golden_profiles"],
        description="Exactly one current version per customer, and none for anyone else.",
    )
    def one_current_version() -> dg.AssetCheckResult:
        """The current versions' ids and the profiles' ids are read once and looked up as
        hashes, confirmed on the text; ids are grouped only when some current id repeats."""
        history = store.read("golden_profile_history", ["resolved_id", "is_current"])
        current = history.filter(pl.col("is_current")).get_column("resolved_id")
        profiles = stored_column(store, "golden_profiles", "resolved_id")
        several = 0
        if distinct_count(current) < current.len():
            several = current.value_counts().filter(pl.col("count") > 1).height
        figures = {
            "customers_with_several_current_versions": several,
            "customers_without_current_version": missing_count(profiles, current),
            "current_versions_of_unknown_customers": missing_count(current, profiles),
        }
        return dg.AssetCheckResult(passed=not any(figures.values()), metadata=figures)

    @dg.asset_check(
        asset="customer_360",
        additional_deps=CUSTOMER_360_INPUTS,
        description="customer_360 was written after every one of its inputs.",
    )
    def fresh_against_inputs() -> dg.AssetCheckResult:
        written = store.path("customer_360").stat().st_mtime
        stale_by = {
            table: round(store.path(table).stat().st_mtime - written, 3)
            for table in CUSTOMER_360_INPUTS
            if store.path(table).stat().st_mtime > written
        }
        return dg.AssetCheckResult(
            passed=not stale_by,
            metadata={"inputs_newer_than_customer_360 (s)": dg.MetadataValue.json(stale_by)},
        )

    checks = [
        key_check(store, "golden_profiles", ["resolved_id"]),
        key_check(store, "customer_360", ["resolved_id"]),
        one_current_version,
        fresh_against_inputs,
    ]
    if spec.organizations:
        checks += [
            key_check(store, "organizations", ["organization_id"]),
            key_check(store, "memberships", ["resolved_id", "organization_id"]),
            _memberships_point_at_existing(store),
        ]
    return checks


def _memberships_point_at_existing(store: ArtifactStore) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset="memberships",
        additional_deps=["organizations", "golden_profiles"],
        description="Every membership points at an existing customer and organization.",
    )
    def memberships_point_at_existing() -> dg.AssetCheckResult:
        memberships = store.scan("memberships")
        people = store.scan("golden_profiles").select("resolved_id")
        orgs = store.scan("organizations").select("organization_id")
        figures = {
            "unknown_customers": memberships.join(people, on="resolved_id", how="anti")
            .select(pl.len())
            .collect()
            .item(),
            "unknown_organizations": memberships.join(orgs, on="organization_id", how="anti")
            .select(pl.len())
            .collect()
            .item(),
        }
        return dg.AssetCheckResult(passed=not any(figures.values()), metadata=figures)

    return memberships_point_at_existing
