"""Running the main job in this process without holding every asset's output in memory.

``execute_in_process`` keeps each step's output for the result object — at scale, the
whole graph's tables at once. ``execute_job`` over a reconstructable job does not, so
each step's frames are freed once the step ends (what Dagster's event log leaves of them
in reference cycles, before the next step loads its inputs: see
:mod:`customer360.defs.io_manager`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import dagster as dg

from customer360.core.spec import Spec, load_spec
from customer360.definitions import JOB_NAME, build_definitions, match_model_config


def spec_version(spec_path: Path) -> str:
    """What identifies an edit of the spec file: its size and modification time (empty
    for a missing file, which loading the spec then reports)."""
    try:
        stat = spec_path.stat()
    except FileNotFoundError:
        return ""
    return f"{stat.st_size}:{stat.st_mtime_ns}"


@lru_cache(maxsize=8)
def checked_spec(spec_path: str, spec_version: str) -> Spec:
    """The spec, checked against its source files once per ``spec_version``: a run needs
    it for its config and again for its job, and checking opens every source file."""
    return load_spec(spec_path)


@lru_cache(maxsize=8)
def job_for(spec_path: str, artifacts: str, spec_version: str) -> dg.JobDefinition:
    """The main job of a spec writing to ``artifacts`` (rebuilt by Dagster by name).

    Launching one run rebuilds the job three times (to plan, to check the arguments, to
    execute); each build loads and checks the spec against its source files, so builds
    are kept by these arguments. ``spec_version`` (the spec file's size and modification
    time) makes an edited spec build a new job in a long process.
    """
    spec = checked_spec(spec_path, spec_version)
    return build_definitions(spec, Path(artifacts)).resolve_job_def(JOB_NAME)


def materialize_all(
    spec_path: Path,
    artifacts: Path,
    instance: dg.DagsterInstance,
    tags: dict[str, str] | None = None,
    log_level: str = "INFO",
) -> dg.JobExecutionResult:
    """Run the main job for a spec, in this process, into ``artifacts``."""
    version = spec_version(spec_path)
    job = dg.build_reconstructable_job(
        __name__, job_for.__name__, reconstructable_args=(str(spec_path), str(artifacts), version)
    )
    return dg.execute_job(
        job,
        instance=instance,
        tags=tags,
        run_config={
            "loggers": {"console": {"config": {"log_level": log_level}}},
            **match_model_config(checked_spec(str(spec_path), version)),
        },
    )
