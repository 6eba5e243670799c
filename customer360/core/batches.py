"""Which batch files exist, and which changed since last time — by content, not by name.

A fingerprint per file (size, modification time, content hash) is kept between looks.
Only files whose size or modification time moved are hashed again, so looking at an
unchanged folder costs one ``stat`` per file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from customer360.core.readers import list_batches
from customer360.core.spec import Spec

HASH_CHUNK = 1 << 20

Fingerprints = dict[str, list]  # path → [size, mtime_ns, content hash]


@dataclass(frozen=True)
class BatchChanges:
    added: list[str]
    changed: list[str]
    removed: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def describe(self) -> str:
        parts = [
            f"{len(names)} {label}"
            for label, names in (
                ("new", self.added),
                ("changed", self.changed),
                ("removed", self.removed),
            )
            if names
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
    current: Fingerprints = {}
    for source in spec.sources:
        for path in list_batches(spec, source):
            stat = path.stat()
            key = str(path)
            known = previous.get(key)
            if known and known[0] == stat.st_size and known[1] == stat.st_mtime_ns:
                current[key] = known
            else:
                current[key] = [stat.st_size, stat.st_mtime_ns, content_hash(path)]
    return current


def compare(previous: Fingerprints, current: Fingerprints) -> BatchChanges:
    """New, changed (different content) and removed batch files."""
    return BatchChanges(
        added=sorted(set(current) - set(previous)),
        changed=sorted(
            path for path in set(current) & set(previous) if current[path][2] != previous[path][2]
        ),
        removed=sorted(set(previous) - set(current)),
    )
