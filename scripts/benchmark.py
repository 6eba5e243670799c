"""Benchmark: materialize the whole asset graph on N generated records and print wall
time per asset, total wall time (including process start) and peak RSS; then drop a 1%
batch of new CRM records into the CRM folder and time the runs that bring it in (the
ingestion of its partition and the resolve_customers run, as the sensor starts them); then
recompute everything from scratch on the same files (reusing the trained match model,
as the incremental run did), time it, and check that both ended with the same
customers: the same partition of records and the same golden values.

    python scripts/benchmark.py --records 1000000      # or: make bench N=1000000
    python scripts/benchmark.py --records 1000000 --probabilistic

By default the spec's probabilistic stage is left out: the graph then resolves by the
identifier rules, guards and splits alone, the work the speed targets are set for.
``--probabilistic`` keeps it (the first run trains the match model; later runs reuse it).

The sample world is generated once per (N, seed, generator version) under --work and
reused. Two benchmarks of the same folder take turns (each starts by clearing its
artifacts); give each person or experiment its own --work to run side by side. Each
materialization runs in a fresh child process — the real assets, IO manager and checks,
exactly as `customer360 run` does it — so the figures include Python start-up and
imports.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
BATCH_FILE = "increment.csv"
SCRATCH_ARTIFACTS = "artifacts-recompute"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", type=Path, default=Path("/tmp/customer360-bench"))
    parser.add_argument(
        "--probabilistic", action="store_true", help="keep the spec's probabilistic stage"
    )
    parser.add_argument(
        "--full-only", action="store_true", help="time the full run only (no batch, no recompute)"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--artifacts", default="artifacts", help=argparse.SUPPRESS)
    parser.add_argument("--ingest", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _materialize(args.child, args.child / args.artifacts, args.ingest)
    folder = args.work / f"n{args.records}-s{args.seed}-g{_generator_version()}"
    with _exclusive(folder):
        return _benchmark(args, _prepare(folder, args.records, args.seed, args.probabilistic))


@contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """One benchmark at a time per folder: each one starts by deleting the folder's
    artifacts, so a second one running beside it would spoil both sets of figures."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".benchmark.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another benchmark is using {folder}; waiting for it …", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _benchmark(args: argparse.Namespace, workdir: Path) -> int:
    """The full run, then (unless --full-only) the 1% batch and the recompute."""
    full = _timed_run(workdir)
    if full is None:
        return 1
    report, wall = full
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    _print_report(args.records, report, wall, peak_mb)
    if args.full_only:
        return 0 if report["success"] else 1

    added = _drop_batch(workdir, rows=args.records // 100)
    again = _timed_run(workdir, ingest=BATCH_FILE)
    if again is None:
        return 1
    print(f"\n  then a 1% batch ({added:,} new CRM records) dropped into the CRM folder:")
    print(f"  {'rerun wall (incl. process start)':<46}{again[1]:>9.2f}")
    print(f"  {'share of the full run':<46}{again[1] / wall:>9.0%}")
    peaks = again[0]["step_peak_mb"]
    print(f"  {'rerun peak RSS (MB, sampled in its steps)':<46}{max(peaks.values()):>9.0f}")
    slowest = sorted(again[0]["steps"].items(), key=lambda item: -item[1])[:8]
    print(
        "  slowest steps of that run, seconds (peak MB): "
        + ", ".join(f"{k} {v:.1f} ({peaks[k]:.0f})" for k, v in slowest)
    )

    scratch = _timed_run(workdir, _scratch_artifacts(workdir))
    if scratch is None:
        return 1
    same = _same_customers(workdir / "artifacts", workdir / SCRATCH_ARTIFACTS)
    print(f"  {'full recompute, same files and model':<46}{scratch[1]:>9.2f}")
    print(f"  {'incremental share of that recompute':<46}{again[1] / scratch[1]:>9.0%}")
    print(f"  {'incremental result equals the recompute':<46}{'yes' if same else 'NO':>9}")
    return 0 if same else 1


def _scratch_artifacts(workdir: Path) -> str:
    """A fresh artifacts folder holding only the trained match model."""
    scratch = workdir / SCRATCH_ARTIFACTS
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "state").mkdir(parents=True)
    model = workdir / "artifacts" / "state" / "match_model.parquet"
    if model.is_file():
        shutil.copy2(model, scratch / "state" / model.name)
    return SCRATCH_ARTIFACTS


def _same_customers(incremental: Path, scratch: Path) -> bool:
    """Both folders hold the same partition of records and the same golden values; ids
    and the run-dated quality score are left out (ids depend on the runs' history)."""
    return all(
        a.equals(b) for a, b in zip(_customers(incremental), _customers(scratch), strict=True)
    )


