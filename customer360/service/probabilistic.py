"""Probabilistic scoring of a record against the published graph, as the batch would.

Built with each published graph (when ``service.probabilistic`` is on): the published
records' comparison frame, the batch's blocking rules as an index over it, and a scorer
running the trained model. A record's candidates are the records sharing one of its
blocking keys — at most ``max_candidates``, so that a common surname and birth date
cannot make one request score thousands of pairs — and the matches are those the batch
would turn into edges: scored at or above ``matching.threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from customer360.core.blocking import BlockingIndex
from customer360.core.matching import Model, comparison_frame
from customer360.core.record_scoring import RecordScorer
from customer360.core.spec import Matching
from customer360.core.storage import ArtifactStore

MAX_CANDIDATES = 200


@dataclass(frozen=True)
class ScoredMatch:
    entity_key: str
    resolved_id: str
    probability: float


class ProbabilisticMatcher:
    """One published graph's records, blocked and ready to score; read-only once built."""

    def __init__(
        self,
        store: ArtifactStore,
        matching: Matching,
        model: Model,
        max_candidates: int = MAX_CANDIDATES,
    ) -> None:
        self._matching = matching
        self._max_candidates = max_candidates
        available = set(store.scan("records").collect_schema().names())
        wanted = [a for a in matching.attributes if a in available]
        records = store.read("records", ["entity_key", *wanted]).join(
            store.read("membership", ["entity_key", "resolved_id"]), on="entity_key"
        )
        self._resolved_ids = records.get_column("resolved_id")
        frame = comparison_frame(records, matching)
        self._index = BlockingIndex(frame, matching.blocking)
        self._scorer = RecordScorer(frame, model)

    def matches(self, entity_key: str, attributes: dict[str, str | None]) -> list[ScoredMatch]:
        """The published records the record matches at or above the threshold, most
        probable first."""
        values = {name: [attributes.get(name)] for name in self._matching.attributes}
        record = comparison_frame(
            pl.DataFrame({"entity_key": [entity_key], **values}), self._matching
        )
        rows = self._index.candidates(record, self._max_candidates)
        if not len(rows):
            return []
        candidates = self._scorer.frame[rows]
        scored = self._scorer.score(self._scorer.with_frequencies(record), candidates)
        above = scored.filter(pl.col("match_probability") >= self._matching.threshold)
        customers = dict(
            zip(
                candidates.get_column("unique_id").to_list(),
                self._resolved_ids.gather(rows).to_list(),
                strict=True,
            )
        )
        return [
            ScoredMatch(key, customers[key], probability) for key, probability in above.iter_rows()
        ]
