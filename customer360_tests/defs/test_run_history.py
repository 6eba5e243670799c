"""run_history: what kind of run each row records."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from customer360.core.spec import load_spec
from customer360.core.storage import ArtifactStore
from customer360.definitions import build_definitions
from customer360.defs.run_history import HISTORY_TABLE, record_run


def test_a_batch_ingested_by_its_job_or_from_the_asset_graph_is_recorded_as_ingest(
    walkthrough_dir: Path, tmp_path: Path
) -> None:
    spec = load_spec(walkthrough_dir / "customer360.yaml")
    artifacts = tmp_path / "artifacts"
    defs = build_definitions(spec, artifacts)
    store = ArtifactStore(artifacts)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("crm_customers_batches", ["crm_customers.csv"])
        by_job = defs.resolve_job_def("ingest_crm_customers").execute_in_process(
            instance=instance, partition_key="crm_customers.csv"
        )
        from_graph = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance,
            partition_key="crm_customers.csv",
            asset_selection=[dg.AssetKey("crm_customers")],
        )
        for run in (by_job, from_graph):
            record_run(instance, run.run_id, spec, store)
    history = store.read(HISTORY_TABLE)
    assert history.select("job", "mode").rows() == [
        ("ingest_crm_customers", "ingest"),
        (from_graph.dagster_run.job_name, "ingest"),
    ]
    assert history.get_column("status").to_list() == ["SUCCESS", "SUCCESS"]
