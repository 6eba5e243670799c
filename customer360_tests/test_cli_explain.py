"""`customer360 explain` on the walkthrough's published outputs: why records are linked."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from customer360.cli import main
from customer360_tests.conftest import FIXTURES, run_job


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The walkthrough, resolved once, its outputs in artifacts/ beside the spec."""
    folder = tmp_path_factory.mktemp("explain") / "walkthrough"
    shutil.copytree(FIXTURES / "walkthrough", folder)
    assert run_job(folder / "customer360.yaml", folder / "artifacts").result.success
    return folder / "customer360.yaml"


@pytest.fixture
def membership(spec: Path) -> pl.DataFrame:
    return pl.read_parquet(spec.parent / "artifacts" / "membership.parquet")


def explain(spec: Path, *args: str) -> list[str]:
    return ["explain", *args, "--artifacts", str(spec.parent / "artifacts")]


def test_two_records_of_one_customer_are_joined_by_links_with_masked_values(
    spec: Path, membership: pl.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    john = membership.filter(pl.col("resolved_id") == "crm_customers:C001")
    first, last = john.get_column("entity_key").sort().gather([0, -1]).to_list()
    assert main(explain(spec, first, last)) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"{first} and {last} are the same customer (resolved_id crm_customers:C001), joined by"
    )
    # Parallel email and phone edges join these two: the email, first by rule, is named.
    assert "—email_exact—" in out and "shared email j***@acme.com" in out
    assert "john@acme.com" not in out and "5551234567" not in out

    assert main([*explain(spec, first, last), "--show-values"]) == 0
    assert "john@acme.com" in capsys.readouterr().out


def test_records_of_different_customers_are_not_linked_and_exit_1(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(explain(spec, "ecom_orders:O004", "support_tickets:T003")) == 1
    assert capsys.readouterr().out == (
        "ecom_orders:O004 and support_tickets:T003 are not linked: ecom_orders:O004 is "
        "customer ecom_orders:O004 (1 record), support_tickets:T003 is customer "
        "support_tickets:T003 (1 record). No chain of shared identifiers or probable matches "
        "joins them.\n"
    )


def test_one_record_shows_every_member_of_its_customer(
    spec: Path,
    membership: pl.DataFrame,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CUSTOMER360_ARTIFACTS", raising=False)  # found beside the spec
    assert main(["explain", "ecom_orders:O001", "--spec", str(spec)]) == 0
    out = capsys.readouterr().out
    john = membership.filter(pl.col("resolved_id") == "crm_customers:C001")
    assert out.startswith(
        f"ecom_orders:O001 is one of {john.height} records of customer crm_customers:C001"
    )
    for key in john.get_column("entity_key"):
        assert key in out


def test_an_unknown_key_is_an_error_that_suggests_the_full_key(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(explain(spec, "C001")) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no record with key 'C001'" in captured.err
    assert "did you mean 'crm_customers:C001'?" in captured.err


def test_without_published_outputs_it_says_to_run_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "crm_customers:C001", "--artifacts", str(tmp_path)]) == 2
    assert "run `customer360 run` first" in capsys.readouterr().err
