"""Resolving one record in real time against the published graph and the records the
service accepted since, so that the answer is what the next batch run will agree with.

A record is identified by (caller source, external_id); its entity_key is the one the
batch will give its inbox line. Resolving it:

1. a record seen before is a replay: the same resolved_id again (its current one, if a
   run has folded it in and moved it), ``is_new`` false — unless its data differs, which
   is refused rather than silently ignored;
2. its identifiers are mapped, normalized (and hashed, for hashed types) and classified
   by the batch's own code; a linkable value is used only if the record joining its
   group keeps the group within ``max_group_size`` (counting the graph's records and
   those accepted since), because otherwise the batch links nothing through it;
3. through each value the record reaches what the batch's edges will join it to: the
   group's anchor — or, for a type with a corroboration guard whose group (with the
   record) names conflicting people, only the records whose names agree with the
   record's (:func:`customer360.core.edges.guarded_partners`, the batch's rule);
4. the customers so reached are the candidates; when they are several, those whose
   records the split of over-merged clusters would cut the record away from are marked
   (:func:`customer360.core.splitting.split_verdict`, the batch's rule) — and,
   when the others would be cut apart again, each link weighed as the split's minimum
   cut weighs it — and a chooser picks one (see :mod:`customer360.service.choice`);
   with none, the record is a new customer and gets the id the batch would give it —
   its entity_key, made unique against every id ever issued;
5. with ``service.probabilistic`` on, a record that links to nobody by identifiers is
   scored by the batch's trained model against the published records sharing one of its
   blocking keys (:mod:`customer360.service.probabilistic`); a match at or above the
   threshold makes it that customer's (``matched_on: ["probabilistic"]``, the match
   probability as confidence), as the batch's match edges will;
6. the line, with the assigned id, is appended durably to the inbox before the answer.

Records accepted since the last published graph are kept in memory ("pending") with
their values, so that a second sign-up with the same email finds the first one. When a
new graph is published the index is rebuilt in the background, swapped in at once, and
whatever the graph now holds stops being pending.

When a person is forgotten (``customer360 forget`` adds their records to the suppression
list), the service lets go of them within a tick: their accepted records leave its
memory and its inbox files, their customers stop matching and are no longer shown, and
their (source, external_id) pairs are refused from then on — the batch would drop them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import polars as pl

from customer360.core.edges import guarded_partners
from customer360.core.forget import FORGOTTEN_STATE, suppressed_keys
from customer360.core.inbox import (
    ASSIGNED_ID_COLUMN,
    DATA_HASH_COLUMN,
    drop_inbox_lines,
    entity_key,
    inbox_source,
    read_inbox,
    record_key,
)
from customer360.core.matching import MATCH_RULE, reusable_model
from customer360.core.readers import list_batches
from customer360.core.spec import Spec
from customer360.core.splitting import conflict_connection, link_strength, split_verdict
from customer360.core.stable_ids import unique_id
from customer360.core.storage import ArtifactStore
from customer360.service.choice import (
    Candidate,
    Choice,
    Chooser,
    Conflict,
    choose_by_exact_identifiers,
    choose_by_match_probability,
)
from customer360.service.graph import GraphIndex, GroupMember, file_stamp, graph_fingerprint
from customer360.service.inbox import InboxWriter
from customer360.service.mapping import Observation, ObservedIdentifier, RecordMapper
from customer360.service.probabilistic import ProbabilisticMatcher

log = logging.getLogger(__name__)

# matched_on of a replay: the record was recognised by its own (source, external_id)
SOURCE_RECORD = "source_record"


class NotReadyError(RuntimeError):
    """No published graph to resolve against yet."""


class ReplayConflictError(ValueError):
    """The (source, external_id) was accepted before with different data."""


class ForgottenRecordError(ValueError):
    """The (source, external_id) belongs to a person who asked to be forgotten."""


@dataclass(frozen=True)
class Resolution:
    resolved_id: str
    is_new: bool
    matched_on: list[str]
    matched_entity_key: str | None
    confidence: float
    conflicts: list[Conflict]
    profile: dict[str, Any] | None


@dataclass(frozen=True)
class LookupMatch:
    identifier_type: str
    status: str  # linkable, guarded, oversize, inactive, invalid or excluded
    resolved_id: str | None


@dataclass(frozen=True)
class CustomerView:
    resolved_id: str
    status: str  # active, pending (known only to the service so far) or retired
    profile: dict[str, Any] | None
    members: list[dict[str, Any]]
    lineage: list[dict[str, Any]]
    superseded_by: list[str]


@dataclass
class _Accepted:
    """A record the service accepted: what it answered, and what it links on."""

    resolved_id: str
    data_hash: str
    values: tuple[tuple[str, str], ...]  # (identifier type, normalized linkable value)
    names: dict[str, str | None]  # compared attribute → name key


@dataclass
class _PendingGroup:
    """Records accepted since the graph was built that share one identifier value, the
    first of them first."""

    members: list[GroupMember]


@dataclass
class _Pending:
    """Everything accepted since the published graph was built."""

    groups: dict[tuple[str, str], _PendingGroup] = field(default_factory=dict)
    customers: dict[str, list[str]] = field(default_factory=dict)  # resolved_id → keys


class Resolver:
    """The service's state and rules.

    Only ``resolve`` changes what was accepted, and it runs on one thread (the event
    loop); reads from other threads (customer views in worker threads, the maintenance
    thread rotating the inbox and swapping in new graphs) happen under the lock.
    """

    def __init__(
        self,
        spec: Spec,
        store: ArtifactStore,
        inbox: InboxWriter,
        chooser: Chooser = choose_by_exact_identifiers,
    ) -> None:
        self.spec = spec
        self.store = store
        self.inbox_name = inbox_source(spec).name
        self._inbox = inbox
        self._chooser = chooser
        self.mapper = RecordMapper(spec)
        self._limits = {name: t.max_group_size for name, t in spec.identifier_types.items()}
        self._corroboration = spec.corroboration
        # kept open: opening one costs more than the few conflict tests it serves
        self._conflict_con = conflict_connection()
        self._lock = threading.Lock()
        self._graph: GraphIndex | None = None
        self._matcher: ProbabilisticMatcher | None = None  # with the graph, when on
        self._failed_fingerprint: tuple | None = None
        self._accepted: dict[str, _Accepted] = {}
        self._issued_here: set[str] = set()
        self._pending = _Pending()
        self._suppressed: set[str] = set()  # entity keys of forgotten records
        self._forgotten_ids: set[str] = set()  # their customers' ids
        self._suppression_stamp: tuple[int, int] | None = None
        self._load_accepted()
        self.forget_suppressed()

    @property
    def ready(self) -> bool:
        return self._graph is not None

    def resolve(self, source: str, external_id: str, data: dict[str, str]) -> Resolution:
        """The record's customer; the record is in the inbox when this returns."""
        key = entity_key(self.spec, source, external_id)
        data_hash = _data_hash(data)
        observation = self.mapper.observe(data, self._known_linkable)
        with self._lock:
            graph = self._require_graph()
            if key in self._suppressed:
                raise ForgottenRecordError(
                    "this (source, external_id) belongs to a person who asked to be "
                    "forgotten; it is not accepted again"
                )
            replay = self._replay(graph, key, data_hash)
            if replay is not None:
                return replay
            candidates = self._mark_split_conflicts(
                graph, observation, self._candidates(graph, observation)
            )
            choice = self._chooser(observation, candidates)
            if choice.resolved_id is None and self._matcher is not None:
                choice = self._probabilistic_choice(graph, self._matcher, key, observation)
            resolved_id = choice.resolved_id or unique_id(key, self._is_taken)
            self._inbox.append(self._inbox_line(source, external_id, resolved_id, data_hash, data))
            values = tuple((i.identifier_type, i.value) for i in observation.linkable() if i.value)
            self._accept(key, _Accepted(resolved_id, data_hash, values, observation.names))
            profile = graph.profile(resolved_id) or self._provisional_profile(resolved_id)
        return Resolution(
            resolved_id=resolved_id,
            is_new=choice.resolved_id is None,
            matched_on=choice.matched_on,
            matched_entity_key=choice.matched_entity_key,
            confidence=choice.confidence,
            conflicts=choice.conflicts,
            profile=profile,
        )

    def lookup(self, values: dict[str, str]) -> list[LookupMatch]:
        """The customer holding each identifier value (normalized like the data)."""
        observed = [self.mapper.classify(name, raw) for name, raw in values.items()]
        with self._lock:
            graph = self._require_graph()
            return [self._lookup_one(graph, identifier) for identifier in observed]

    def customer(self, resolved_id: str) -> CustomerView | None:
        """A customer's profile, records and lineage; None when the id is unknown."""
        with self._lock:
            graph = self._require_graph()
            if resolved_id in self._forgotten_ids:
                return None
            pending_keys = list(self._pending.customers.get(resolved_id, []))
            provisional = self._provisional_profile(resolved_id)
        published_members = graph.members(resolved_id)
        members = published_members + [self._pending_member(key) for key in pending_keys]
        lineage = graph.lineage(resolved_id)
        successors = sorted(
            {
                row["resolved_id"]
                for row in lineage
                if row["previous_resolved_id"] == resolved_id
                and row["resolved_id"] not in (None, resolved_id)
            }
        )
        if published_members:
            status, profile = "active", graph.profile(resolved_id)
        elif pending_keys:
            status, profile = "pending", provisional
        elif successors or lineage:
            status, profile = "retired", None
        else:
            return None
        return CustomerView(resolved_id, status, profile, members, lineage, successors)

    def status(self) -> dict[str, Any]:
        graph = self._graph
        return {
            "ready": graph is not None,
            "graph_loaded_at": graph.loaded_at.isoformat() if graph else None,
            "graph_records": graph.record_count if graph else 0,
            "graph_customers": graph.customer_count if graph else 0,
            "accepted_records": len(self._accepted),
            "pending_records": sum(len(keys) for keys in self._pending.customers.values()),
        }

    def maintain(self) -> None:
        """One tick of the maintenance thread: rotate the inbox when due, and swap in a
        newly published graph."""
        with self._lock:
            rotated = self._inbox.rotate_if_due()
        if rotated is not None:
            log.info("inbox rotated into batch file %s", rotated.name)
        self.forget_suppressed()
        self.reload_if_changed()

    def forget_suppressed(self) -> int:
        """Let go of the records on the suppression list, if it changed: their customers
        stop matching; records the service accepted leave its memory and the inbox files
        (the open one is rotated first, so that only whole batch files are rewritten).
        Returns how many accepted records were dropped."""
        stamp = file_stamp(self.store.state_path(FORGOTTEN_STATE))
        if stamp == self._suppression_stamp:
            return 0
        keys = suppressed_keys(self.store)
        with self._lock:
            self._suppression_stamp = stamp
            self._suppressed = set(keys.to_list())
            accepted = pl.Series("entity_key", list(self._accepted), pl.String)
            gone = accepted.filter(accepted.is_in(keys.implode())).to_list()
            self._forgotten_ids |= {self._accepted[key].resolved_id for key in gone}
            if self._graph is not None:
                self._forgotten_ids |= self._graph.resolved_ids_of(keys)
            for key in gone:
                del self._accepted[key]
            if not gone:
                return 0  # none of the service's records: the inbox holds none of theirs
            self._pending = self._pending_after(self._graph)
            self._inbox.rotate()
            cut = drop_inbox_lines(self.spec, keys, include_open_file=False)
        log.info("forgotten records let go: %d in memory, %d inbox lines", len(gone), cut)
        return len(gone)

    def reload_if_changed(self) -> bool:
        """Load the published graph if it changed and no run is rewriting it. The new
        index is built while requests go on, then swapped in at once."""
        fingerprint = graph_fingerprint(self.store)
        current = self._graph.fingerprint if self._graph else None
        if fingerprint in (current, self._failed_fingerprint) or None in fingerprint[:2]:
            return False  # unchanged, known to be unreadable, or nothing published yet
        if self.store.run_in_progress():
            return False
        started = datetime.now(UTC)
        try:
            graph = GraphIndex(self.store, fingerprint, self._corroboration, self.spec.splitting)
            matcher = self._load_matcher()
        except Exception:
            log.exception("could not load the published graph; keeping the previous one")
            self._failed_fingerprint = fingerprint
            return False
        if graph_fingerprint(self.store) != fingerprint:
            return False  # rewritten while read: the next tick loads the finished one
        with self._lock:
            self._graph = graph
            self._matcher = matcher
            self._pending = self._pending_after(graph)
        seconds = (datetime.now(UTC) - started).total_seconds()
        log.info(
            "graph loaded: %d records, %d customers, %d accepted records pending, in %.1f s",
            graph.record_count,
            graph.customer_count,
            sum(len(keys) for keys in self._pending.customers.values()),
            seconds,
        )
        return True

    def close(self) -> None:
        with self._lock:
            self._inbox.close()
            self._conflict_con.close()

    # --- resolution steps

    def _require_graph(self) -> GraphIndex:
        if self._graph is None:
            raise NotReadyError(
                f"no published graph in {self.store.root} yet; materialize the graph "
                "(customer360 run) — the service loads it as soon as it appears"
            )
        return self._graph

    def _replay(self, graph: GraphIndex, key: str, data_hash: str) -> Resolution | None:
        accepted = self._accepted.get(key)
        published = graph.resolved_id_of(key)
        if accepted is None:
            if published is None:
                return None
        elif accepted.data_hash != data_hash:
            raise ReplayConflictError(
                "this (source, external_id) was accepted before with different data; a "
                "record's data cannot change through the service — send a new "
                "external_id, or change the record in its source system"
            )
        resolved_id = published if published is not None else accepted.resolved_id
        return Resolution(
            resolved_id=resolved_id,
            is_new=False,
            matched_on=[SOURCE_RECORD],
            matched_entity_key=key,
            confidence=1.0,
            conflicts=[],
            profile=graph.profile(resolved_id) or self._provisional_profile(resolved_id),
        )

    def _candidates(self, graph: GraphIndex, observation: Observation) -> list[Candidate]:
        candidates = []
        for identifier in observation.linkable():
            name, value = identifier.identifier_type, identifier.value
            if value is None or graph.is_oversize(name, value):
                continue
            match = graph.match(name, value)
            pending = self._pending.groups.get((name, value))
            sharing = (match.group_size if match else 0) + (len(pending.members) if pending else 0)
            if sharing + 1 > self._limits[name]:
                continue  # joining would make the group over-size: the batch links nothing
            attribute = self._corroboration.get(name)
            request_name = observation.names.get(attribute) if attribute else None
            candidates += [
                Candidate(
                    m.resolved_id,
                    name,
                    m.entity_key,
                    graph.issued_seq(m.resolved_id),
                    group_size=sharing + 1,
                )
                for m in self._partners(graph, name, value, request_name)
            ]
        return candidates

    def _mark_split_conflicts(
        self, graph: GraphIndex, observation: Observation, candidates: list[Candidate]
    ) -> list[Candidate]:
        """The candidates, those of customers the record conflicts with marked, and the
        others weighed when the split will cut them apart again. Only when they span
        several customers (rare): one customer is the answer either way."""
        splitting = self.spec.splitting
        customers = list(dict.fromkeys(c.resolved_id for c in candidates))
        if len(customers) < 2 or splitting is None or not splitting.conflicts:
            return candidates
        published = graph.split_keys(customers)
        accepted = [
            {"resolved_id": resolved_id}
            | {a: self._accepted[key].names.get(a) for a in splitting.attributes}
            for resolved_id in customers
            for key in self._pending.customers.get(resolved_id, [])
        ]
        held = pl.concat([published, pl.DataFrame(accepted, schema=published.schema)])
        verdict = split_verdict(observation.names, held, splitting, self._conflict_con)
        marked = [replace(c, conflicting=c.resolved_id in verdict.conflicting) for c in candidates]
        return self._weighed(graph, marked) if verdict.kept_apart else marked

    def _weighed(self, graph: GraphIndex, candidates: list[Candidate]) -> list[Candidate]:
        """The candidates with the strength the split's minimum cut gives each link, over
        the next run's records (the graph's, those accepted since and this one). A
        guarded group counts all its records where the batch counts those its agreeing
        pairs link — the same for links through one value, the usual case."""
        records = graph.record_count + sum(map(len, self._pending.customers.values())) + 1
        strengths = (
            pl.Series("group_size", [c.group_size for c in candidates], pl.Int64)
            .to_frame()
            .select(link_strength(pl.lit(None, pl.Float64), pl.col("group_size"), records))
            .to_series()
        )
        return [
            replace(c, strength=strength)
            for c, strength in zip(candidates, strengths.to_list(), strict=True)
        ]

    def _partners(
        self, graph: GraphIndex, identifier_type: str, value: str, name: str | None
    ) -> list[GroupMember]:
        """The records the batch's edges will join a record to through this value: the
        anchor of its group in the graph and that of the records accepted since — or,
        when a guarded group names conflicting people, the records that agree with the
        record's name (none without a name). Customers forgotten since the graph was
        built are left out."""
        match = graph.match(identifier_type, value)
        pending = self._pending.groups.get((identifier_type, value))
        pending_members = pending.members if pending else []
        anchors = [GroupMember(match.entity_key, match.resolved_id, None)] if match else []
        anchors += pending_members[:1]
        if identifier_type not in self._corroboration:
            return [m for m in anchors if m.resolved_id not in self._forgotten_ids]
        members = graph.group(identifier_type, value) + pending_members
        partners = guarded_partners([m.name for m in members], name, graph.names)
        reached = anchors if partners is None else [members[i] for i in partners]
        return [m for m in reached if m.resolved_id not in self._forgotten_ids]

    def _probabilistic_choice(
        self, graph: GraphIndex, matcher: ProbabilisticMatcher, key: str, observation: Observation
    ) -> Choice:
        """The customer the model matches the record to, if any (forgotten customers
        left out)."""
        candidates = [
            Candidate(
                match.resolved_id,
                MATCH_RULE,
                match.entity_key,
                graph.issued_seq(match.resolved_id),
                match.probability,
            )
            for match in matcher.matches(key, observation.attributes)
            if match.resolved_id not in self._forgotten_ids
        ]
        return choose_by_match_probability(candidates)

    def _load_matcher(self) -> ProbabilisticMatcher | None:
        """The published graph's matcher, when the spec turns scoring on and a model
        trained for its matching settings exists (else scoring is off, and said so)."""
        service, matching = self.spec.service, self.spec.matching
        if service is None or not service.probabilistic or matching is None:
            return None
        persisted = reusable_model(self.store, matching)
        if persisted is None:
            log.warning(
                "probabilistic scoring is off: no model trained for the spec's matching "
                "settings yet (the next run with the matching stage trains one)"
            )
            return None
        return ProbabilisticMatcher(self.store, matching, persisted[0])

    def _known_linkable(self, identifier_type: str, value: str) -> bool:
        """A value the published graph, or a record accepted since, links on."""
        graph = self._graph
        return (identifier_type, value) in self._pending.groups or (
            graph is not None and graph.links_on(identifier_type, value)
        )

    def _is_taken(self, resolved_id: str) -> bool:
        graph = self._graph
        return resolved_id in self._issued_here or (
            graph is not None and graph.is_issued(resolved_id)
        )

    def _inbox_line(
        self, source: str, external_id: str, resolved_id: str, data_hash: str, data: dict[str, str]
    ) -> bytes:
        inbox = inbox_source(self.spec)
        line = {inbox.key: record_key(source, external_id)}
        if inbox.updated_at:
            line[inbox.updated_at] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        line |= {ASSIGNED_ID_COLUMN: resolved_id, DATA_HASH_COLUMN: data_hash}
        # every column on every line: the batch checks a batch file's columns against the
        # inbox source's mappings, and a field nobody sent is simply null
        line |= {column: data.get(column) for column in self.mapper.columns}
        return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()

    def _lookup_one(self, graph: GraphIndex, identifier: ObservedIdentifier) -> LookupMatch:
        name, value = identifier.identifier_type, identifier.value
        if not identifier.linkable or value is None:
            return LookupMatch(name, identifier.status, None)
        if graph.is_oversize(name, value):
            return LookupMatch(name, "oversize", None)
        partners = self._partners(graph, name, value, None)
        if name in self._corroboration and not partners:
            holds = graph.match(name, value) or self._pending.groups.get((name, value))
            if holds is not None:  # several people share it: no one customer holds it
                return LookupMatch(name, "guarded", None)
        return LookupMatch(name, "linkable", partners[0].resolved_id if partners else None)

    # --- what the service has accepted

    def _accept(self, key: str, accepted: _Accepted) -> None:
        self._accepted[key] = accepted
        self._issued_here.add(accepted.resolved_id)
        _add_pending(self._pending, key, accepted, self._corroboration)

    def _pending_after(self, graph: GraphIndex | None) -> _Pending:
        """Accepted records the graph does not hold yet."""
        pending = _Pending()
        for key, accepted in self._accepted.items():
            if graph is None or graph.resolved_id_of(key) is None:
                _add_pending(pending, key, accepted, self._corroboration)
        return pending

    def _provisional_profile(self, resolved_id: str) -> dict[str, Any] | None:
        """For a customer only the service knows yet: the first value of each identifier
        type among its records. The golden profile follows after the next run."""
        keys = self._pending.customers.get(resolved_id)
        if not keys:
            return None
        profile: dict[str, Any] = {"resolved_id": resolved_id}
        for key in keys:
            for name, value in self._accepted[key].values:
                profile.setdefault(f"{name}_primary", value)
        return profile | {
            "record_count": len(keys),
            "source_systems": [self.inbox_name],
            "provisional": True,
        }

    def _pending_member(self, key: str) -> dict[str, Any]:
        return {
            "entity_key": key,
            "source": self.inbox_name,
            "record_key": key.removeprefix(f"{self.inbox_name}:"),
            "pending": True,
        }

    def _load_accepted(self) -> None:
        """What the inbox holds from earlier lives of the service (vectorised over the
        lines; one dict entry per accepted record)."""
        inbox = inbox_source(self.spec)
        files = list_batches(self.spec, inbox)
        if self._inbox.accepting.is_file():
            files.append(self._inbox.accepting)
        lines = read_inbox(self.spec, files).filter(pl.col(ASSIGNED_ID_COLUMN).is_not_null())
        values = (
            self.mapper.linkable_values(lines)
            .group_by("entity_key")
            .agg(pl.struct("identifier_type", "value").alias("values"))
        )
        accepted = (
            lines.join(values, on="entity_key", how="left")
            .join(self.mapper.name_keys(lines), on="entity_key", how="left")
            .unique("entity_key", keep="first", maintain_order=True)
        )
        attributes = self.mapper.compared
        for key, resolved_id, data_hash, pairs, *names in accepted.select(
            "entity_key", ASSIGNED_ID_COLUMN, DATA_HASH_COLUMN, "values", *attributes
        ).iter_rows():
            pairs = tuple((p["identifier_type"], p["value"]) for p in pairs or [])
            named = dict(zip(attributes, names, strict=True))
            self._accept(key, _Accepted(resolved_id, data_hash or "", pairs, named))
        if self._accepted:
            log.info("%d records accepted earlier found in the inbox", len(self._accepted))


def _add_pending(
    pending: _Pending, key: str, accepted: _Accepted, corroboration: dict[str, str]
) -> None:
    pending.customers.setdefault(accepted.resolved_id, []).append(key)
    for identifier_type, value in accepted.values:
        attribute = corroboration.get(identifier_type)
        name = accepted.names.get(attribute) if attribute else None
        member = GroupMember(key, accepted.resolved_id, name)
        group = pending.groups.setdefault((identifier_type, value), _PendingGroup([]))
        group.members.append(member)


def _data_hash(data: dict[str, str]) -> str:
    """The same data in any key order hashes the same."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
