"""From a request's data to what the resolver matches on, with the batch's own code.

The data of a request is a row of the inbox source: the same mapping expressions
(:func:`customer360.core.records.mapped_fields`) turn it into identifiers and attributes,
and the same :class:`~customer360.core.identifiers.ValueClassifier` normalizes each
identifier and decides whether it may link (inactive, invalid, excluded or linkable). So
a value the service matches on is exactly the value the batch will link on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from customer360.core.identifiers import ValueClassifier
from customer360.core.inbox import data_columns, inbox_source
from customer360.core.records import mapped_fields
from customer360.core.spec import Spec


@dataclass(frozen=True)
class ObservedIdentifier:
    identifier_type: str
    value: str | None  # normalized; None when the raw text held no valid value
    status: str  # linkable, inactive, invalid or excluded (group sizes come later)

    @property
    def linkable(self) -> bool:
        return self.status == "linkable"


@dataclass(frozen=True)
class Observation:
    """One record's identifiers as the batch will see them."""

    identifiers: list[ObservedIdentifier]

    def linkable(self) -> list[ObservedIdentifier]:
        return [identifier for identifier in self.identifiers if identifier.linkable]


KnownLinkable = Callable[[str, str], bool] | None


class RecordMapper:
    """Maps inbox data (column → text) the way the batch maps the inbox source."""

    def __init__(self, spec: Spec) -> None:
        inbox = inbox_source(spec)
        self.columns = data_columns(inbox)
        self.identifier_types = list(inbox.identifiers)
        self._fields = [  # identifiers only: attributes do not take part in matching
            field
            for field in mapped_fields(spec, inbox, self.columns)
            if field.meta.output_name() in inbox.identifiers
        ]
        self._inputs = sorted({c for f in self._fields for c in f.meta.root_names()})
        region = spec.settings.default_region
        self.classifiers = {
            name: ValueClassifier(name, spec.identifier_types[name], region)
            for name in spec.identifier_types
        }

    def observe(self, data: dict[str, str], known_linkable: KnownLinkable = None) -> Observation:
        """One record's identifiers, normalized and classified.

        ``known_linkable(type, value)`` says whether the batch (or the service, earlier)
        already classified this normalized value as linkable: the published graph links
        on it. Such a value is not classified again — the same spec and code gave that
        answer — which spares a Polars pass per identifier on the hot path.
        """
        row = pl.DataFrame([pl.Series(c, [data.get(c)], pl.String) for c in self._inputs])
        mapped = row.select(self._fields).row(0, named=True)
        identifiers = []
        for name in self.identifier_types:
            if mapped[name] is None:
                continue
            classifier = self.classifiers[name]
            value = classifier.normalize(pl.Series([mapped[name]]))[0]
            known = value is not None and known_linkable is not None and known_linkable(name, value)
            if known and classifier.id_type.active:
                identifiers.append(ObservedIdentifier(name, value, "linkable"))
            else:
                identifiers.append(self._classified(name, value))
        return Observation(identifiers)

    def classify(self, identifier_type: str, raw: str) -> ObservedIdentifier:
        """One raw value of an identifier type, normalized and classified."""
        value = self.classifiers[identifier_type].normalize(pl.Series([raw]))[0]
        return self._classified(identifier_type, value)

    def _classified(self, identifier_type: str, value: str | None) -> ObservedIdentifier:
        frame = pl.DataFrame([pl.Series("value", [value], pl.String)])
        status = self.classifiers[identifier_type].with_statuses(frame).get_column("status")[0]
        return ObservedIdentifier(identifier_type, value, status)

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
        schema = {"entity_key": pl.String, "identifier_type": pl.String, "value": pl.String}
        return pl.concat([pl.DataFrame(schema=schema), *parts])
