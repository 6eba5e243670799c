"""Probabilistic record linkage: Fellegi-Sunter matching with Splink on DuckDB.

Identifier rules link records that share a clean email, phone or loyalty id. People who
left no shared identifier — a typo in the email, no phone, another mailbox — can still be
recognised by their name, date of birth and address. Splink scores candidate pairs (those
sharing a blocking key) by summing, per compared attribute, the log-odds that a match
agrees at that level (m) against a non-match (u): m by expectation maximisation, u by
random sampling, with term-frequency adjustment so that "Smith" counts for less than
"Zielinski".

The prior — the share of record pairs that are the same person — is taken from the
identifier links when there are any (they are near-certain matches on the same data),
otherwise estimated by Splink from the first blocking rule and an assumed recall.

Identifiers themselves stay out of the model: their links are already decided by rule,
and random sampling cannot estimate their u when most records that share an identifier
are duplicates of one person (the estimate is then dominated by true matches).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import polars as pl

from customer360.core.clusters import component_labels
from customer360.core.edges import EDGE_SCHEMA
from customer360.core.spec import Matching
from customer360.core.storage import ArtifactStore

# Splink (with sqlglot under it) takes a few tenths of a second to import: it is imported
# inside the functions that train and score, so a run without matching never loads it.
if TYPE_CHECKING:
    from splink import Linker, SettingsCreator

MATCH_RULE = "probabilistic"
MODEL_STATE = "match_model"
"""The state file holding the persisted model."""
RANDOM_SEED = 42
"""u sampling is random; a fixed seed makes training repeatable."""

WATERFALL_PAIRS = 10
"""Accepted pairs shown in the waterfall chart: the ones closest to the threshold."""

CHART_FILES = ("match_waterfall.html", "comparison_viewer.html")
STAGING_PREFIX = ".writing-"

Model = dict[str, Any]
"""A trained Splink model, as Splink serialises it (settings plus m and u per level)."""

PARAMETER_SCHEMA = {
    "comparison": pl.String,
    "level": pl.String,
    "m_probability": pl.Float64,
    "u_probability": pl.Float64,
    "match_weight": pl.Float64,
}


def comparison_frame(records: pl.DataFrame, matching: Matching) -> pl.DataFrame:
    """``unique_id`` plus every compared or blocked-on attribute, trimmed, lower case,
    blanks as null."""
    names = matching.attributes
    compared = [
        pl.col(name).cast(pl.String).str.strip_chars().str.to_lowercase().alias(name)
        if name in records.columns
        else pl.lit(None, pl.String).alias(name)
        for name in names
    ]
    return records.select(pl.col("entity_key").alias("unique_id"), *compared).with_columns(
        pl.when(pl.col(name) != "").then(pl.col(name)).alias(name) for name in names
    )


def identifier_prior(records: pl.DataFrame, edges: pl.DataFrame) -> float | None:
    """Share of all record pairs that the identifier rules put in one cluster (None when
    they link nothing, e.g. sources without identifiers)."""
    positions = records.select("entity_key").with_row_index("position")
    ends = edges.join(positions, left_on="entity_key_a", right_on="entity_key").join(
        positions, left_on="entity_key_b", right_on="entity_key", suffix="_b"
    )
    labels = component_labels(
        records.height, ends["position"].to_numpy(), ends["position_b"].to_numpy()
    )
    sizes = np.bincount(labels).astype(np.int64)
    linked = int((sizes * (sizes - 1) // 2).sum())
    pairs = records.height * (records.height - 1) // 2
    return linked / pairs if linked and pairs else None


def train_model(frame: pl.DataFrame, matching: Matching, prior: float | None) -> Model:
    """Estimate u by random sampling and m by expectation maximisation per training block."""
    from splink import block_on

    linker = _linker(frame, _settings(matching, prior))
    if prior is None:
        linker.training.estimate_probability_two_random_records_match(
            [block_on(*matching.blocking[0])], recall=matching.training.prior_recall
        )
    linker.training.estimate_u_using_random_sampling(
        max_pairs=matching.training.u_max_pairs, seed=RANDOM_SEED
    )
    for block in matching.training.em_blocking or matching.blocking:
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on(*block), estimate_without_term_frequencies=True
        )
    return linker.misc.save_model_to_json()


class ScoredPairs(NamedTuple):
    edges: pl.DataFrame
    """Pairs at or above the threshold, in EDGE_SCHEMA."""
    charts: list[Path]
    """The HTML charts written (none when nothing matched or no folder was given)."""


def score_pairs(
    frame: pl.DataFrame, model: Model, threshold: float, charts_folder: Path | None = None
) -> ScoredPairs:
    """Candidate pairs at or above ``threshold`` as edges with per-field evidence.

    With ``charts_folder``, the same predictions also feed Splink's waterfall chart of
    the weakest accepted pairs and its comparison viewer, as HTML a person can open
    without a server.
    """
    linker = _linker(frame, model)
    predictions = linker.inference.predict(threshold_match_probability=threshold)
    scored = predictions.as_duckdbpyrelation().pl()
    charts = []
    if charts_folder is not None and scored.height:
        charts = _write_charts(linker, predictions, scored, charts_folder)
    elif charts_folder is not None:
        # An earlier run's charts show pairs, and people, this run no longer has.
        for name in CHART_FILES:
            (charts_folder / name).unlink(missing_ok=True)
    labels = _level_labels(model)
    evidence = pl.concat_list(
        pl.struct(
            pl.lit(field).alias("field"),
            pl.col(f"gamma_{field}")
            .cast(pl.String)
            .replace_strict(labels[field], default="?")
            .alias("level"),
            _field_weight(scored, field).alias("weight"),
        )
        for field in labels
    )
    edges = scored.select(
        pl.col("unique_id_l").alias("entity_key_a"),
        pl.col("unique_id_r").alias("entity_key_b"),
        pl.lit(MATCH_RULE).alias("rule"),
        pl.lit(None, pl.String).alias("identifier_type"),
        pl.lit(None, pl.String).alias("value"),
        "match_probability",
        "match_weight",
        evidence.alias("evidence"),
    ).cast(EDGE_SCHEMA)
    return ScoredPairs(edges, charts)


def _write_charts(
    linker: Linker, predictions: Any, scored: pl.DataFrame, folder: Path
) -> list[Path]:
    """Both charts, written into a hidden staging folder and renamed into place: a run
    killed mid-write never leaves half a chart. Staging folders a killed run left behind
    are removed first (runs writing one artifacts folder take turns, so none is live)."""
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    waterfall, viewer = CHART_FILES
    with tempfile.TemporaryDirectory(prefix=STAGING_PREFIX, dir=folder) as staging:
        weakest = scored.sort("match_weight").head(WATERFALL_PAIRS).to_dicts()
        chart = linker.visualisations.waterfall_chart(weakest, filter_nulls=False)
        chart.save(str(Path(staging) / waterfall))
        linker.visualisations.comparison_viewer_dashboard(
            predictions, str(Path(staging) / viewer), overwrite=True, num_example_rows=2
        )
        for name in CHART_FILES:
            os.replace(Path(staging) / name, folder / name)
    return [folder / name for name in CHART_FILES]


def model_parameters(model: Model) -> pl.DataFrame:
    """m and u of every comparison level, with the match weight (log2 of m/u) it adds."""
    rows = [
        (
            comparison["output_column_name"],
            level["label_for_charts"],
            level.get("m_probability"),
            level.get("u_probability"),
            _log2_ratio(level.get("m_probability"), level.get("u_probability")),
        )
        for comparison in model["comparisons"]
        for level in comparison["comparison_levels"]
        if not level.get("is_null_level")
    ]
    return pl.DataFrame(rows, schema=PARAMETER_SCHEMA, orient="row")


def _comparison(method: str, column: str) -> Any:
    """The Splink comparison of one attribute by the spec's method."""
    import splink.comparison_library as cl

    comparisons = {
        "name": lambda: cl.NameComparison(column).configure(term_frequency_adjustments=True),
        "exact": lambda: cl.ExactMatch(column).configure(term_frequency_adjustments=True),
        "fuzzy": lambda: cl.JaroWinklerAtThresholds(column, [0.92, 0.8]),
        "levenshtein": lambda: cl.LevenshteinAtThresholds(column, [1, 2]),
        "date": lambda: cl.DateOfBirthComparison(column, input_is_string=True),
        "email": lambda: cl.EmailComparison(column),
    }
    return comparisons[method]()


