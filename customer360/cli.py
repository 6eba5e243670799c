"""The ``customer360`` command.

- ``customer360 run``: materialize the whole asset graph in process and print a summary;
- ``customer360 sample``: write the seeded sample world to ``data_sources/``;
- ``customer360 forget``: remove a person from every output and keep them out;
- ``customer360 explain``: why records are one customer — the links between them;
- ``customer360 serve``: the real-time resolve service over the published graph.

Runs land in the Dagster instance at ``$DAGSTER_HOME`` when it is set (so they show up
in ``dagster dev``), otherwise in a throwaway in-memory instance.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import dagster as dg
import polars as pl

from customer360.core.explain import (
    PairExplanation,
    UnknownRecordError,
    explain_pair,
    explain_record,
    format_explanation,
)
from customer360.core.forget import ForgetError, forget, select_records
from customer360.core.spec import (
    DEFAULT_SERVICE_PORT,
    SPEC_ENV_VAR,
    Spec,
    SpecError,
    default_spec_path,
    load_spec,
)
from customer360.core.storage import ARTIFACTS_ENV_VAR, ArtifactStore, StorageError
from customer360.definitions import artifacts_dir
from customer360.defs.run_history import record_run
from customer360.runner import checked_spec, materialize_all, spec_version
from customer360.service import API_KEY_ENV_VAR

DEFAULT_SAMPLE_DIR = Path("data_sources")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="customer360", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="materialize the whole graph and print a summary")
    run.add_argument(
        "--spec", type=Path, help=f"spec file (default ${SPEC_ENV_VAR} or ./customer360.yaml)"
    )
    run.add_argument(
        "--artifacts", type=Path, help=f"output folder (default ${ARTIFACTS_ENV_VAR} or artifacts/)"
    )

    sample = commands.add_parser("sample", help="generate the seeded sample data")
    sample.add_argument("--out", type=Path, default=DEFAULT_SAMPLE_DIR)
    sample.add_argument("--records", type=int, default=20_000, help="approximate record count")
    sample.add_argument("--seed", type=int, default=42)
    sample.add_argument(
        "--if-missing", action="store_true", help="do nothing when the sample already exists"
    )

    forgetting = commands.add_parser(
        "forget",
        help="remove a person from every output and keep them out of later runs",
    )
    forgetting.add_argument("--spec", type=Path)
    forgetting.add_argument("--artifacts", type=Path)
    chosen = forgetting.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--resolved-id", help="the customer's resolved_id")
    chosen.add_argument(
        "--identifier", nargs=2, metavar=("TYPE", "VALUE"), help="e.g. --identifier email a@b.com"
    )

    explaining = commands.add_parser(
        "explain",
        help="why records are one customer: the links between them, with their evidence",
        description="One key: the record's customer and the links that hold it together. "
        "Two keys: the chain of links between the records. Exit status 0 when explained "
        "(for two keys: they are one customer), 1 when the two records are not linked, "
        "2 on an error such as an unknown key or missing outputs.",
    )
    explaining.add_argument("key", metavar="KEY", help="an entity_key, e.g. crm_customers:C001")
    explaining.add_argument("other_key", metavar="KEY", nargs="?", help="a second entity_key")
    explaining.add_argument("--spec", type=Path, help="spec file, to find the outputs")
    explaining.add_argument("--artifacts", type=Path, help="output folder (overrides --spec)")
    explaining.add_argument(
        "--show-values", action="store_true", help="show shared emails and phones unmasked"
    )

    serving = commands.add_parser(
        "serve", help="the real-time resolve service (HTTP) over the published graph"
    )
    serving.add_argument("--spec", type=Path)
    serving.add_argument("--artifacts", type=Path)
    serving.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serving.add_argument(
        "--port", type=int, help=f"port (default service.port, else {DEFAULT_SERVICE_PORT})"
    )
    serving.add_argument(
        "--no-auth",
        action="store_true",
        help=f"serve without the API key (${API_KEY_ENV_VAR}); for local experiments only",
    )

    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args.spec, args.artifacts)
    if args.command == "forget":
        return _forget(args.spec, args.artifacts, args.resolved_id, args.identifier)
    if args.command == "explain":
        return _explain(args.spec, args.artifacts, args.key, args.other_key, args.show_values)
    if args.command == "serve":
        return _serve(args.spec, args.artifacts, args.host, args.port, args.no_auth)
    return _sample(args.out, args.records, args.seed, args.if_missing)


def _spec_file(spec_path: Path | None) -> Path:
    return spec_path.expanduser().resolve() if spec_path else default_spec_path()


def _load_or_report(spec_file: Path) -> Spec | None:
    """The spec, or None once the reason it cannot be used is printed. Checked as the run
    checks it (:func:`checked_spec`), so that a run started here checks the spec against
    its source files once, not twice (a few tenths of a second of CPU at a million
    records)."""
    try:
        return checked_spec(str(spec_file), spec_version(spec_file))
    except SpecError as exc:
        print(f"customer360: {exc}", file=sys.stderr)
        return None


def _run(spec_path: Path | None, artifacts: Path | None) -> int:
    spec_file = _spec_file(spec_path)
    spec = _load_or_report(spec_file)
    if spec is None:
        return 2
    output_dir = artifacts.resolve() if artifacts else artifacts_dir(spec)
    instance = _instance()
    result = materialize_all(
        spec_file,
        output_dir,
        instance,
        tags={"customer360/recorded_by": "cli", "customer360/trigger": "customer360 run"},
    )
    record_run(instance, result.run_id, spec, ArtifactStore(output_dir))
    checks = result.get_asset_check_evaluations()
    failed_checks = [
        f"{c.asset_key.to_user_string()}:{c.check_name}" for c in checks if not c.passed
    ]
    print(_summary(ArtifactStore(output_dir), len(checks), failed_checks))
    if not result.success:
        failures = [event.step_key for event in result.get_step_failure_events()]
        print(
            f"run FAILED in step(s): {', '.join(failures) or 'unknown'} — see the log above",
            file=sys.stderr,
        )
        return 1
    return 1 if failed_checks else 0


def _forget(
    spec_path: Path | None,
    artifacts: Path | None,
    resolved_id: str | None,
    identifier: list[str] | None,
) -> int:
    """Forget the person, then run the graph so every output is rebuilt without them."""
    spec_file = _spec_file(spec_path)
    try:
        spec = load_spec(spec_file)
        store = ArtifactStore(artifacts.resolve() if artifacts else artifacts_dir(spec))
        identifier_type, value = identifier or (None, None)
        # Taking turns with runs: a run rewriting membership meanwhile could add a record
        # of the person after they were selected, or lose the purge.
        with store.exclusive_run(on_wait=lambda: print("a run is writing the outputs; waiting")):
            selected = select_records(spec, store, resolved_id, identifier_type, value)
            figures = forget(
                spec, store, selected, "resolved_id" if resolved_id else identifier_type
            )
    except (SpecError, ForgetError, StorageError) as exc:
        print(f"customer360: {exc}", file=sys.stderr)
        return 2
    print(
        f"forgot {figures['records_forgotten']} record(s) of "
        f"{figures['customers_forgotten']} customer(s); rebuilding every output"
    )
    return _run(spec_file, store.root)


def _explain(
    spec_path: Path | None,
    artifacts: Path | None,
    key: str,
    other_key: str | None,
    show_values: bool,
) -> int:
    """Explain from the published outputs; exit 1 when two records are not one customer,
    so scripts can ask "are these linked?" as they would ask diff "do these differ?"."""
    try:
        if artifacts:
            store = ArtifactStore(artifacts.resolve())
        else:
            spec_file = _spec_file(spec_path)
            store = ArtifactStore(artifacts_dir(load_spec(spec_file)))
        missing = [t for t in ("identity_edges", "membership") if not store.exists(t)]
        if missing:
            raise StorageError(
                f"no {' or '.join(missing)} in {store.root}; run `customer360 run` first"
            )
        edges = pl.concat(
            [store.read(t) for t in ("identity_edges", "match_edges") if store.exists(t)],
            how="diagonal_relaxed",
        )
        membership = store.read("membership", columns=["entity_key", "resolved_id"])
        clusters = store.read("clusters") if store.exists("clusters") else None
        explanation = (
            explain_pair(edges, membership, key, other_key, clusters)
            if other_key
            else explain_record(edges, membership, key, clusters)
        )
    except (SpecError, StorageError, UnknownRecordError) as exc:
        print(f"customer360: {exc}", file=sys.stderr)
        return 2
    print(format_explanation(explanation, reveal=show_values))
    not_linked = isinstance(explanation, PairExplanation) and not explanation.linked
    return 1 if not_linked else 0


def _serve(
    spec_path: Path | None, artifacts: Path | None, host: str, port: int | None, no_auth: bool
) -> int:
    """Check everything the service needs before binding the port."""
    from customer360.service.inbox import InboxBusyError
    from customer360.service.security import api_key_problem
    from customer360.service.server import configure_logging, serve

    spec_file = _spec_file(spec_path)
    spec = _load_or_report(spec_file)
    if spec is None:
        return 2
    if spec.service is None:
        print(
            f"customer360: {spec_file} has no 'service' section; add one naming the inbox "
            "source (see the README, 'Real-time resolve service')",
            file=sys.stderr,
        )
        return 2
    api_key = None if no_auth else os.environ.get(API_KEY_ENV_VAR)
    problem = None if no_auth else api_key_problem(api_key)
    if problem:
        print(f"customer360: {problem}", file=sys.stderr)
        return 2
    configure_logging()
    if no_auth:
        logging.getLogger("customer360.service").warning(
            "authentication is off (--no-auth): anyone who can reach %s:%s can resolve and "
            "read customers",
            host,
            port or spec.service.port,
        )
    try:
        serve(
            spec,
            artifacts.resolve() if artifacts else artifacts_dir(spec),
            host,
            port or spec.service.port,
            api_key,
        )
    except InboxBusyError as exc:
        print(f"customer360: {exc}", file=sys.stderr)
        return 2
    return 0


def _instance() -> dg.DagsterInstance:
    """The persistent instance at $DAGSTER_HOME (created if missing), else a throwaway one."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return dg.DagsterInstance.ephemeral()
    Path(home).mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.get()


