"""Pairwise accuracy of the default spec with and without its guards and matching stage.

Runs the real job four times on the same sample — identifier rules only, rules with the
corroboration guard, those with probabilistic matching, and the full spec, which also
splits over-merged clusters — and prints one table row per configuration. Usage:
``python scripts/accuracy.py [--spec customer360.yaml]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import dagster as dg
import polars as pl
import yaml

from customer360.core.storage import ArtifactStore
from customer360.runner import materialize_all


def configurations(raw: dict) -> dict[str, dict]:
    """The spec as written, and the simpler variants it is compared with."""
    with_matching = yaml.safe_load(yaml.safe_dump(raw))
    with_matching.pop("splitting", None)
    guarded = yaml.safe_load(yaml.safe_dump(with_matching))
    guarded.pop("matching", None)
    rules_only = yaml.safe_load(yaml.safe_dump(guarded))
    for id_type in rules_only["identifier_types"].values():
        id_type.pop("corroborate", None)
    return {
        "identifier rules only": rules_only,
        "rules + corroboration guard": guarded,
        "rules + guard + probabilistic matching": with_matching,
        "rules + guard + matching + split of over-merged clusters": raw,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", type=Path, default=Path("customer360.yaml"))
    spec_path = parser.parse_args().spec.resolve()
    raw = yaml.safe_load(spec_path.read_text())
    print("| configuration | precision | recall | F1 | over-merged clusters | people split |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, variant in configurations(raw).items():
        with tempfile.TemporaryDirectory() as scratch:
            # beside the original, so relative paths in the spec still resolve
            variant_path = spec_path.with_name(f".accuracy-{Path(scratch).name}.yaml")
            variant_path.write_text(yaml.safe_dump(variant, sort_keys=False))
            try:
                artifacts = Path(scratch) / "artifacts"
                materialize_all(
                    variant_path, artifacts, dg.DagsterInstance.ephemeral(), log_level="ERROR"
                )
                figures = _headline(ArtifactStore(artifacts))
            finally:
                variant_path.unlink()
        print(
            f"| {label} | {figures['pairwise_precision']:.4f} | "
            f"{figures['pairwise_recall']:.4f} | {figures['pairwise_f1']:.4f} | "
            f"{int(figures['pairwise_over_merged_clusters'])} | "
            f"{int(figures['pairwise_under_merged_people'])} |"
        )


def _headline(store: ArtifactStore) -> dict[str, float]:
    metrics = store.read("resolution_metrics").filter(pl.col("dimension") == "")
    return dict(metrics.select("metric", "value").iter_rows())


if __name__ == "__main__":
    main()
