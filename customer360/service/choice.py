"""Which customer a record belongs to, among those its identifier values point at.

The resolver finds the candidates — customers already holding one of the record's
linkable values, in the published graph or among records accepted since — and a chooser
decides. The default, :func:`choose_by_exact_identifiers`, follows what the next batch
run will do with the record: one candidate is the record's customer; several mean the
record links customers the batch will merge, and a merge keeps the oldest id (first
issued), so that one is chosen and the others are reported as conflicts, with the
confidence lowered to the share of the record's links that point at the choice.

Unless the batch would cut the record away again: a customer whose records hold a first
name or birth date the record's cannot be one person's with (the split of over-merged
clusters, ``splitting.conflicts``, by the batch's own rule) is marked ``conflicting`` by
the resolver, and such customers are passed over for the others — the ones the split
can leave the record with. When every candidate conflicts, the oldest is chosen as
before. Passed-over customers are still reported as conflicts and still count among the
record's links. A link is an identifier type reaching a customer: an email reaching A
and a phone reaching B are two links, one for A; a guarded phone whose agreeing records
belong to A and B is also two. Customers are never merged in real time.

Which of the others depends on whether they would stay merged. Usually they would, and
the merge keeps the oldest. But customers the split cut apart because *their* records
conflict with each other (``splitting.split_verdict``) are cut apart again after
the record merges them, at the minimum cut, which leaves the record with the side its
links are stronger to. The resolver then gives each of their candidates the
``strength`` the split gives the link — ``splitting.link_strength``, log2(records /
records sharing the value), in hundredths of a bit — and the customer with the most in
total is chosen: a guarded household phone reaching two of A's records and one of B's
goes with A, whichever is older. Equal totals go to the oldest, a deterministic rule of
the service's own: on a tie the cut leaves the record away from the holders of the
value the merged cluster holds most often (the first by attribute and value among
equals), and that cluster holds records and links the service does not see.

A record that links to nobody by identifiers may still be the same person as a published
record by name, birth date and address: with probabilistic scoring on, the records it
shares a blocking key with are scored by the batch's model, and
:func:`choose_by_match_probability` picks among the customers scored at or above the
threshold the way the batch will, since its match edges merge them all: the oldest.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from customer360.service.mapping import Observation


@dataclass(frozen=True)
class Candidate:
    """A customer one of the record's identifier values points at."""

    resolved_id: str
    identifier_type: str
    entity_key: str  # the record holding the value
    issued_seq: int | None  # the registry's order; None: handed out in real time
    probability: float = 1.0  # the match probability, for a probabilistic candidate
    conflicting: bool = False  # its customer's records conflict with the record's (split)
    group_size: int = 1  # records its value links in the next run, the record included
    strength: int | None = None  # the split's weight of the link, when it will divide them


@dataclass(frozen=True)
class Conflict:
    resolved_id: str
    matched_on: list[str]


@dataclass(frozen=True)
class Choice:
    resolved_id: str | None  # None: nobody matches, the record is a new customer
    matched_on: list[str]
    matched_entity_key: str | None
    confidence: float
    conflicts: list[Conflict]


Chooser = Callable[[Observation, list[Candidate]], Choice]
NEW_CUSTOMER = Choice(None, [], None, 1.0, [])


def choose_by_exact_identifiers(observation: Observation, candidates: list[Candidate]) -> Choice:
    """The candidate customer the record does not conflict with that its links are
    strongest to, the oldest among equals (the oldest of all when it conflicts with every
    one); the others are conflicts. Without strengths — customers that stay merged —
    that is the oldest."""
    if not candidates:
        return NEW_CUSTOMER
    by_customer: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        by_customer.setdefault(candidate.resolved_id, []).append(candidate)
    ranked = sorted(by_customer.values(), key=lambda group: _issue_order(group[0]))
    compatible = [group for group in ranked if not group[0].conflicting] or ranked
    chosen = max(compatible, key=_total_strength)  # the first of equals: the oldest
    others = [group for group in ranked if group is not chosen]
    links = sum(len(_types(group)) for group in ranked)
    supporting = _types(chosen)
    return Choice(
        resolved_id=chosen[0].resolved_id,
        matched_on=supporting,
        matched_entity_key=chosen[0].entity_key,
        confidence=round(len(supporting) / links, 4),
        conflicts=[Conflict(group[0].resolved_id, _types(group)) for group in others],
    )


def choose_by_match_probability(candidates: list[Candidate]) -> Choice:
    """The oldest of the scored customers; its best-scoring record is the match and its
    probability the confidence; the other customers are conflicts."""
    if not candidates:
        return NEW_CUSTOMER
    best: dict[str, Candidate] = {}
    for candidate in candidates:
        known = best.get(candidate.resolved_id)
        if known is None or candidate.probability > known.probability:
            best[candidate.resolved_id] = candidate
    chosen, *others = sorted(best.values(), key=_issue_order)
    return Choice(
        resolved_id=chosen.resolved_id,
        matched_on=[chosen.identifier_type],
        matched_entity_key=chosen.entity_key,
        confidence=round(chosen.probability, 4),
        conflicts=[Conflict(c.resolved_id, [c.identifier_type]) for c in others],
    )


def _issue_order(candidate: Candidate) -> tuple[float, str]:
    """Oldest first, as the batch's merge rule orders ids: by issue order, ids handed out
    in real time (registered by the next run, together) after all others, then by id."""
    seq = math.inf if candidate.issued_seq is None else candidate.issued_seq
    return (seq, candidate.resolved_id)


def _total_strength(group: list[Candidate]) -> int:
    """What the minimum cut would have to remove to part the record from the customer."""
    return sum(candidate.strength or 0 for candidate in group)


def _types(group: list[Candidate]) -> list[str]:
    return list(dict.fromkeys(c.identifier_type for c in group))
