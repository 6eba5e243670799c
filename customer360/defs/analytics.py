"""The analytics group: golden-profile history, the customer_360 table and — when the
spec asks for them — organizations with their memberships."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from customer360.core.customer_view import build_customer_360
from customer360.core.history import update_history
from customer360.core.identifiers import VALUE_COLUMNS
from customer360.core.organizations import organization_attributes, resolve_organizations
from customer360.core.privacy import hash_earlier_plain_values
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore
from customer360.core.traits import OBSERVATION_PROVENANCE
from customer360.defs.io_manager import columns
from customer360.defs.metadata import preview

GROUP = "analytics"
KINDS = {"polars", "parquet", "duckdb"}
HISTORY_MEMBERSHIP_STATE = "history_membership"


def build_analytics_assets(spec: Spec, store: ArtifactStore) -> list[dg.AssetsDefinition]:
    owners = [spec.settings.owner]
    value_measure = spec.customer_360.value_measure or next(iter(spec.measure_names), None)

    @dg.asset(
        ins={
            "golden_profiles": columns(lazy=True),  # the golden fields are read from it
            "membership": columns("entity_key", "resolved_id"),
        },
        group_name=GROUP,
        kinds=KINDS,
        owners=owners,
        description=(
            "Golden-profile history (slowly changing dimension, type 2): resolved_id, "
            "version, the golden values, valid_from / valid_to, is_current. A new version "
            "only when a surviving value changes; when clusters merge or split the old "
            "versions are closed (closed_by) and superseded_by names the clusters that now "
            "hold their records."
        ),
    )
    def golden_profile_history(
        context: AssetExecutionContext, golden_profiles: pl.LazyFrame, membership: pl.DataFrame
    ):
        previous = (
            hash_earlier_plain_values(spec, store.read("golden_profile_history"))
            if store.exists("golden_profile_history")
            else None
        )
        as_of = datetime.now(UTC).replace(tzinfo=None)
        history = update_history(
            previous,
            golden_profiles,
            spec.golden_fields,
            membership.select("entity_key", "resolved_id"),
            store.read_state(HISTORY_MEMBERSHIP_STATE, ["entity_key", "resolved_id"]),
            as_of,
        )
        opened = history.filter(pl.col("valid_from") == as_of)
        closed = history.filter(pl.col("valid_to") == as_of)
        yield dg.Output(
            history,
            metadata={
                "versions": history.height,
                "current_versions": int(history.get_column("is_current").sum()),
                "closed_this_run": closed.height,
                "opened_this_run": dg.MetadataValue.json(
                    dict(opened.group_by("opened_by").len().sort("opened_by").iter_rows())
                ),
            },
        )
        # Only once the history is published: both move forward together. The membership
        # just read is the stored table, kept as it is (a link, not a copy of its rows):
        # every table is replaced by a new file, never changed in place.
        store.share_state(HISTORY_MEMBERSHIP_STATE, store.path("membership"))

    @dg.asset(
        ins={
            "golden_profiles": columns(lazy=True),  # the value columns are read from it
            "records": columns("entity_key", "source", "updated_at", *spec.measure_names),
            "membership": columns("entity_key", "resolved_id"),
        },
        group_name=GROUP,
        kinds=KINDS,
        owners=owners,
        description=(
            "Who each customer is and what they have done with us: golden fields, records "
            "per source, first and last seen, lifetime value (sum of "
            f"'{value_measure or 'no measure configured'}'), days since last activity, "
            "value tier and lifecycle status (rules under customer_360 in the spec)."
        ),
    )
    def customer_360(
        context: AssetExecutionContext,
        golden_profiles: pl.LazyFrame,
        records: pl.DataFrame,
        membership: pl.DataFrame,
    ) -> pl.DataFrame:
        table = build_customer_360(
            spec.customer_360,
            golden_profiles,
            records,
            membership,
            [source.name for source in spec.sources],
            value_measure,
        )
        segments = (
            table.group_by("value_tier", "lifecycle_status").len().sort("len", descending=True)
        )
        context.add_output_metadata({"segments": preview(segments, spec, rows=segments.height)})
        return table

    assets = [golden_profile_history, customer_360]
    if spec.organizations:
        assets.append(_organization_assets(spec))
    return assets


def _organization_assets(spec: Spec) -> dg.AssetsDefinition:
    settings = spec.organizations
    domains = "work-email domains (free-mail excluded)"
    if settings.email_identifier in spec.hashed_identifier_types:
        # A hashed address has no domain to read, and keeping the domain beside the hash
        # would name a one-person company's owner: organizations come from the rest.
        settings = settings.model_copy(update={"email_identifier": None})
        domains = "(not email domains: emails are hashed)"
    out = {"group_name": GROUP, "kinds": KINDS, "owners": [spec.settings.owner]}

    @dg.multi_asset(
        ins={
            "records": columns(*OBSERVATION_PROVENANCE, *organization_attributes(settings)),
            "identifiers": columns(*VALUE_COLUMNS),
            "membership": columns("entity_key", "resolved_id"),
        },
        name="resolve_organizations",
        outs={
            "organizations": dg.AssetOut(
                description=(
                    f"Organizations resolved from {domains}, normalized company names and "
                    "account ids: one row per organization with its names, domains, account "
                    "ids, people and first/last seen."
                ),
                **out,
            ),
            "memberships": dg.AssetOut(
                description=(
                    "Which customers belong to which organizations: resolved_id ↔ "
                    "organization_id, role if known, first and last seen."
                ),
                **out,
            ),
        },
    )
    def organizations_and_memberships(
        context: AssetExecutionContext,
        records: pl.DataFrame,
        identifiers: pl.DataFrame,
        membership: pl.DataFrame,
    ):
        organizations, memberships = resolve_organizations(
            settings, records, identifiers, membership
        )
        context.log.info(f"{organizations.height} organizations, {memberships.height} memberships")
        yield dg.Output(
            organizations,
            "organizations",
            metadata={
                "largest": preview(organizations.sort("person_count", descending=True), spec)
            },
        )
        yield dg.Output(memberships, "memberships")

    return organizations_and_memberships
