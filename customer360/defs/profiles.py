"""The profiles group: traits, survivorship and the golden profile of every customer."""

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from customer360.core.golden import build_golden_profiles, update_golden_profiles
from customer360.core.identifiers import VALUE_COLUMNS
from customer360.core.incremental_traits import (
    forget_traits_basis,
    keep_traits_basis,
    kept_traits,
    update_traits,
)
from customer360.core.profile_changes import (
    changed_since,
    forget_changes,
    forget_golden_basis,
    forget_inputs,
    golden_built_from,
    keep_changes,
    keep_golden_basis,
    keep_inputs,
    kept_inputs,
    last_generation,
)
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore
from customer360.core.touched_clusters import RECORD_COLUMNS, resolve_touched_traits
from customer360.core.traits import OBSERVATION_PROVENANCE, build_traits
from customer360.defs.automation import is_full_run
from customer360.defs.io_manager import columns
from customer360.defs.metadata import preview

GROUP = "profiles"
KINDS = {"polars", "parquet", "duckdb"}


def build_profile_assets(spec: Spec, store: ArtifactStore) -> list[dg.AssetsDefinition]:
    owners = [spec.settings.owner]
    strategies = ", ".join(f"{field}: {spec.strategy(field)}" for field in spec.golden_fields)

    @dg.asset(
        ins={
            "records": columns(*OBSERVATION_PROVENANCE, "batch", *spec.attribute_names, lazy=True),
            "identifiers": columns(*VALUE_COLUMNS, lazy=True),
        },
        group_name=GROUP,
        kinds=KINDS,
        owners=owners,
        description=(
            "Every observation of a golden-profile attribute in long form: entity_key, "
            "attribute, value, observed_at, source, trust. Identifiers appear as "
            "<type>_primary with their normalized value, unless invalid or excluded. "
            "The observations of records from batches unchanged since the last run are "
            "carried over; only the other records' are made again."
        ),
    )
    def traits(context: AssetExecutionContext, records: pl.LazyFrame, identifiers: pl.LazyFrame):
        kept = None if is_full_run(context) else kept_traits(store, spec)
        forget_traits_basis(store)  # until the table it describes is written
        if kept is None:
            records = records.drop("batch").collect()  # the batch only tells what to carry
            table, built = build_traits(spec, records, identifiers), records.height
        else:
            table, built = update_traits(spec, records, identifiers, store.scan("traits"), kept)
        yield dg.Output(table, metadata={"records_observed_again": built})
        keep_traits_basis(store, spec, store.row_count("records"))

    @dg.asset(
        ins={
            "traits": columns(
                "entity_key", "attribute", "value", "observed_at", "source", lazy=True
            ),
            "records": columns(*RECORD_COLUMNS, lazy=True),
            "membership": columns("entity_key", "resolved_id"),
            "clusters": columns("size"),  # its height is all this step reads of it
        },
        group_name=GROUP,
        kinds=KINDS,
        owners=owners,
        deps=["cluster_lineage"],  # its blocking moved-share check gates the profiles
        description=(
            "The surviving value per resolved_id and attribute, with the strategy, source, "
            "record (entity_key) and time of the observation that won, and whether the "
            "cluster's records disagreed. Survivorship — " + strategies + ". Clusters "
            "untouched since the last run (same records, from unchanged batches, same "
            "spec) keep their winners; only the others are resolved again."
        ),
    )
    def resolved_traits(
        context: AssetExecutionContext,
        traits: pl.LazyFrame,
        records: pl.LazyFrame,
        membership: pl.DataFrame,
        clusters: pl.DataFrame,
    ):
        """``clusters`` is an input so that its blocking size check gates this asset."""
        previous = None if is_full_run(context) else kept_inputs(store, spec)
        previous_resolved = (
            store.scan("resolved_traits")
            if previous is not None and store.exists("resolved_traits")
            else None
        )
        generation = last_generation(store)
        # Neither inputs nor changes while the new winners are being published: a crash
        # in between makes the next run resolve everything rather than trust inputs that
        # do not match, and the golden profiles build every profile.
        forget_inputs(store)
        forget_changes(store)
        result = resolve_touched_traits(
            spec, traits, records, membership, previous, previous_resolved
        )
        yield dg.Output(
            result.resolved,
            metadata={
                "clusters": clusters.height,
                "clusters_carried_over": result.reused_clusters,
                "clusters_resolved": clusters.height - result.reused_clusters,
                "conflicts": result.resolved.select(pl.col("conflict").sum()).collect().item(),
            },
        )
        keep_inputs(store, spec)
        keep_changes(store, generation, result.touched)

    @dg.asset(
        ins={
            "resolved_traits": columns(
                "resolved_id", "attribute", "value", "strategy", "source", "conflict", lazy=True
            ),
            "records": columns("entity_key", "source", "updated_at", lazy=True),
            "membership": columns("entity_key", "resolved_id", lazy=True),
        },
        group_name=GROUP,
        kinds=KINDS,
        owners=owners,
        description=(
            "One golden profile per resolved_id: the surviving value of every identifier "
            "(<type>_primary) and attribute with the source it came from, a data-quality "
            "score and audit columns. Profiles of customers whose winners and records are "
            "unchanged since the last run are carried over, their quality score computed again."
        ),
    )
    def golden_profiles(
        context: AssetExecutionContext,
        resolved_traits: pl.LazyFrame,
        records: pl.LazyFrame,
        membership: pl.LazyFrame,
    ):
        built_from = None if is_full_run(context) else golden_built_from(store)
        touched = changed_since(store, built_from)
        generation = last_generation(store)
        forget_golden_basis(store)  # until the profiles it describes are written
        if touched is None:
            profiles = build_golden_profiles(spec, resolved_traits, records, membership)
        else:
            previous = store.scan("golden_profiles")
            profiles = update_golden_profiles(
                spec, previous, resolved_traits, records, membership, touched
            )
        yield dg.Output(
            profiles,
            metadata={
                "profiles": profiles.height,
                "customers_touched": profiles.height if touched is None else touched.len(),
                "mean_quality_score": float(profiles.get_column("quality_score").mean() or 0.0),
                "with_conflicts": int(
                    (profiles.get_column("conflict_rules_applied").list.len() > 0).sum()
                ),
                "preview": preview(profiles, spec),
            },
        )
        keep_golden_basis(store, generation)

    return [traits, resolved_traits, golden_profiles]
