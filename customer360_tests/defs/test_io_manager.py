"""The IO manager frees what earlier steps left in reference cycles, once per step, and
keeps the objects of a run's start out of those collections only while the run lasts;
a lazy output is streamed into its table."""

import gc
import weakref

import dagster as dg
import polars as pl

from customer360.core.storage import ArtifactStore
from customer360.defs.io_manager import (
    ParquetDuckDBIOManager,
    RunLock,
    _release_earlier_steps_data,
    _start_up_frozen,
)


class Output:
    """Stands for a step's output: a frame Dagster's caught exceptions keep in a cycle."""


def output_in_a_cycle() -> weakref.ref:
    output, holder = Output(), {}
    holder["cycle"] = holder  # unreachable once we return, but only a collection frees it
    holder["output"] = output
    return weakref.ref(output)


def test_a_new_step_frees_what_earlier_steps_left_in_cycles():
    gc.disable()  # no automatic collection may free it for us
    try:
        _release_earlier_steps_data("first step")
        left_behind = output_in_a_cycle()
        assert left_behind() is not None
        _release_earlier_steps_data("first step")  # a second input of the same step
        assert left_behind() is not None
        _release_earlier_steps_data("second step")
        assert left_behind() is None
    finally:
        gc.enable()


def test_the_objects_of_a_runs_start_are_frozen_only_while_it_runs():
    before = gc.get_freeze_count()
    with _start_up_frozen():
        assert gc.get_freeze_count() > before
    assert gc.get_freeze_count() == 0


def test_a_lazy_output_is_streamed_into_its_table_with_its_row_count(tmp_path):
    @dg.asset
    def observations() -> pl.LazyFrame:
        return pl.LazyFrame({"entity_key": ["crm:1", "crm:2", "shop:3"]}).with_row_index("row")

    artifacts = str(tmp_path / "artifacts")
    io_manager = ParquetDuckDBIOManager(
        artifacts_dir=artifacts, run_lock=RunLock(artifacts_dir=artifacts)
    )
    result = dg.materialize(
        [observations],
        instance=dg.DagsterInstance.ephemeral(),
        resources={"io_manager": io_manager},
    )
    assert result.success
    stored = ArtifactStore(artifacts).read("observations")
    assert stored.get_column("entity_key").to_list() == ["crm:1", "crm:2", "shop:3"]
    metadata = result.asset_materializations_for_node("observations")[0].metadata
    assert metadata["dagster/row_count"].value == 3
    schema = metadata["dagster/column_schema"].value
    assert [(c.name, c.type) for c in schema.columns] == [
        ("row", "UInt32"),
        ("entity_key", "String"),
    ]
