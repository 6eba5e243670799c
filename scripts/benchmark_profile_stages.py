"""Benchmark of the profile stages alone: the core functions behind traits,
resolved_traits, golden_profiles, golden_profile_history, customer_360, organizations
and resolution_metrics, run on the artifacts of a finished run, each timed as the best
of several repetitions in wall and in CPU seconds.

    python scripts/benchmark_profile_stages.py /tmp/customer360-bench/n1000000-s42-g<…>

CPU seconds (all threads) still compare when the machine is shared and wall times swing.
The folder is one that scripts/benchmark.py left behind after its 1% batch: survivorship
of that batch is timed with last run's inputs being this run's without the batch's
records (keys ``crm_customers:N…``), so the clusters they joined are resolved again and
the others carried over.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import polars as pl

from customer360.core.customer_view import build_customer_360
from customer360.core.evaluation import pairwise_scores, read_truth
from customer360.core.golden import build_golden_profiles
from customer360.core.history import update_history
from customer360.core.metrics import build_metrics
from customer360.core.organizations import resolve_organizations
from customer360.core.spec import load_spec
from customer360.core.touched_clusters import (
    RECORD_COLUMNS,
    KeptInputs,
    resolve_touched_traits,
)
from customer360.core.traits import OBSERVATION_PROVENANCE, build_traits

BATCH_KEYS = "crm_customers:N"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workdir", type=Path, help="a benchmark folder (spec, data, artifacts)")
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    stages = _stages(args.workdir / args.artifacts, args.workdir / "customer360.yaml")
    print(f"{'stage':<32}{'wall s':>9}{'cpu s':>9}")
    timings = {}
    for name, stage in stages.items():
        wall, cpu = _best(stage, args.repeat)
        timings[name] = {"wall": round(wall, 3), "cpu": round(cpu, 3)}
        print(f"{name:<32}{wall:>9.2f}{cpu:>9.2f}", flush=True)
    print(json.dumps(timings))


def _best(stage: Callable[[], object], repeat: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        stage()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def _stages(artifacts: Path, spec_path: Path) -> dict[str, Callable[[], object]]:
    spec = load_spec(spec_path)

    def read(table: str, columns: list[str] | None = None) -> pl.DataFrame:
        return pl.read_parquet(artifacts / f"{table}.parquet", columns=columns)

    def scan(table: str) -> pl.LazyFrame:
        return pl.scan_parquet(artifacts / f"{table}.parquet")

    records = read("records")
    membership = read("membership")
    members = membership.select("entity_key", "resolved_id")
    observed = scan("records").select(RECORD_COLUMNS)
    # the records of the batch's file are new; every other batch is as it was
    batches = records.filter(~pl.col("entity_key").str.starts_with(BATCH_KEYS))
    by_source = batches.group_by("source").agg(pl.col("batch").unique())
    before_batch = KeptInputs(
        members.filter(~pl.col("entity_key").str.starts_with(BATCH_KEYS)),
        dict(by_source.iter_rows()),
    )
    previous_winners = read("resolved_traits")
    identifiers = read("identifiers")
    sources = [source.name for source in spec.sources]
    measure = spec.customer_360.value_measure or next(iter(spec.measure_names), None)
    history = read("golden_profile_history")
    history_membership = pl.read_parquet(artifacts / "state" / "history_membership.parquet")
    truth = (
        read_truth(spec.resolve(spec.truth.path), spec.truth.key_column, spec.truth.person_column)
        if spec.truth
        else None
    )

    def metrics() -> pl.DataFrame:
        scores = pairwise_scores(membership, truth) if truth is not None else None
        return build_metrics(
            records.select("trust"),
            read("quarantine", ["source"]),
            identifiers.select("identifier_type", "status"),
            read("identity_edges", ["entity_key_a", "entity_key_b", "rule"]),
            read("skipped_groups"),
            membership.select("entity_key", "resolved_id", "source"),
            read("clusters", ["resolved_id", "size", "split_by"]),
            scores,
        )

    stages: dict[str, Callable[[], object]] = {
        "traits": lambda: build_traits(
            spec,
            records.select(*OBSERVATION_PROVENANCE, *spec.attribute_names),
            scan("identifiers"),
        ).collect(engine="streaming"),
        "resolved_traits (full)": lambda: resolve_touched_traits(
            spec, scan("traits"), observed, members
        ).resolved.collect(engine="streaming"),
        "resolved_traits (1% batch)": lambda: resolve_touched_traits(
            spec, scan("traits"), observed, members, before_batch, previous_winners
        ).resolved.collect(engine="streaming"),
        "golden_profiles": lambda: build_golden_profiles(
            spec, scan("resolved_traits"), records, members
        ),
        "golden_profile_history": lambda: update_history(
            history,
            scan("golden_profiles"),
            spec.golden_fields,
            members,
            history_membership,
            datetime(2100, 1, 1),
        ),
        "customer_360": lambda: build_customer_360(
            spec.customer_360, scan("golden_profiles"), records, members, sources, measure
        ),
        "resolution_metrics": metrics,
    }
    if spec.organizations:
        stages["organizations"] = lambda: resolve_organizations(
            spec.organizations, records, identifiers, members
        )
    return stages


if __name__ == "__main__":
    main()
