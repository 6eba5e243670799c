"""Load test of the resolve service: 10,000 resolves over loopback against a graph built
from N generated records; prints p50/p99 latency and errors, and checks that every
record sent with an existing customer's email or phone got that customer's id.

    python scripts/load_test.py --records 1000000          # or: make loadtest N=1000000
    python scripts/load_test.py --records 1000000 --converge

The sample world is generated and materialized once per (N, seed, generator version)
under --work, with the benchmark's helpers, and reused. The real service
(`customer360 serve`, one uvicorn worker) runs in a child process; one keep-alive
connection sends the requests one after another: 40% carry the raw email of a record
in the graph, 30% its raw phone and first name, 30% a new person's email. Only values
that stay linkable when one more record shares them are used, each once, so the
expected id is the published membership's (a phone is guarded by first names in the
sample's spec: the record's own name agrees with the records the batch linked it to).
--converge then stops the service (its inbox becomes a batch file), runs the batch
again and checks that it kept every id the service gave.

The graph is rebuilt when the generator or the bundled spec changes.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
from benchmark import REPO_ROOT, _generator_version, _prepare, _timed_run

from customer360.core.inbox import entity_key, inbox_folder
from customer360.core.spec import Spec, load_spec

MIX = {"email": 0.4, "phone": 0.3, "new": 0.3}
READY_TIMEOUT_SECONDS = 600


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--port", type=int, default=8399)
    parser.add_argument("--work", type=Path, default=Path("/tmp/customer360-loadtest"))
    parser.add_argument(
        "--converge", action="store_true", help="then run the batch and compare its ids"
    )
    args = parser.parse_args()

    version = f"g{_generator_version()}-c{_spec_version()}"
    workdir = args.work / f"n{args.records}-s{args.seed}-{version}"
    if not _graph_published(workdir):
        _prepare(workdir, args.records, args.seed)
        print(f"materializing the graph of {args.records:,} records …", file=sys.stderr)
        if _timed_run(workdir) is None:
            return 1
    spec = load_spec(workdir / "customer360.yaml")
    shutil.rmtree(inbox_folder(spec), ignore_errors=True)  # earlier load tests' records
    requests = _requests(workdir, spec, args.requests, args.seed)

    key = secrets.token_urlsafe(32)
    server, load_seconds = _start_server(workdir, args.port, key)
    try:
        latencies, answers, errors = _fire(args.port, key, requests)
        rss_mb = _rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=120)

    mismatches = _wrong_ids(requests, answers)
    _report(args.records, load_seconds, rss_mb, latencies, errors, requests, mismatches)
    ok = not errors and mismatches.is_empty()
    if args.converge:
        ok = _converges(workdir, spec, requests, answers) and ok
    return 0 if ok else 1


def _spec_version() -> str:
    """A short hash of the bundled spec: another spec means another graph."""
    return hashlib.blake2b((REPO_ROOT / "customer360.yaml").read_bytes(), digest_size=4).hexdigest()


def _graph_published(workdir: Path) -> bool:
    return (workdir / "artifacts" / "membership.parquet").is_file()


def _requests(workdir: Path, spec: Spec, count: int, seed: int) -> pl.DataFrame:
    """The requests with the id each must get (null for new people): raw values of
    records in the graph, each value once, that one more record keeps linkable."""
    artifacts = workdir / "artifacts"
    limits = pl.DataFrame(
        {
            "identifier_type": list(spec.identifier_types),
            "max_group_size": [t.max_group_size for t in spec.identifier_types.values()],
        }
    )
    usable = (
        pl.scan_parquet(artifacts / "identifiers.parquet")
        .filter(pl.col("status") == "linkable", pl.col("identifier_type").is_in(["email", "phone"]))
        .join(limits.lazy(), on="identifier_type")
        .filter(pl.col("group_size") < pl.col("max_group_size"))
        .unique(["identifier_type", "value"], keep="first")
        .join(
            pl.scan_parquet(artifacts / "membership.parquet").select("entity_key", "resolved_id"),
            on="entity_key",
        )
        .join(
            pl.scan_parquet(artifacts / "records.parquet").select("entity_key", "first_name"),
            on="entity_key",
        )
        .select(
            "identifier_type",
            "value_raw",
            # a guarded phone links a record with no name to nobody when its group names
            # several people: send the phone with the record's own first name
            pl.when(pl.col("identifier_type") == "phone")
            .then(pl.col("first_name"))
            .alias("first_name"),
            pl.col("resolved_id").alias("expected"),
        )
        .collect()
    )
    parts = []
    for kind in ("email", "phone"):
        wanted = round(count * MIX[kind])
        of_kind = usable.filter(pl.col("identifier_type") == kind)
        if kind == "phone":
            of_kind = of_kind.drop_nulls("first_name")
        parts.append(of_kind.sample(n=wanted, seed=seed))
    run = secrets.token_hex(4)
    new = count - sum(part.height for part in parts)
    parts.append(
        pl.DataFrame(
            {
                "identifier_type": ["email"] * new,
                "value_raw": [f"load.{run}.{i}@new-customers.test" for i in range(new)],
                "first_name": [None] * new,
                "expected": [None] * new,
            },
            schema=usable.schema,
        )
    )
    return (
        pl.concat(parts)
        .sample(fraction=1.0, shuffle=True, seed=seed)
        .with_columns((pl.lit(f"lt-{run}-") + pl.int_range(pl.len()).cast(pl.String)).alias("id"))
    )


def _start_server(workdir: Path, port: int, key: str) -> tuple[subprocess.Popen, float]:
    command = [sys.executable, "-m", "customer360.cli", "serve"]
    command += ["--spec", str(workdir / "customer360.yaml"), "--artifacts"]
    command += [str(workdir / "artifacts"), "--port", str(port)]
    started = time.perf_counter()
    server = subprocess.Popen(command, env={**os.environ, "CUSTOMER360_API_KEY": key})
    deadline = started + READY_TIMEOUT_SECONDS
    while time.perf_counter() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the service exited with {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/ready")
            if connection.getresponse().status == 200:
                return server, time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.5)
    server.kill()
    raise SystemExit("the service did not become ready")


def _fire(port: int, key: str, requests: pl.DataFrame) -> tuple[list[float], list, int]:
    """Send every request on one keep-alive connection; latency per request in ms."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "X-API-Key": key}
    for _ in range(50):  # warm the connection up with lookups (not resolves), not counted
        connection.request("GET", "/v1/lookup?email=warm.up%40example.test", headers=headers)
        connection.getresponse().read()
    latencies, answers, errors = [], [], 0
    rows = requests.select("identifier_type", "value_raw", "first_name", "id").iter_rows()
    for kind, raw, first_name, external_id in rows:
        data = {kind: raw} | ({"first_name": first_name} if first_name else {})
        body = json.dumps({"source": "load_test", "external_id": external_id, "data": data})
        started = time.perf_counter()
        try:
            connection.request("POST", "/v1/resolve", body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            answers.append(None)
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            errors += 1
            answers.append(None)
        else:
            answers.append(json.loads(payload)["resolved_id"])
    return latencies, answers, errors


def _wrong_ids(requests: pl.DataFrame, answers: list) -> pl.DataFrame:
    checked = requests.with_columns(pl.Series("answer", answers, dtype=pl.String))
    return checked.filter(
        pl.col("expected").is_not_null() & (pl.col("answer") != pl.col("expected"))
    )


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _report(records, load_seconds, rss_mb, latencies, errors, requests, mismatches) -> None:
    ordered = sorted(latencies)

    def percentile(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0

    expected = requests.filter(pl.col("expected").is_not_null()).height
    print(f"\ncustomer360 resolve service load test: graph of {records:,} records")
    for label, value in [
        ("service start to ready (s)", f"{load_seconds:.1f}"),
        ("service RSS after the test (MB)", f"{rss_mb:,.0f}"),
        ("resolves sent", f"{requests.height:,}"),
        ("errors", f"{errors:,}"),
        ("p50 latency (ms)", f"{percentile(0.50):.2f}"),
        ("p90 latency (ms)", f"{percentile(0.90):.2f}"),
        ("p99 latency (ms)", f"{percentile(0.99):.2f}"),
        ("max latency (ms)", f"{max(ordered, default=0):.2f}"),
        ("throughput, one connection (req/s)", f"{len(ordered) / (sum(ordered) / 1000):,.0f}"),
        ("existing-customer records checked", f"{expected:,}"),
        ("ids equal to the batch's membership", f"{expected - mismatches.height:,}"),
    ]:
        print(f"  {label:<42}{value:>12}")
    if mismatches.height:
        print(mismatches.head(5))


def _converges(workdir: Path, spec: Spec, requests: pl.DataFrame, answers: list) -> bool:
    """Run the batch over the inbox and compare its ids with the service's answers."""
    print("running the batch over the service's inbox …", file=sys.stderr)
    again = _timed_run(workdir)
    if again is None:
        return False
    answered = requests.select(
        (entity_key(spec, "load_test", "") + pl.col("id")).alias("entity_key"),
        pl.Series("answer", answers, dtype=pl.String),
    )
    lineage = pl.read_parquet(workdir / "artifacts" / "cluster_lineage.parquet")
    latest = lineage.filter(pl.col("recorded_at") == pl.col("recorded_at").max())
    compared = answered.join(
        pl.read_parquet(workdir / "artifacts" / "membership.parquet"), on="entity_key", how="left"
    ).join(latest.select("entity_key", "change_type"), on="entity_key", how="left")
    kept = compared.filter(pl.col("answer") == pl.col("resolved_id")).height
    changes = dict(compared.group_by("change_type").len().iter_rows())
    print(f"  {'batch run over the inbox (s)':<42}{again[1]:>12.1f}")
    print(f"  {'records in the batch':<42}{compared['resolved_id'].is_not_null().sum():>12,}")
    print(f"  {'ids the batch kept':<42}{kept:>12,}")
    print(f"  {'lineage of those records':<42}{json.dumps(changes):>12}")
    return kept == compared.height


if __name__ == "__main__":
    sys.exit(main())
