"""Which records are as they were when a profile stage last ran, told by their batches.

A record's row depends on nothing but its batch's content, the spec, the code and the
forgotten keys (see :mod:`customer360.core.incremental_records`), whose *records basis*
lists every source's batches with their content hashes, under a fingerprint of the rest.
A stage that keeps the records basis it ran over can later tell, without reading a
single value, which records are unchanged since: those of a batch it saw, with the same
content, in a source read the same way, under the same fingerprint.
"""

from __future__ import annotations

import polars as pl


def unchanged_batches(before: dict, now: dict) -> dict[str, list[str]] | None:
    """Per source, the batches of records basis ``before`` whose records are unchanged in
    ``now``; None when the two were made under other fingerprints (every record may
    have changed)."""
    if before.get("fingerprint") != now.get("fingerprint"):
        return None
    batches = {}
    for name, source in before["sources"].items():
        current = now["sources"].get(name)
        if current is None or current["columns"] != source["columns"]:
            continue
        if all(
            batch in current["batches"] and current["batches"][batch][2] == fingerprint[2]
            for batch, fingerprint in source["batches"].items()
        ):
            batches[name] = list(source["batches"])
    return batches


def in_batches(batches: dict[str, list[str]]) -> pl.Expr:
    """Whether a record (by its ``source`` and ``batch``) is of one of ``batches``."""
    found = pl.lit(False)
    for source, names in batches.items():
        found = found | ((pl.col("source") == source) & pl.col("batch").is_in(names))
    return found
