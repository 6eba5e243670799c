"""Which batch files exist, and which changed since last time — by content, not by name.

A fingerprint per batch (size, modification time, content hash) is kept between looks,
per source and by batch name (the file's path relative to the source's path, as outputs
name it). Only files whose size or modification time moved are hashed again, so looking
at an unchanged folder costs one ``stat`` per file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from customer360.core.readers import batch_name, list_batches
from customer360.core.spec import Source, Spec

HASH_CHUNK = 1 << 20

Fingerprint = list  # [size, mtime_ns, content hash]
Fingerprints = dict[str, dict[str, Fingerprint]]  # source → batch name → fingerprint
Batch = tuple[str, str]  # (source, batch name)


@dataclass(frozen=True)
class BatchChanges:
    added: list[Batch]
    changed: list[Batch]
    removed: list[Batch]

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def describe(self) -> str:
        parts = [
            f"{len(batches)} {label}"
            for label, batches in (
                ("new", self.added),
                ("changed", self.changed),
                ("removed", self.removed),
            )
            if batches
        ]
        return ", ".join(parts) or "no change"


def content_hash(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint_batches(spec: Spec, previous: Fingerprints) -> Fingerprints:
    """Fingerprints of every batch file of every source, reusing unchanged hashes."""
    return {
        source.name: fingerprint_source(spec, source, previous.get(source.name, {}))
        for source in spec.sources
    }


def fingerprint_source(
    spec: Spec, source: Source, known: dict[str, Fingerprint]
) -> dict[str, Fingerprint]:
    """Fingerprints of one source's batch files, by batch name, reusing the ``known``
    hash of a file whose size and modification time did not move."""
    batches = {}
    for path in list_batches(spec, source):
        stat = path.stat()
        name = batch_name(spec, source, path)
        before = known.get(name)
        if before and before[0] == stat.st_size and before[1] == stat.st_mtime_ns:
            batches[name] = before
        else:
            batches[name] = [stat.st_size, stat.st_mtime_ns, content_hash(path)]
    return batches


def compare(previous: Fingerprints, current: Fingerprints) -> BatchChanges:
    """New, changed (different content) and removed batches."""
    before, now = _flatten(previous), _flatten(current)
    return BatchChanges(
        added=sorted(set(now) - set(before)),
        changed=sorted(batch for batch in set(now) & set(before) if now[batch] != before[batch]),
        removed=sorted(set(before) - set(now)),
    )


def _flatten(fingerprints: Fingerprints) -> dict[Batch, str]:
    """(source, batch) → content hash."""
    return {
        (source, name): fingerprint[2]
        for source, batches in fingerprints.items()
        for name, fingerprint in batches.items()
    }
