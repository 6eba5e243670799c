"""From a request's data to what the resolver matches on, with the batch's own code.

The data of a request is a row of the inbox source: the same mapping expressions
(:func:`customer360.core.records.mapped_fields`) turn it into identifiers and attributes,
and the same :class:`~customer360.core.identifiers.ValueClassifier` normalizes each
identifier and decides whether it may link (inactive, invalid, excluded or linkable). So
a value the service matches on is exactly the value the batch will link on.

Two things the batch does elsewhere are done here the same way, with the same code:
a hashed identifier type's value is normalized, screened by the type's exclusions and
replaced by its keyed hash, as ingestion does (so a plain email finds the customer whose
email the graph holds only as a hash); and the attribute a guarded type is corroborated
by (``corroborate: first_name``), and the attributes the split of over-merged clusters
compares (``splitting:``), are read as the batch's name keys.

With probabilistic scoring on, the attributes the matching stage compares or blocks on
are mapped too, as the records table holds them, for the model to score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from customer360.core.identifiers import ValueClassifier
from customer360.core.inbox import data_columns, inbox_source
from customer360.core.names import name_key
from customer360.core.privacy import keyed_hash, keyed_hash_one, read_salt
from customer360.core.records import mapped_fields
from customer360.core.spec import Spec


@dataclass(frozen=True)
class ObservedIdentifier:
    identifier_type: str
    value: str | None  # normalized (and hashed, for a hashed type); None if not valid
    status: str  # linkable, inactive, invalid or excluded (group sizes come later)

    @property
    def linkable(self) -> bool:
        return self.status == "linkable"


@dataclass(frozen=True)
class Observation:
    """One record's identifiers as the batch will see them."""

    identifiers: list[ObservedIdentifier]
    names: dict[str, str | None]  # compared attribute → its name key, as the batch's
    # matching attribute → its value as the records table holds it (probabilistic only)
    attributes: dict[str, str | None] = field(default_factory=dict)

    def linkable(self) -> list[ObservedIdentifier]:
        return [identifier for identifier in self.identifiers if identifier.linkable]


KnownLinkable = Callable[[str, str], bool] | None
MATCHED_PREFIX = "matched:"


