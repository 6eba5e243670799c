"""Blocking checks that gate publication of clusters, evaluated inside the step that
computes them (see :mod:`customer360.core.gates`).

They are declared on ``cluster_records`` itself rather than as separate checks: a
separate check can only read a table that has already been written, while these judge
the proposed membership before anything is written. When one fails the step reports
it, then stops without writing membership, clusters, lineage or the id registry, and
nothing downstream runs.
"""

import dagster as dg
import polars as pl

from customer360.core.gates import largest_cluster_gate, moved_share_gate
from customer360.core.spec import Spec

LARGEST_CLUSTER = "largest_cluster_within_limit"
MOVED_SHARE = "moved_share_within_limit"


def gate_specs(spec: Spec) -> list[dg.AssetCheckSpec]:
    max_size, max_moved = spec.quality.max_cluster_size, spec.quality.max_moved_share
    return [
        dg.AssetCheckSpec(
            LARGEST_CLUSTER,
            asset="clusters",
            blocking=True,
            description=(
                f"Largest cluster ≤ quality.max_cluster_size ({max_size}), judged before "
                "publishing. Blocking: an over-merged graph is never published and never "
                "reaches golden_profiles."
            ),
        ),
        dg.AssetCheckSpec(
            MOVED_SHARE,
            asset="cluster_lineage",
            blocking=True,
            description=(
                f"At most quality.max_moved_share ({max_moved:.0%}) of the records that "
                "existed before this run change resolved_id, judged before publishing. "
                "Blocking: a run that would reshuffle customers publishes nothing."
            ),
        ),
    ]


def evaluate_gates(
    spec: Spec, clusters: pl.DataFrame, lineage: pl.DataFrame | pl.LazyFrame
) -> list[dg.AssetCheckResult]:
    """The gates' results on the proposed clusters and this run's lineage."""
    gates = [
        (
            LARGEST_CLUSTER,
            "clusters",
            largest_cluster_gate(clusters, spec.quality.max_cluster_size),
        ),
        (MOVED_SHARE, "cluster_lineage", moved_share_gate(lineage, spec.quality.max_moved_share)),
    ]
    return [
        dg.AssetCheckResult(
            check_name=name, asset_key=asset, passed=gate.passed, metadata=gate.figures
        )
        for name, asset, gate in gates
    ]


def stop_if_failed(results: list[dg.AssetCheckResult]) -> None:
    """Raise (so nothing is written) when a gate failed; the message names the gates and
    their figures."""
    failed = [
        f"{result.check_name} ({_figures(result)})" for result in results if not result.passed
    ]
    if failed:
        raise dg.Failure(
            description=f"blocking check(s) failed on the proposed clusters: {'; '.join(failed)}"
            ". Nothing was published: the previous tables stay as they were."
        )


def _figures(result: dg.AssetCheckResult) -> str:
    return ", ".join(
        f"{name} {getattr(value, 'value', value)}" for name, value in result.metadata.items()
    )
