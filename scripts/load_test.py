"""Load test of the resolve service: 10,000 resolves over loopback against a graph built
from N generated records; prints p50/p99 latency and errors, and checks that every
record sent with an existing customer's email or phone got that customer's id.

    python scripts/load_test.py --records 1000000          # or: make loadtest N=1000000
    python scripts/load_test.py --records 1000000 --converge
    python scripts/load_test.py --records 1000000 --probabilistic

The sample world is generated and materialized once per (N, seed, generator version)
under --work, with the benchmark's helpers, and reused. The real service
(`customer360 serve`, one uvicorn worker) runs in a child process; one keep-alive
connection sends the requests one after another: 40% carry the raw email of a record
in the graph, 30% its raw phone and first name, 30% a new person's email. Only values
that stay linkable when one more record shares them are used, each once, taken from the
record anchoring the value's group (its first in canonical order, which the batch links
a newcomer to), so the expected id is that record's published customer (a phone is
guarded by first names in the sample's spec: the record's own name agrees with the
records the batch linked it to).
--converge then stops the service (its inbox becomes a batch file), runs the batch
again and checks that it kept every id the service gave.

--probabilistic keeps the spec's matching stage and turns on the service's scoring;
10% of the requests (taken from the email share) then carry a published record's name,
birth date and address with a mistyped email, so they link by nothing and are scored.
Their latency is reported apart from the identifier matches'.

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
from typing import NamedTuple

import polars as pl
import yaml
from benchmark import REPO_ROOT, _generator_version, _prepare, _timed_run

from customer360.core.inbox import entity_key, inbox_folder
from customer360.core.spec import Spec, load_spec

MIX = {"email": 0.4, "phone": 0.3, "new": 0.3}
TYPO_SHARE = 0.1  # of the requests, with --probabilistic (taken from the email share)
PERSON = ["first_name", "last_name", "date_of_birth", "postcode", "street"]
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
    parser.add_argument(
        "--probabilistic",
        action="store_true",
        help="keep the matching stage, turn on the service's scoring, send mistyped emails",
    )
    args = parser.parse_args()

    version = f"g{_generator_version()}-c{_spec_version()}" + ("-p" if args.probabilistic else "")
    workdir = args.work / f"n{args.records}-s{args.seed}-{version}"
    if not _graph_published(workdir):
        _prepare(workdir, args.records, args.seed, args.probabilistic)
        print(f"materializing the graph of {args.records:,} records …", file=sys.stderr)
        if _timed_run(workdir) is None:
            return 1
    if args.probabilistic:
        _turn_scoring_on(workdir / "customer360.yaml")
    spec = load_spec(workdir / "customer360.yaml")
    shutil.rmtree(inbox_folder(spec), ignore_errors=True)  # earlier load tests' records
    typo_share = TYPO_SHARE if args.probabilistic else 0.0
    requests = _requests(workdir, spec, args.requests, args.seed, typo_share)

    key = secrets.token_urlsafe(32)
    server, load_seconds = _start_server(workdir, args.port, key)
    try:
        latencies, answers, paths, errors = _fire(args.port, key, requests)
        rss_mb = _rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=120)

    mismatches = _wrong_ids(requests, answers)
    _report(args.records, load_seconds, rss_mb, latencies, errors, requests, mismatches)
    if args.probabilistic:
        _report_paths(requests, latencies, answers, paths)
    ok = not errors and mismatches.is_empty()
    if args.converge:
        ok = _converges(workdir, spec, requests, answers) and ok
    return 0 if ok else 1


def _spec_version() -> str:
    """A short hash of the bundled spec: another spec means another graph."""
    return hashlib.blake2b((REPO_ROOT / "customer360.yaml").read_bytes(), digest_size=4).hexdigest()


def _turn_scoring_on(spec_path: Path) -> None:
    parsed = yaml.safe_load(spec_path.read_text())
    parsed["service"]["probabilistic"] = True
    spec_path.write_text(yaml.safe_dump(parsed, sort_keys=False))


def _graph_published(workdir: Path) -> bool:
    return (workdir / "artifacts" / "membership.parquet").is_file()


def _requests(workdir: Path, spec: Spec, count: int, seed: int, typo_share: float) -> pl.DataFrame:
    """The requests with the id each must get (null for new people): raw values of
    records in the graph, each value once, that one more record keeps linkable — and
    ``typo_share`` of published people with a mistyped email, whose expected id is
    their customer's, not checked (the model decides)."""
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
        .join(
            pl.scan_parquet(artifacts / "membership.parquet")
            .select("entity_key", "resolved_id")
            .with_row_index("position"),
            on="entity_key",
        )
        # a record bringing the value is linked to the group's anchor, its first record
        # in canonical order (membership's): when a split left the group's records with
        # several customers, the anchor's is the one the batch gives
        .filter(pl.col("position") == pl.col("position").min().over("identifier_type", "value"))
        .join(
            pl.scan_parquet(artifacts / "records.parquet").select("entity_key", *PERSON),
            on="entity_key",
        )
        .select(
            "identifier_type",
            "value_raw",
            pl.struct(PERSON).alias("person"),
            # a guarded phone links a record with no name to nobody when its group names
            # several people: send the phone with the record's own first name
            pl.when(pl.col("identifier_type") == "phone")
            .then(pl.col("first_name"))
            .alias("first_name"),
            pl.col("resolved_id").alias("expected"),
        )
        .collect()
    )
    typos = round(count * typo_share)
    parts = [
        usable.filter(
            pl.col("identifier_type") == "email",
            pl.all_horizontal(pl.col("person").struct.field(c).is_not_null() for c in PERSON),
        )
        .sample(n=typos, seed=seed + 1)
        .with_columns(
            pl.lit("typo").alias("identifier_type"),
            ("zq" + pl.col("value_raw")).alias("value_raw"),
            pl.col("expected").alias("typo_of"),
            pl.lit(None, pl.String).alias("expected"),
        )
    ]
    for kind in ("email", "phone"):
        wanted = round(count * MIX[kind]) - (typos if kind == "email" else 0)
        of_kind = usable.filter(pl.col("identifier_type") == kind)
        if kind == "phone":
            of_kind = of_kind.drop_nulls("first_name")
        sample = of_kind.sample(n=wanted, seed=seed)
        parts.append(sample.with_columns(pl.lit(None, pl.String).alias("typo_of")))
    run = secrets.token_hex(4)
    new = count - sum(part.height for part in parts)
    parts.append(
        pl.DataFrame(
            {
                "identifier_type": ["email"] * new,
                "value_raw": [f"load.{run}.{i}@new-customers.test" for i in range(new)],
                "person": [None] * new,
                "first_name": [None] * new,
                "expected": [None] * new,
                "typo_of": [None] * new,
            },
            schema=parts[0].schema,
        )
    )
    return (
        pl.concat(parts, how="vertical_relaxed")
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


class Fired(NamedTuple):
    latencies: list[float]  # ms, per answered request
    answers: list[str | None]  # resolved_id per request (None: error)
    paths: list[str]  # per answered request, see _path
    errors: int


def _fire(port: int, key: str, requests: pl.DataFrame) -> Fired:
    """Send every request on one keep-alive connection; latency per request in ms."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "X-API-Key": key}
    for _ in range(50):  # warm the connection up with lookups (not resolves), not counted
        connection.request("GET", "/v1/lookup?email=warm.up%40example.test", headers=headers)
        connection.getresponse().read()
    latencies, answers, paths, errors = [], [], [], 0
    rows = requests.select("identifier_type", "value_raw", "first_name", "person", "id")
    for kind, raw, first_name, person, external_id in rows.iter_rows():
        data = {kind: raw} | ({"first_name": first_name} if first_name else {})
        if kind == "typo":  # a published person with a mistyped email
            data = {"email": raw} | person
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
        if response.status != 200:
            errors += 1
            answers.append(None)
        else:
            latencies.append((time.perf_counter() - started) * 1000)
            answer = json.loads(payload)
            answers.append(answer["resolved_id"])
            paths.append(_path(kind, answer["matched_on"]))
    return Fired(latencies, answers, paths, errors)


def _path(kind: str, matched_on: list[str]) -> str:
    """How a request was resolved: by identifiers (or as a new customer), or scored by
    the model — matched, or not (a mistyped email the model did not place)."""
    if matched_on == ["probabilistic"]:
        return "scored, matched"
    return "scored, no match" if kind == "typo" else "identifiers"


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
    if mismatches.height:  # keys and ids only: the values are personal data
        print(mismatches.select("identifier_type", "id", "expected", "answer").head(20))


def _report_paths(
    requests: pl.DataFrame, latencies: list[float], answers: list, paths: list[str]
) -> None:
    """Latency per path, and how many mistyped emails found their person's customer."""
    timed = pl.DataFrame({"path": paths, "ms": latencies})
    print("  by path (count, p50 ms, p99 ms):")
    for path, count, p50, p99 in (
        timed.group_by("path")
        .agg(
            pl.len(),
            pl.col("ms").quantile(0.5).alias("p50"),
            pl.col("ms").quantile(0.99).alias("p99"),
        )
        .sort("path")
        .iter_rows()
    ):
        print(f"    {path:<40}{count:>8,}{p50:>10.2f}{p99:>10.2f}")
    typos = requests.with_columns(pl.Series("answer", answers, dtype=pl.String)).filter(
        pl.col("typo_of").is_not_null()
    )
    found = typos.filter(pl.col("answer") == pl.col("typo_of")).height
    print(f"  {'mistyped emails given their customer':<42}{found:>6,} of {typos.height:,}")


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
    moved = compared.filter(pl.col("answer").ne_missing(pl.col("resolved_id")))
    if moved.height:  # keys and ids only: the values are personal data
        print(moved.select("entity_key", "answer", "resolved_id", "change_type").head(20))
    return kept == compared.height


if __name__ == "__main__":
    sys.exit(main())