def _summary(store: ArtifactStore, check_count: int, failed_checks: list[str]) -> str:
    lines = ["", "customer360 run summary"]
    if store.exists("resolution_metrics"):
        metrics = store.read("resolution_metrics").filter(pl.col("dimension") == "")
        figures = dict(zip(metrics["metric"], metrics["value"], strict=True))
        for label, metric in [
            ("records", "records"),
            ("quarantined rows", "quarantined_rows"),
            ("clusters (customers)", "clusters"),
            ("largest cluster", "largest_cluster"),
            ("identity edges", "edges"),
            ("skipped identifier groups", "skipped_groups"),
        ]:
            if metric in figures:
                lines.append(f"  {label:<28}{int(figures[metric]):>12,}")
        if "pairwise_precision" in figures:
            lines.append(
                f"  {'pairwise precision/recall/F1':<28}{figures['pairwise_precision']:>8.4f} / "
                f"{figures['pairwise_recall']:.4f} / {figures['pairwise_f1']:.4f}"
            )
    passed = check_count - len(failed_checks)
    lines.append(f"  {'checks passed':<28}{passed:>9} / {check_count}")
    lines.extend(f"  FAILED check: {name}" for name in failed_checks)
    lines.append(f"  outputs: {store.root} (Parquet)")
    lines.append(f'  query:   {_duckdb_shell()} {store.database} "from golden_profiles limit 5"')
    return "\n".join(lines)


def _duckdb_shell() -> str:
    """The DuckDB shell installed beside this Python (the duckdb-cli package), if any."""
    beside = Path(sys.executable).parent / "duckdb"
    return str(beside) if beside.is_file() else "duckdb"


def _sample(out: Path, records: int, seed: int, if_missing: bool) -> int:
    from customer360.sample import SOURCE_FILES, generate_sample

    if if_missing and all((out / path).exists() for path in SOURCE_FILES.values()):
        print(f"sample data already in {out}; leaving it as it is")
        return 0
    summary = generate_sample(out, records=records, seed=seed)
    print(f"wrote {sum(summary.records.values()):,} records of {summary.people:,} people to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