def _settings(matching: Matching, prior: float | None) -> SettingsCreator:
    from splink import SettingsCreator, block_on

    options: dict[str, Any] = {}
    if prior is not None:
        options["probability_two_random_records_match"] = prior
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=[_comparison(method, name) for name, method in matching.comparisons.items()],
        blocking_rules_to_generate_predictions=[block_on(*block) for block in matching.blocking],
        retain_intermediate_calculation_columns=True,
        **options,
    )


def _linker(frame: pl.DataFrame, settings: SettingsCreator | Model) -> Linker:
    from splink import DuckDBAPI, Linker

    database = DuckDBAPI()
    table = database.register(frame.to_arrow(), table_name="records_to_match")
    # Splink narrates every EM iteration; the assets log their own progress instead.
    return Linker(table, settings, log_level=logging.ERROR)


def _level_labels(model: Model) -> dict[str, dict[str, str]]:
    """gamma value -> level label per comparison (Splink numbers the non-null levels
    from the highest down to 0, the null level is -1)."""
    labels = {}
    for comparison in model["comparisons"]:
        levels = comparison["comparison_levels"]
        plain = [lvl for lvl in levels if not lvl.get("is_null_level")]
        mapping = {str(len(plain) - 1 - i): lvl["label_for_charts"] for i, lvl in enumerate(plain)}
        mapping["-1"] = "null"
        labels[comparison["output_column_name"]] = mapping
    return labels


