"""The IO manager frees what earlier steps left in reference cycles, once per step, and
keeps the objects of a run's start out of those collections only while the run lasts."""

import gc
import weakref

from customer360.defs.io_manager import _release_earlier_steps_data, _start_up_frozen


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
