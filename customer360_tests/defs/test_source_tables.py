"""The sources' tables written by the records stage: a source read as one kept batch
shares the kept file instead of writing its rows again, and never when rows were
dropped on the way (a forgotten person's)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from customer360.core.forget import FORGOTTEN_STATE
from customer360.core.storage import ArtifactStore
from customer360_tests.conftest import run_job


def kept_files(store: ArtifactStore, source: str) -> list[Path]:
    return list((store.root / "state" / "batches" / source).glob("*.parquet"))


def test_a_source_table_shares_its_kept_batch_unless_rows_were_forgotten(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    spec_path, artifacts = walkthrough_dir / "customer360.yaml", tmp_path / "artifacts"
    first = run_job(spec_path, artifacts)
    assert first.result.success
    (kept,) = kept_files(first.store, "crm_customers")
    table = first.store.path("crm_customers")
    assert table.stat().st_ino == kept.stat().st_ino
    assert first.table("crm_customers").equals(pl.read_parquet(kept))
    assert "C001" in first.table("crm_customers").get_column("customer_id").to_list()

    first.store.write_state(FORGOTTEN_STATE, pl.DataFrame({"entity_key": ["crm_customers:C001"]}))
    second = run_job(spec_path, artifacts)
    assert second.result.success
    (kept,) = kept_files(second.store, "crm_customers")
    assert table.stat().st_ino != kept.stat().st_ino
    assert "C001" not in second.table("crm_customers").get_column("customer_id").to_list()
    assert second.table("crm_customers").height == pl.read_parquet(kept).height - 1
