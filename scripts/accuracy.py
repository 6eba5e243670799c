"""Pairwise accuracy of the default spec with and without its guards and matching stage.

Runs the real job four times on the same sample — identifier rules only, rules with the
corroboration guard, those with probabilistic matching, and the full spec, which also
splits over-merged clusters — and prints one table row per configuration. Usage:
``python scripts/accuracy.py [--spec customer360.yaml] [--missed]``; ``--missed`` runs
only the spec as written and breaks its missed pairs down by reason.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import dagster as dg
import polars as pl
import yaml

from customer360.core.evaluation import read_truth
from customer360.core.matching import comparison_frame
from customer360.core.missed_pairs import missed_pairs, missed_summary, name_collisions
from customer360.core.spec import load_spec
from customer360.core.storage import ArtifactStore
from customer360.runner import materialize_all

HEADER = "| configuration | precision | recall | F1 | over-merged clusters | people split |"


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
    parser.add_argument(
        "--missed", action="store_true", help="break the spec's missed pairs down by reason"
    )
    args = parser.parse_args()
    spec_path = args.spec.resolve()
    raw = yaml.safe_load(spec_path.read_text())
    variants = configurations(raw)
    if args.missed:
        variants = {"the spec as written": raw}
    print(HEADER)
    print("| --- | --- | --- | --- | --- | --- |")
    for label, variant in variants.items():
        with tempfile.TemporaryDirectory() as scratch:
            # beside the original, so relative paths in the spec still resolve
            variant_path = spec_path.with_name(f".accuracy-{Path(scratch).name}.yaml")
            variant_path.write_text(yaml.safe_dump(variant, sort_keys=False))
            try:
                artifacts = Path(scratch) / "artifacts"
                materialize_all(
                    variant_path, artifacts, dg.DagsterInstance.ephemeral(), log_level="ERROR"
                )
                store = ArtifactStore(artifacts)
                figures = _headline(store)
                print(
                    f"| {label} | {figures['pairwise_precision']:.4f} | "
                    f"{figures['pairwise_recall']:.4f} | {figures['pairwise_f1']:.4f} | "
                    f"{int(figures['pairwise_over_merged_clusters'])} | "
                    f"{int(figures['pairwise_under_merged_people'])} |"
                )
                if args.missed:
                    _print_missed(spec_path, store)
            finally:
                variant_path.unlink()


def _headline(store: ArtifactStore) -> dict[str, float]:
    metrics = store.read("resolution_metrics").filter(pl.col("dimension") == "")
    return dict(metrics.select("metric", "value").iter_rows())


def _print_missed(spec_path: Path, store: ArtifactStore) -> None:
    """The missed pairs by reason, and how often a name-only link would be right."""
    spec = load_spec(spec_path)
    matching = spec.matching
    if spec.truth is None or matching is None or not matching.enabled:
        raise SystemExit("--missed needs the spec's truth section and matching turned on")
    names = [name for name, method in matching.comparisons.items() if method == "name"]
    records = store.read("records")
    attributes = comparison_frame(records, matching).rename({"unique_id": "entity_key"})
    truth = read_truth(
        spec.resolve(spec.truth.path), spec.truth.key_column, spec.truth.person_column
    )
    membership = store.read("membership")
    edges = pl.concat(
        store.read(table, ["entity_key_a", "entity_key_b"])
        for table in ("identity_edges", "match_edges")
    )
    missed = missed_pairs(
        attributes, store.read("identifiers"), membership, truth, edges, names, matching.blocking
    )
    print(f"\nmissed pairs ({missed.height:,}) by the first reason that applies:\n")
    print(f"| reason | pairs | share | all of {', '.join(names)} equal |")
    print("| --- | --- | --- | --- |")
    for reason, pairs, share, names_equal in missed_summary(missed).iter_rows():
        print(f"| {reason} | {pairs:,} | {share:.1%} | {names_equal:,} |")
    pairs, same = name_collisions(attributes, membership, truth, names)
    print(
        f"\nrecord pairs in different customers with equal {', '.join(names)}: {pairs:,}, "
        f"of which the same person: {same:,} ({same / max(pairs, 1):.1%})"
    )


if __name__ == "__main__":
    main()