class RecordMapper:
    """Maps inbox data (column → text) the way the batch maps the inbox source."""

    def __init__(self, spec: Spec) -> None:
        inbox = inbox_source(spec)
        self.columns = data_columns(inbox)
        self.identifier_types = list(inbox.identifiers)
        # identifiers, and the attributes the guards compare: others take no part
        guarded = set(spec.corroboration.values())
        if spec.splitting and spec.splitting.conflicts:
            guarded |= set(spec.splitting.attributes)
        self.compared = sorted(guarded & set(inbox.attributes))
        fields = mapped_fields(spec, inbox, self.columns)
        self._fields = [f for f in fields if _named(f, [*inbox.identifiers, *self.compared])]
        self._name_keys = [name_key(attribute).alias(attribute) for attribute in self.compared]
        self.matched = _matched_attributes(spec, list(inbox.attributes))
        # what observe reads of a record, each under its own name: the identifiers, the
        # name key of each compared attribute, the matched attributes (prefixed)
        self._outputs = [
            *[f for f in fields if _named(f, inbox.identifiers)],
            *[name_key(f).alias(f.meta.output_name()) for f in fields if _named(f, self.compared)],
            *[
                f.alias(MATCHED_PREFIX + f.meta.output_name())
                for f in fields
                if _named(f, self.matched)
            ],
        ]
        self._inputs = sorted({c for f in self._outputs for c in f.meta.root_names()})
        # a request brings a few of the columns: only the outputs that read one of them
        # are computed, the others are what they are over absent columns, computed once
        self._when_absent = _row(_Plan.of(self._outputs), {})
        self._plans: dict[frozenset[str], _Plan] = {}
        region = spec.settings.default_region
        # a hashed type is classified on its plain value, as ingestion screens it, and
        # then hashed; the batch's classifier of hashed values would take text as a hash
        self.classifiers = {
            name: ValueClassifier(name, id_type.model_copy(update={"hash": False}), region)
            for name, id_type in spec.identifier_types.items()
        }
        self._hashed = set(spec.hashed_identifier_types)
        self._salt = read_salt(spec) if self._hashed else b""

    def observe(self, data: dict[str, str], known_linkable: KnownLinkable = None) -> Observation:
        """One record's identifiers, normalized and classified, and its name keys.

        ``known_linkable(type, value)`` says whether the batch (or the service, earlier)
        already classified this normalized value as linkable: the published graph links
        on it. Such a value is not classified again — the same spec and code gave that
        answer — which spares a Polars pass per identifier on the hot path.
        """
        mapped = self._mapped({c: data[c] for c in self._inputs if data.get(c) is not None})
        identifiers = []
        for name in self.identifier_types:
            if mapped[name] is None:
                continue
            classifier = self.classifiers[name]
            plain = classifier.normalize(pl.Series([mapped[name]]))[0]
            value = self._stored(name, plain)
            known = value is not None and known_linkable is not None and known_linkable(name, value)
            if known and classifier.id_type.active:
                identifiers.append(ObservedIdentifier(name, value, "linkable"))
            else:
                identifiers.append(ObservedIdentifier(name, value, self._status(name, plain)))
        return Observation(
            identifiers,
            {a: mapped[a] for a in self.compared},
            {a: mapped[MATCHED_PREFIX + a] for a in self.matched},
        )

    def classify(self, identifier_type: str, raw: str) -> ObservedIdentifier:
        """One raw value of an identifier type, normalized and classified."""
        plain = self.classifiers[identifier_type].normalize(pl.Series([raw]))[0]
        return ObservedIdentifier(
            identifier_type,
            self._stored(identifier_type, plain),
            self._status(identifier_type, plain),
        )

    def _stored(self, identifier_type: str, plain: str | None) -> str | None:
        """The value as the graph holds it: hashed when its type is hashed."""
        if plain is None or identifier_type not in self._hashed:
            return plain
        return keyed_hash_one(plain, self._salt)

    def _status(self, identifier_type: str, plain: str | None) -> str:
        frame = pl.DataFrame([pl.Series("value", [plain], pl.String)])
        return self.classifiers[identifier_type].with_statuses(frame).get_column("status")[0]

    def _mapped(self, present: dict[str, str]) -> dict[str, str | None]:
        """Every output of one record whose present columns are ``present``: those
        reading a present column from one Polars call (each call costs tens of
        microseconds, whatever it computes), the others as over absent columns."""
        shape = frozenset(present)
        plan = self._plans.get(shape)
        if plan is None:  # one per set of columns requests bring: a handful
            plan = _Plan.of([f for f in self._outputs if shape.intersection(f.meta.root_names())])
            self._plans[shape] = plan
        return self._when_absent | _row(plan, present)

    def name_keys(self, lines: pl.DataFrame) -> pl.DataFrame:
        """``entity_key`` and the name key of each compared attribute, of many inbox
        lines at once."""
        return lines.select("entity_key", *self._fields).select("entity_key", *self._name_keys)

    def linkable_values(self, lines: pl.DataFrame) -> pl.DataFrame:
        """(entity_key, identifier_type, value) of every linkable identifier of many inbox
        lines at once (``entity_key`` plus the data columns): what the service rebuilds
        its view of records not yet in the graph from when it starts."""
        mapped = lines.select("entity_key", *self._fields)
        parts = [
            mapped.select("entity_key")
            .with_columns(self.classifiers[name].classify(mapped.get_column(name)))
            .filter(pl.col("status") == "linkable")
            .select("entity_key", pl.lit(name).alias("identifier_type"), "value")
            for name in self.identifier_types
        ]
        parts = [
            part.with_columns(keyed_hash(part.get_column("value"), self._salt))
            if name in self._hashed
            else part
            for name, part in zip(self.identifier_types, parts, strict=True)
        ]
        schema = {"entity_key": pl.String, "identifier_type": pl.String, "value": pl.String}
        return pl.concat([pl.DataFrame(schema=schema), *parts])


def _named(field: pl.Expr, names: list[str]) -> bool:
    return field.meta.output_name() in names


@dataclass(frozen=True)
class _Plan:
    """Outputs to compute together, and the columns they read."""

    outputs: list[pl.Expr]
    columns: list[str]

    @classmethod
    def of(cls, outputs: list[pl.Expr]) -> _Plan:
        return cls(outputs, sorted({c for f in outputs for c in f.meta.root_names()}))


def _row(plan: _Plan, data: dict[str, str]) -> dict[str, str | None]:
    """The plan's outputs over one row holding ``data`` (null in every other column)."""
    if not plan.outputs:
        return {}
    row = pl.DataFrame([pl.Series(c, [data.get(c)], pl.String) for c in plan.columns])
    return row.select(plan.outputs).row(0, named=True)


def _matched_attributes(spec: Spec, mapped: list[str]) -> list[str]:
    """The matching attributes the inbox maps, when the service scores probabilistically;
    an attribute the inbox does not map is null, as in the batch's records."""
    service, matching = spec.service, spec.matching
    if service is None or not service.probabilistic or matching is None:
        return []
    return [attribute for attribute in matching.attributes if attribute in mapped]