def _customers(artifacts: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each record's cluster, and each cluster's golden profile, with every cluster named
    by its smallest entity_key — the same name whichever run made it."""
    membership = pl.read_parquet(artifacts / "membership.parquet").select(
        "entity_key",
        "resolved_id",
        pl.col("entity_key").min().over("resolved_id").alias("cluster"),
    )
    golden = (
        pl.read_parquet(artifacts / "golden_profiles.parquet")
        .join(membership.select("resolved_id", "cluster").unique(), on="resolved_id")
        .drop("resolved_id", "quality_score")
        .sort("cluster")
    )
    return membership.select("entity_key", "cluster").sort("entity_key"), golden


def _timed_run(
    workdir: Path, artifacts: str = "artifacts", ingest: str | None = None
) -> tuple[dict, float] | None:
    """Materialize in a fresh child process, after ingesting the CRM batch ``ingest``
    into its partition when given; its report and wall seconds."""
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, __file__, "--child", str(workdir), "--artifacts", artifacts]
        + (["--ingest", ingest] if ingest else []),
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if child.returncode != 0:
        print(child.stdout, child.stderr, sep="\n", file=sys.stderr)
        return None
    return json.loads(child.stdout.strip().splitlines()[-1]), wall


def _drop_batch(workdir: Path, rows: int) -> int:
    """A new CRM batch file: CRM rows again under new keys and a later date."""
    crm = workdir / "data_sources" / "crm"
    base = pl.read_csv(crm / "customers.csv", infer_schema=False)
    batch = base.sample(n=min(rows, base.height), seed=1).with_columns(
        ("N" + pl.col("customer_id")).alias("customer_id"),
        pl.lit("2026-01-01 00:00:00").alias("created_at"),
    )
    batch.write_csv(crm / BATCH_FILE)
    return batch.height


def _generator_version() -> str:
    """A short hash of the generator's code: a changed generator means new data."""
    digest = hashlib.blake2b(digest_size=4)
    for path in sorted((REPO_ROOT / "customer360" / "sample").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _prepare(workdir: Path, records: int, seed: int, probabilistic: bool) -> Path:
    """Generate the sample world once; copy the bundled spec beside it, without its
    probabilistic stage unless asked."""
    data = workdir / "data_sources"
    if not (data / "truth.csv").is_file():
        from customer360.sample import generate_sample

        print(f"generating {records:,} records in {data} …", file=sys.stderr)
        generate_sample(data, records=records, seed=seed)
    spec = (REPO_ROOT / "customer360.yaml").read_text()
    # the CRM source as a folder of batch files, so that a batch can be dropped in
    spec = spec.replace("path: data_sources/crm/customers.csv", "path: data_sources/crm")
    if not probabilistic:
        parsed = yaml.safe_load(spec)
        parsed.pop("matching", None)
        spec = yaml.safe_dump(parsed, sort_keys=False)
    (workdir / "customer360.yaml").write_text(spec)
    (data / "crm" / BATCH_FILE).unlink(missing_ok=True)
    shutil.rmtree(workdir / "artifacts", ignore_errors=True)
    shutil.rmtree(workdir / SCRATCH_ARTIFACTS, ignore_errors=True)
    return workdir


def _materialize(workdir: Path, artifacts: Path, batch: str | None) -> int:
    """In the child: ingest the CRM batch ``batch`` into its partition when given (the
    sensor's ingestion run), then run the main job; print per-step durations as one
    JSON line."""
    import dagster as dg

    from customer360.core.spec import load_spec
    from customer360.definitions import build_definitions
    from customer360.defs.partitions import ingest_job_name, partitions_name
    from customer360.runner import materialize_all

    spec = workdir / "customer360.yaml"
    memory = _MemorySampler()
    instance = dg.DagsterInstance.ephemeral()
    runs = []
    if batch:
        instance.add_dynamic_partitions(partitions_name("crm_customers"), [batch])
        ingest = build_definitions(load_spec(spec), artifacts).resolve_job_def(
            ingest_job_name("crm_customers")
        )
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        run = ingest.execute_in_process(instance=instance, partition_key=batch, run_config=quiet)
        runs.append(run.run_id)
    result = materialize_all(spec, artifacts, instance, log_level="WARNING")
    runs.append(result.run_id)
    memory.stop()
    starts: dict[str, float] = {}
    steps: dict[str, float] = {}
    step_peaks: dict[str, float] = {}
    for entry in (entry for run_id in runs for entry in instance.all_logs(run_id)):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            steps[event.step_key] = entry.timestamp - starts[event.step_key]
            step_peaks[event.step_key] = memory.peak_mb(starts[event.step_key], entry.timestamp)
    checks = result.get_asset_check_evaluations()
    print(
        json.dumps(
            {
                "success": result.success,
                "steps": steps,
                "step_peak_mb": step_peaks,
                "checks_passed": sum(c.passed for c in checks),
                "checks": len(checks),
            }
        )
    )
    return 0


class _MemorySampler:
    """The process's resident memory, sampled every 50 ms in a background thread, so
    that each step's peak can be told apart from the run's."""

    def __init__(self) -> None:
        self._samples: list[tuple[float, int]] = []
        self._done = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        with open("/proc/self/statm") as statm:
            while not self._done.is_set():
                statm.seek(0)
                resident = int(statm.read().split()[1]) * self._page
                self._samples.append((time.time(), resident))
                self._done.wait(0.05)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def peak_mb(self, start: float, end: float) -> float:
        """The highest sample taken between ``start`` and ``end`` (Unix seconds), widened
        by one sampling interval so that a step shorter than it still gets a figure."""
        inside = [rss for at, rss in self._samples if start - 0.05 <= at <= end + 0.05]
        return max(inside, default=0) / 2**20


def _print_report(records: int, report: dict, wall: float, peak_mb: float) -> None:
    steps = sorted(report["steps"].items(), key=lambda item: -item[1])
    peaks = report.get("step_peak_mb", {})
    print(f"\ncustomer360 benchmark: {records:,} records")
    print(f"  {'step':<46}{'seconds':>9}{'peak RSS (MB)':>15}")
    for name, seconds in steps:
        print(f"  {name:<46}{seconds:>9.2f}{peaks.get(name, 0):>15.0f}")
    print(f"  {'sum of steps':<46}{sum(s for _, s in steps):>9.2f}")
    print(f"  {'total wall (incl. process start)':<46}{wall:>9.2f}")
    print(f"  {'peak RSS (MB)':<46}{peak_mb:>9.0f}")
    print(
        f"  run success: {report['success']}, checks {report['checks_passed']}/{report['checks']}"
    )


if __name__ == "__main__":
    sys.exit(main())
