"""The probabilistic matching stage: a trained model and the edges it scores.

``match_model`` trains once and is then reused: every later run (the sensor's included)
scores with the persisted model until someone materializes ``match_model`` on its own
(UI, ``dagster asset materialize --select match_model``), launches the main job with
``retrain: true`` in this asset's config, or changes the spec's ``matching`` section.
"""

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext
from pydantic import Field

from customer360.core.matching import (
    comparison_frame,
    identifier_prior,
    model_parameters,
    reusable_model,
    save_model,
    score_pairs,
    train_model,
)
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore
from customer360.defs.io_manager import columns
from customer360.defs.metadata import figures

GROUP = "resolution"
KINDS = {"splink", "duckdb", "parquet"}
CHARTS_FOLDER = "charts"


class MatchModelConfig(dg.Config):
    retrain: bool = Field(
        default=True,
        description="train a new model; false reuses the persisted one when the spec's "
        "matching section has not changed (the resolve_customers job sets false)",
    )


def build_matching_assets(spec: Spec, store: ArtifactStore) -> list[dg.AssetsDefinition]:
    matching = spec.matching
    if matching is None or not matching.enabled:
        return []
    attributes = matching.attributes
    owners = [spec.settings.owner]

    @dg.asset(
        ins={
            "records": columns("entity_key", *attributes),
            "identity_edges": columns("entity_key_a", "entity_key_b"),
        },
        group_name=GROUP,
        kinds=KINDS,
        owners=owners,
        description=(
            "The trained Fellegi-Sunter model (Splink): m and u per comparison level and "
            "the match weight each level adds. u by random sampling, m by expectation "
            "maximisation, the prior from the identifier links. Persisted under "
            "artifacts/state and reused by later runs until this asset is materialized "
            "again or the spec's matching section changes."
        ),
    )
    def match_model(
        context: AssetExecutionContext,
        config: MatchModelConfig,
        records: pl.DataFrame,
        identity_edges: pl.DataFrame,
    ) -> pl.DataFrame:
        persisted = reusable_model(store, matching)
        if persisted is not None and not config.retrain:
            model, trained_at = persisted
            context.log.info(f"reusing the match model trained at {trained_at}")
        else:
            context.log.info(f"training the match model on {records.height:,} records")
            prior = identifier_prior(records, identity_edges)
            model = train_model(comparison_frame(records, matching), matching, prior)
            trained_at = save_model(store, matching, model)
        parameters = model_parameters(model)
        context.add_output_metadata(
            {
                "trained_at": str(trained_at),
                "reused": persisted is not None and not config.retrain,
                "prior_match_probability": float(model["probability_two_random_records_match"]),
                "parameters": figures(parameters),
            }
        )
        return parameters

    @dg.asset(
        ins={"records": columns("entity_key", *attributes)},
        deps=[match_model],
        group_name=GROUP,
        kinds=KINDS,
        owners=owners,
        description=(
            "Record pairs the match model scores at or above matching.threshold, as edges "
            "(rule 'probabilistic') with match probability, match weight and each field's "
            "contribution. Splink's waterfall chart and comparison viewer are written to "
            "artifacts/charts."
        ),
    )
    def match_edges(context: AssetExecutionContext, records: pl.DataFrame) -> pl.DataFrame:
        persisted = reusable_model(store, matching)
        if persisted is None:
            raise dg.Failure(
                "no match model trained for the spec's matching section in "
                f"{store.root}/state; materialize match_model first"
            )
        model = persisted[0]
        frame = comparison_frame(records, matching)
        edges, charts = score_pairs(
            frame, model, matching.threshold, charts_folder=store.root / CHARTS_FOLDER
        )
        context.log.info(f"{edges.height} pairs at or above {matching.threshold}")
        weights = edges.get_column("match_weight")
        context.add_output_metadata(
            {
                "edges": edges.height,
                "threshold": matching.threshold,
                "lowest_match_weight": float(weights.min()) if edges.height else 0.0,
                "charts": dg.MetadataValue.json([str(path) for path in charts]),
            }
        )
        return edges

    return [match_model, match_edges]
