"""Privacy through the real assets: hashed identifiers never leave ingestion in plain text,
and personal values stay out of logs and run metadata unless the spec shows them."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from customer360.cli import main
from customer360.core.spec import load_spec
from customer360.definitions import build_definitions
from customer360.defs.preview import PREVIEW_JOB
from customer360_tests.conftest import JobRun, run_job, sample_world
from customer360_tests.defs.test_walkthrough import EXPECTED_RESOLVED_IDS

SALT = "walkthrough-salt-0123456789"
# Every identifier of the walkthrough in plain text: as in the files and normalized.
WALKTHROUGH_IDENTIFIERS = [
    "john@acme.com",
    "JOHN@ACME.COM",
    "jane@example.org",
    "bob@test.com",
    "alice@new.com",
    "new@person.com",
    "acme.com",
    "5551234567",
    "5559876543",
    "5550001111",
    "5552223333",
    "+15551234567",
]

ORGANIZATIONS_BY_EMAIL_DOMAIN = (
    "organizations:\n  email_identifier: email\n  company_attribute: null\n"
)


def reference_hash(value: str) -> str:
    return hmac.new(SALT.encode(), value.encode(), hashlib.sha256).hexdigest()


def edit_spec(spec: Path, old: str, new: str) -> Path:
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new))
    return spec


def hash_email_and_phone(spec: Path) -> Path:
    edit_spec(spec, "    normalizer: email\n", "    normalizer: email\n    hash: true\n")
    return edit_spec(spec, "    normalizer: phone\n", "    normalizer: phone\n    hash: true\n")


def stored_strings(instance: dg.DagsterInstance, run_id: str) -> Iterator[str]:
    """Every string the instance keeps of a run's events: log messages, metadata of
    materializations and checks, error texts — read back from its serialized form."""
    for entry in instance.all_logs(run_id):
        yield from _strings(json.loads(dg.serialize_value(entry)))


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for child in node.values():
            yield from _strings(child)
    elif isinstance(node, list):
        for child in node:
            yield from _strings(child)


def written_strings(artifacts: Path) -> Iterator[str]:
    """Every value of every table and state file under the artifacts folder."""
    for parquet in artifacts.rglob("*.parquet"):
        yield f"{parquet.name}: {pl.read_parquet(parquet).rows()}"


def event_metadata(run: JobRun, asset: str) -> dict[str, dg.MetadataValue]:
    events = run.result.get_asset_materialization_events()
    return next(
        event.step_materialization_data.materialization.metadata
        for event in events
        if event.asset_key.to_user_string() == asset
    )


def test_hashed_identifiers_reach_no_table_state_log_or_metadata_in_plain_text(
    walkthrough_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTOMER360_SALT", SALT)
    spec = hash_email_and_phone(walkthrough_dir / "customer360.yaml")
    # organizations from email domains would name acme.com; a hashed email has none
    spec.write_text(spec.read_text() + ORGANIZATIONS_BY_EMAIL_DOMAIN)
    run = run_job(spec, tmp_path / "artifacts")

    assert run.result.success and all(run.checks().values())
    assert run.table("organizations").is_empty()
    membership = run.table("membership").select("entity_key", "resolved_id")
    assert dict(membership.iter_rows()) == EXPECTED_RESOLVED_IDS  # hashing links the same
    john = run.table("golden_profiles").filter(pl.col("resolved_id") == "crm_customers:C001")
    assert john.get_column("email_primary").item() == reference_hash("john@acme.com")
    assert john.get_column("phone_primary").item() == reference_hash("+15551234567")
    assert john.get_column("first_name").item() == "John"  # attributes are not hashed

    texts = [
        *written_strings(tmp_path / "artifacts"),
        *stored_strings(run.instance, run.result.run_id),
        (tmp_path / "artifacts" / "customer360.duckdb").read_bytes().decode("latin-1"),
    ]
    leaks = {value for value in [*WALKTHROUGH_IDENTIFIERS, SALT] for text in texts if value in text}
    assert not leaks


def test_switching_hashing_on_rewrites_the_history_instead_of_keeping_plain_versions(
    walkthrough_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, artifacts = walkthrough_dir / "customer360.yaml", tmp_path / "artifacts"
    assert run_job(spec, artifacts).result.success
    assert "john@acme.com" in str(
        pl.read_parquet(artifacts / "golden_profile_history.parquet").rows()
    )

    monkeypatch.setenv("CUSTOMER360_SALT", SALT)
    run = run_job(hash_email_and_phone(spec), artifacts)
    assert run.result.success
    history = run.table("golden_profile_history")
    assert history.height == 5  # the same five versions, now hashed: none reads as changed
    john = history.filter(pl.col("resolved_id") == "crm_customers:C001")
    assert john.get_column("email_primary").item() == reference_hash("john@acme.com")
    texts = list(written_strings(artifacts))
    assert not {value for value in WALKTHROUGH_IDENTIFIERS for text in texts if value in text}


def test_forget_finds_a_person_by_a_hashed_email(
    walkthrough_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CUSTOMER360_SALT", SALT)
    spec = hash_email_and_phone(walkthrough_dir / "customer360.yaml")
    args = ["--spec", str(spec), "--artifacts", str(tmp_path / "out")]
    assert main(["run", *args]) == 0
    assert main(["forget", *args, "--identifier", "email", " JOHN@acme.com"]) == 0
    assert "forgot 4 record(s) of 1 customer(s)" in capsys.readouterr().out
    membership = pl.read_parquet(tmp_path / "out" / "membership.parquet")
    assert "crm_customers:C001" not in membership.get_column("resolved_id").to_list()


@pytest.mark.parametrize("shown", [False, True], ids=["hidden", "shown"])
def test_the_golden_profile_preview_shows_personal_values_only_when_asked(
    walkthrough_dir: Path, tmp_path: Path, shown: bool
) -> None:
    spec = walkthrough_dir / "customer360.yaml"
    if shown:
        spec.write_text("settings:\n  show_personal_data: true\n" + spec.read_text())
    run = run_job(spec, tmp_path / "artifacts")

    preview = event_metadata(run, "golden_profiles")["preview"].value
    assert "crm_customers:C001" in preview  # resolved ids are not personal
    for personal in ("john@acme.com", "John", "+15551234567"):
        assert (personal in preview) is shown, personal
    assert ("Withheld as personal" in preview) is not shown


@pytest.fixture(scope="module")
def sample_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_world(tmp_path_factory.mktemp("private_world"), records=2_000, seed=5)


def test_no_personal_value_of_the_sample_reaches_logs_or_run_metadata(
    sample_spec: Path, tmp_path: Path
) -> None:
    spec = load_spec(sample_spec)
    assert not spec.settings.show_personal_data  # the default
    artifacts = tmp_path / "artifacts"
    run = run_job(sample_spec, artifacts)
    assert run.result.success
    dry_run = (
        build_definitions(spec, artifacts)
        .resolve_job_def(PREVIEW_JOB)
        .execute_in_process(instance=run.instance)
    )
    assert dry_run.success

    personal = set()
    records = run.table("records")
    for column in [*spec.identifier_types, *spec.attribute_names]:
        personal |= set(records.get_column(column).drop_nulls())
    personal |= set(run.table("identifiers").get_column("value").drop_nulls())
    organizations = run.table("organizations")
    personal |= set(organizations.get_column("name").drop_nulls())
    personal |= set(organizations.get_column("domains").explode().drop_nulls())
    assert len(personal) > 3_000  # emails, phones, names, addresses, companies, titles …

    stored = "\n".join(
        text
        for run_id in (run.result.run_id, dry_run.run_id)
        for text in stored_strings(run.instance, run_id)
    )
    # Whole values only: short names such as 'Pat' are parts of ordinary words ('path').
    # Two-letter values (state codes, noisy names cut short: 'At') are ordinary words of
    # the graph's own descriptions, so they are left out of the search.
    leaks = [
        value
        for value in personal
        if len(value) > 2 and re.search(rf"(?<![\w@.+-]){re.escape(value)}(?![\w@.-])", stored)
    ]
    assert not leaks