def _field_weight(scored: pl.DataFrame, field: str) -> pl.Expr:
    """The field's match weight (log2 Bayes factor), term-frequency adjustment included."""
    weight = pl.col(f"mw_{field}")
    if f"mw_tf_adj_{field}" in scored.columns:
        weight = weight + pl.col(f"mw_tf_adj_{field}")
    return weight


def _log2_ratio(m: float | None, u: float | None) -> float | None:
    return math.log2(m / u) if m and u else None


def reusable_model(store: ArtifactStore, matching: Matching) -> tuple[Model, datetime] | None:
    """The persisted model and when it was trained, if it was trained for these matching
    settings: what a run that does not retrain scores with."""
    persisted = store.read_state(MODEL_STATE)
    if persisted is None or persisted["fingerprint"][0] != matching_fingerprint(matching):
        return None
    return json.loads(persisted["model"][0]), persisted["trained_at"][0]


def save_model(store: ArtifactStore, matching: Matching, model: Model) -> datetime:
    """Persist a model trained for these matching settings, for :func:`reusable_model`;
    when it was trained."""
    trained_at = datetime.now(UTC).replace(tzinfo=None)
    store.write_state(
        MODEL_STATE,
        pl.DataFrame(
            {
                "model": [json.dumps(model)],
                "fingerprint": [matching_fingerprint(matching)],
                "trained_at": [trained_at],
            }
        ),
    )
    return trained_at


def matching_fingerprint(matching: Matching) -> str:
    """Changes whenever the matching settings do, so a stale model is never reused."""
    return hashlib.blake2b(matching.model_dump_json().encode(), digest_size=16).hexdigest()
