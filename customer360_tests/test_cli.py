"""The `customer360` command: a run prints its summary; a bad spec stops before any work."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from customer360 import cli, runner
from customer360.cli import main
from customer360.core.spec import load_spec


def test_run_prints_the_summary_and_writes_the_outputs(
    walkthrough_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked = []
    for module in (cli, runner):
        monkeypatch.setattr(
            module, "load_spec", lambda p, **kw: checked.append(p) or load_spec(p, **kw)
        )
    artifacts = tmp_path / "out"
    code = main(
        ["run", "--spec", str(walkthrough_dir / "customer360.yaml"), "--artifacts", str(artifacts)]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "records" in out and "10" in out
    assert "clusters (customers)" in out
    assert "checks passed" in out and "11 / 11" in out
    assert str(artifacts) in out
    assert (artifacts / "golden_profiles.parquet").is_file()
    assert len(checked) == 1  # the command and the run share one check of the spec


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda s: s.replace("path: ecom_orders.csv", "path: missing.csv"), "no csv file at"),
        (
            lambda s: s.replace(
                "{email: customer_email, loyalty_id: loyalty_id}",
                "{email: customer_email, loyaltyid: loyalty_id}",
            ),
            "sources[1] (ecom_orders).identifiers.loyaltyid: unknown identifier type",
        ),
        (
            lambda s: s.replace(
                "{email: contact_email, phone: contact_phone}",
                "{email: contact_mail, phone: contact_phone}",
            ),
            "identifiers.email: unknown column 'contact_mail' in support_tickets.csv",
        ),
    ],
    ids=["missing file", "unknown identifier type", "unknown column"],
)
def test_a_bad_spec_fails_fast_with_one_message_naming_it(
    walkthrough_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit, expected
) -> None:
    spec = walkthrough_dir / "customer360.yaml"
    spec.write_text(edit(spec.read_text()))
    code = main(["run", "--spec", str(spec), "--artifacts", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert str(spec) in err
    assert expected in err
    assert not (tmp_path / "out").exists()


def test_every_run_lands_in_run_history_failures_with_their_error(
    walkthrough_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, artifacts = walkthrough_dir / "customer360.yaml", tmp_path / "out"
    assert main(["run", "--spec", str(spec), "--artifacts", str(artifacts)]) == 0
    spec.write_text(spec.read_text() + "quality:\n  max_cluster_size: 2\n")
    assert main(["run", "--spec", str(spec), "--artifacts", str(artifacts)]) == 1
    capsys.readouterr()

    history = pl.read_parquet(artifacts / "run_history.parquet")
    assert history.get_column("status").to_list() == ["SUCCESS", "FAILED"]
    # the second run read its unchanged batches from what the first one kept
    assert history.get_column("mode").to_list() == ["full", "incremental"]
    first, failed = history.row(0, named=True), history.row(1, named=True)
    assert first["rows_in"] == 10 and first["records"] == 10 and first["error"] is None
    assert first["ended_at"] >= first["started_at"]
    assert "cluster_records" in json.loads(first["stage_seconds"])
    assert "largest_cluster_within_limit" in failed["error"]


def test_forget_removes_a_person_from_every_output_and_keeps_them_out(
    walkthrough_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, artifacts = walkthrough_dir / "customer360.yaml", tmp_path / "out"
    args = ["--spec", str(spec), "--artifacts", str(artifacts)]
    assert main(["run", *args]) == 0
    assert main(["forget", *args, "--identifier", "email", " JOHN@acme.com"]) == 0
    assert "forgot 4 record(s) of 1 customer(s)" in capsys.readouterr().out
    assert main(["run", *args]) == 0  # a later run keeps him out

    traces = ["john@acme.com", "JOHN@ACME.COM", "John", "5551234567", "C001", "O001", "T001"]
    for parquet in artifacts.glob("*.parquet"):  # every published table
        text = duckdb.sql(f"select * from read_parquet('{parquet}')").fetchall().__str__()
        assert not [t for t in traces if t in text], parquet.name
    history = pl.read_parquet(artifacts / "state" / "history_membership.parquet")
    assert not history.get_column("entity_key").str.contains("C001|O00[12]|T001").any()
    audit = pl.read_parquet(artifacts / "forget_audit.parquet").row(0, named=True)
    assert (audit["selector"], audit["records_forgotten"], audit["customers_forgotten"]) == (
        "email",
        4,
        1,
    )


def test_forget_of_nobody_changes_nothing(
    walkthrough_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, artifacts = walkthrough_dir / "customer360.yaml", tmp_path / "out"
    args = ["--spec", str(spec), "--artifacts", str(artifacts)]
    assert main(["run", *args]) == 0
    assert main(["forget", *args, "--resolved-id", "crm_customers:NOBODY"]) == 2
    assert "no customer matches" in capsys.readouterr().err
    assert not (artifacts / "forget_audit.parquet").exists()


def test_serve_refuses_to_start_without_an_api_key_or_a_service_section(
    walkthrough_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = walkthrough_dir / "customer360.yaml"
    monkeypatch.delenv("CUSTOMER360_API_KEY", raising=False)
    assert main(["serve", "--spec", str(spec)]) == 2
    assert "has no 'service' section" in capsys.readouterr().err

    spec.write_text(
        spec.read_text()
        + "  - {name: signups, path: signups/, format: ndjson, key: k, trust: 4,"
        + " identifiers: {email: email}}\nservice: {inbox_source: signups}\n"
    )
    assert main(["serve", "--spec", str(spec)]) == 2
    assert "set CUSTOMER360_API_KEY to a long random key" in capsys.readouterr().err
    monkeypatch.setenv("CUSTOMER360_API_KEY", "short")
    assert main(["serve", "--spec", str(spec)]) == 2
    assert "shorter than 16 characters" in capsys.readouterr().err
    assert not (walkthrough_dir / "signups").exists()  # nothing was started
