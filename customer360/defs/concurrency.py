"""How runs that write the same artifacts folder take turns through Dagster's run queue.

Every job of the project tags its runs with ``customer360/writes: <artifacts folder>``;
an instance whose run queue limits that tag to one run per value (``dagster_instance.yaml``,
which ``make dev`` installs) keeps a second run *queued* until the first ends, so the
UI shows it waiting instead of *started*. The run lock of the IO manager stays the
backstop for runs that never pass through the queue (``customer360 run`` executes in
its own process) and for instances without the limit.
"""

from pathlib import Path

WRITES_TAG = "customer360/writes"


def writes_tags(artifacts: Path | str) -> dict[str, str]:
    """The run tags of a job that writes to ``artifacts`` (resolved, so every way of
    naming the folder gives the same tag value and so the same turn in the queue)."""
    return {WRITES_TAG: str(Path(artifacts).expanduser().resolve())}
