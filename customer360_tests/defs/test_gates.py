"""A run whose proposed clusters fail a blocking gate publishes nothing."""

from __future__ import annotations

from pathlib import Path

from customer360_tests.conftest import run_job
from customer360_tests.defs.test_dry_run import snapshot

# What a run writes before its clusters are judged: the sources and their records.
INPUT_STAGES = {
    "support_tickets",
    "records",
    "quarantine",
    "identifiers",
    "identity_edges",
    "skipped_groups",
    "traits",
}


def test_a_failed_gate_leaves_every_published_table_and_state_as_it_was(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    spec, artifacts = walkthrough_dir / "customer360.yaml", tmp_path / "artifacts"
    assert run_job(spec, artifacts).result.success
    with (walkthrough_dir / "support_tickets.csv").open("a") as tickets:
        tickets.write("T004,alice@new.com,5550001111,2024-03-04\n")  # bridges two clusters
    spec.write_text(spec.read_text() + "quality:\n  max_cluster_size: 3\n")
    before = snapshot(artifacts)
    published = {name for name in before if not name.startswith("state/")}

    run = run_job(spec, artifacts)

    assert not run.result.success
    assert run.checks()["largest_cluster_within_limit"] is False
    after = snapshot(artifacts)
    # the stages before clustering hold the new input; from clustering on, nothing moved
    changed = {
        name.removesuffix(".parquet") for name in published if not after[name].equals(before[name])
    }
    assert changed <= INPUT_STAGES | {"run_history"}
    assert {"membership", "clusters", "cluster_lineage", "golden_profiles"} <= {
        name.removesuffix(".parquet") for name in published
    }
    assert after["state/resolved_id_registry.parquet"].equals(
        before["state/resolved_id_registry.parquet"]
    )
    failure = next(
        event for event in run.result.all_events if event.event_type_value == "STEP_FAILURE"
    )
    assert "nothing was published" in str(failure.event_specific_data.error.message).lower()
