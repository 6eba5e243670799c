"""The job spec: one YAML file that describes sources, identifiers, exclusions, matching,
splitting, survivorship, quality thresholds and the resolve service.

Loading is two-phase so that every mistake is reported before any data is touched:
the structure is validated by pydantic models, then references between parts
(identifier types named by sources, attributes named by survivorship, files on disk,
columns in those files) are checked. All problems are collected into one
:class:`SpecError` whose message names the file, the key and the fix.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import phonenumbers
import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_SPEC_FILE = "customer360.yaml"
SPEC_ENV_VAR = "CUSTOMER360_SPEC"
DEFAULT_SALT_ENV_VAR = "CUSTOMER360_SALT"
DEFAULT_SERVICE_PORT = 8360
# Columns of an inbox line that the resolve service writes itself (besides the inbox
# source's key and updated_at columns); the request's data may not use these names.
SERVICE_COLUMNS = ("assigned_resolved_id", "data_hash")

SourceFormat = Literal["csv", "tsv", "ndjson", "json", "parquet", "xlsx", "duckdb"]
Normalizer = Literal["email", "phone", "upper", "lower", "trim", "digits", "expression"]
Strategy = Literal["trust", "most_recent", "most_frequent", "longest"]

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
# Names the resolution graph uses for its own assets and columns; a source or a mapped
# field with one of these names would shadow them.
RESERVED_NAMES = frozenset(
    # output tables
    [
        "records",
        "quarantine",
        "identifiers",
        "identity_edges",
        "skipped_groups",
        "membership",
        "clusters",
        "traits",
        "resolved_traits",
        "golden_profiles",
        "golden_profile_history",
        "customer_360",
        "organizations",
        "memberships",
        "resolution_metrics",
        "entity_key",
        "source",
        "record_key",
        "batch",
        "row_number",
        "updated_at",
        "trust",
        "resolved_id",
        "record_count",
        "source_systems",
        "conflict_rules_applied",
        "quality_score",
        "created_at",
        "last_updated_at",
        "first_seen",
        "last_seen",
        "lifetime_value",
        "days_since_last_activity",
        "value_tier",
        "lifecycle_status",
        "organization_id",
        "version",
        "valid_from",
        "valid_to",
        "is_current",
    ]
)


def _phone_region(region: str) -> str:
    """An ISO country code phonenumbers knows; anything else would null every phone."""
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            f"'{region}' is not a region phonenumbers knows; use an upper-case ISO 3166 "
            "country code such as US, GB, DE or FR"
        )
    return region


class SpecError(ValueError):
    """A spec that cannot run. The message lists every problem, one per line."""

    def __init__(self, spec_path: Path | str, problems: list[str]) -> None:
        self.spec_path = Path(spec_path)
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid spec {self.spec_path}:\n{lines}")


class _Strict(BaseModel):
    """Unknown keys are errors: a misspelt key must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Exclusion(_Strict):
    """A value that must never link records: exactly one of value, like or regex."""

    value: str | None = None
    like: str | None = None
    regex: str | None = None
    reason: str

    @model_validator(mode="after")
    def _exactly_one_matcher(self) -> Exclusion:
        given = [k for k in ("value", "like", "regex") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'value', 'like' or 'regex' (plus 'reason')")
        if self.regex is not None:
            try:
                pl.Series([""]).str.contains(self.regex)
            except pl.exceptions.ComputeError as exc:
                raise ValueError(
                    f"regex {self.regex!r} does not compile (Rust regex syntax: no "
                    f"look-around or back-references): {exc}"
                ) from exc
        return self

    def as_regex(self) -> str | None:
        """The pattern as an anchored regular expression (None for exact values)."""
        if self.regex is not None:
            return self.regex
        if self.like is not None:
            return "^" + "".join(_like_char(c) for c in self.like) + "$"
        return None


def _like_char(char: str) -> str:
    return {"%": ".*", "_": "."}.get(char, re.escape(char))


class IdentifierType(_Strict):
    """How one kind of identifier is normalized and when it may link records."""

    normalizer: Normalizer
    expression: str | None = Field(
        default=None, description="Polars SQL over the column `value`, for normalizer: expression"
    )
    region: str | None = Field(default=None, description="phone: overrides settings.default_region")

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str | None) -> str | None:
        return None if region is None else _phone_region(region)

    phone_validation: Literal["possible", "valid"] = "possible"
    max_group_size: Annotated[int, Field(ge=2)] = 50
    active: bool = True
    exclusions: list[Exclusion] = []
    corroborate: str | None = Field(
        default=None,
        description="an attribute (e.g. first_name) that must not conflict inside a group: "
        "when it does, the value links only records that agree on it",
    )
    hash: bool = Field(
        default=False,
        description="replace every value by a keyed hash of its normalized form at ingestion",
    )

    @model_validator(mode="after")
    def _expression_when_needed(self) -> IdentifierType:
        if self.normalizer == "expression" and not self.expression:
            raise ValueError("normalizer 'expression' needs an 'expression' over the column value")
        if self.normalizer != "expression" and self.expression:
            raise ValueError("'expression' is only read with normalizer: expression")
        return self


class Source(_Strict):
    """One system of record and how its columns map onto identifiers and attributes."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    path: str
    format: SourceFormat
    key: str
    updated_at: str | None = None
    updated_at_format: str | None = None
    trust: Annotated[int, Field(ge=1)]
    aliases: dict[str, str] = {}
    identifiers: dict[str, str] = {}
    attributes: dict[str, str] = {}
    measures: dict[str, str] = Field(
        default={}, description="numeric measure name → column or expression (e.g. order value)"
    )
    sheet: str | None = None
    table: str | None = None
    encoding: Literal["utf8", "utf8-lossy", "latin1"] = "utf8"
    description: str | None = None

    @model_validator(mode="after")
    def _format_options(self) -> Source:
        if self.format == "duckdb" and not self.table:
            raise ValueError("format duckdb needs 'table': the table to read from the file")
        if self.table and self.format != "duckdb":
            raise ValueError("'table' is only read with format: duckdb")
        if self.sheet and self.format != "xlsx":
            raise ValueError("'sheet' is only read with format: xlsx")
        if not self.identifiers and not self.attributes:
            raise ValueError("map at least one identifier or attribute, or the source adds nothing")
        return self

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_NAMES:
            raise ValueError(f"'{name}' is the name of an output table; choose another name")
        return name


class Survivorship(_Strict):
    """Which observation wins per golden attribute."""

    default: Strategy = "trust"
    attributes: dict[str, Strategy] = {}


class Quality(_Strict):
    """Thresholds the asset checks enforce."""

    max_cluster_size: Annotated[int, Field(ge=1)] = 50
    max_moved_share: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.25,
        description="largest share of existing records whose resolved_id may change in a run",
    )


ConflictMethod = Literal["name", "date", "exact"]


class Splitting(_Strict):
    """The over-merge guard after linking: clusters cut apart at their weakest links."""

    max_cluster_size: Annotated[int, Field(ge=2)] | None = Field(
        default=None,
        description="a larger cluster is cut at its weakest links until its pieces fit "
        "(default: no size limit; quality.max_cluster_size still stops the run)",
    )
    conflicts: dict[str, ConflictMethod] = Field(
        default_factory=dict,
        description="attributes a person has one value of, and how two values may differ "
        "and still be one person's (name: nickname or typo; date: typo or day/month swap; "
        "exact): records with conflicting values are cut apart",
    )
    swappable: dict[str, str] = Field(
        default_factory=dict,
        description="conflict attribute -> an attribute sources sometimes put its value in "
        "(given and family name swapped): a record whose values the cluster holds mostly the "
        "other way round is read as swapped, and its value is no conflict",
    )

    @property
    def attributes(self) -> list[str]:
        """Every attribute the guard reads."""
        return list(dict.fromkeys([*self.conflicts, *self.swappable.values()]))


ComparisonMethod = Literal["name", "exact", "fuzzy", "date", "email", "levenshtein"]


class MatchTraining(_Strict):
    """How the probabilistic model learns its parameters."""

    em_blocking: list[list[str]] = Field(
        default_factory=list,
        description="blocks for expectation maximisation of m (default: the prediction blocks)",
    )
    u_max_pairs: Annotated[int, Field(ge=1000)] = 10_000_000
    prior_recall: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.8,
        description="without identifiers: the assumed recall of the first block, from which "
        "the share of matching pairs is estimated",
    )


class Matching(_Strict):
    """The probabilistic (Fellegi-Sunter) matching stage, run by Splink on DuckDB."""

    enabled: bool = True
    comparisons: Annotated[dict[str, ComparisonMethod], Field(min_length=1)]
    blocking: Annotated[list[Annotated[list[str], Field(min_length=1)]], Field(min_length=1)]
    threshold: Annotated[float, Field(gt=0, lt=1)] = Field(
        default=0.99, description="match probability from which a scored pair becomes an edge"
    )
    training: MatchTraining = MatchTraining()

    @property
    def attributes(self) -> list[str]:
        """Every attribute the stage reads: compared ones, then those only blocked on."""
        blocked = (name for block in self.blocking for name in block)
        return list(dict.fromkeys([*self.comparisons, *blocked]))


class ValueTier(_Strict):
    """A value tier: customers whose value measure is above ``above`` (the last tier,
    without ``above``, takes everyone else)."""

    name: str
    above: float | None = None


class LifecycleStage(_Strict):
    """A lifecycle stage: last activity within ``within_days`` of the as-of date (the last
    stage, without ``within_days``, takes everyone else)."""

    name: str
    within_days: Annotated[int, Field(ge=0)] | None = None


def _ordered_bands(bands: list, threshold: str, descending: bool) -> list:
    """Bands must end with exactly one catch-all and have ordered thresholds."""
    if not bands or getattr(bands[-1], threshold) is not None:
        raise ValueError(f"the last entry must have no '{threshold}': it takes everyone else")
    limits = [getattr(b, threshold) for b in bands[:-1]]
    if any(limit is None for limit in limits):
        raise ValueError(f"only the last entry may omit '{threshold}'")
    if limits != sorted(limits, reverse=descending):
        order = "descending" if descending else "ascending"
        raise ValueError(f"'{threshold}' values must be in {order} order")
    return bands


class CustomerView(_Strict):
    """How the customer_360 table computes value and lifecycle segments."""

    as_of: datetime | None = Field(
        default=None, description="reference date; default: the latest update in the data"
    )
    value_measure: str | None = Field(
        default=None, description="the measure summed as lifetime value (default: the first)"
    )
    value_tiers: list[ValueTier] = [
        ValueTier(name="Platinum", above=10_000),
        ValueTier(name="Gold", above=5_000),
        ValueTier(name="Silver", above=1_000),
        ValueTier(name="Bronze"),
    ]
    lifecycle: list[LifecycleStage] = [
        LifecycleStage(name="Active", within_days=30),
        LifecycleStage(name="At Risk", within_days=90),
        LifecycleStage(name="Churned"),
    ]

    @field_validator("value_tiers")
    @classmethod
    def _tiers_ordered(cls, tiers: list[ValueTier]) -> list[ValueTier]:
        return _ordered_bands(tiers, "above", descending=True)

    @field_validator("lifecycle")
    @classmethod
    def _stages_ordered(cls, stages: list[LifecycleStage]) -> list[LifecycleStage]:
        return _ordered_bands(stages, "within_days", descending=False)


FREE_MAIL_DOMAINS = [
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "msn.com",
    "aol.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "proton.me",
    "protonmail.com",
    "gmx.com",
    "mail.com",
    "yandex.com",
    "zoho.com",
    "comcast.net",
    "verizon.net",
]


class Organizations(_Strict):
    """People resolved into the organizations they belong to.

    Organization identifiers come from person records: the domain of a work email (the
    identifier type named by ``email_identifier``; free-mail domains excluded), the
    normalized company name (attribute ``company_attribute``) and an account id
    (attribute ``account_attribute``).
    """

    email_identifier: str | None = "email"
    company_attribute: str | None = "company"
    account_attribute: str | None = None
    role_attribute: str | None = None
    free_mail_domains: list[str] = FREE_MAIL_DOMAINS


class Truth(_Strict):
    """A ground-truth file mapping records to real people, for pairwise precision/recall."""

    path: str
    key_column: str = "entity_key"
    person_column: str = "person_id"
    min_precision: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.0, description="the evaluation check fails below this pairwise precision"
    )
    min_f1: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.0, description="the evaluation check fails below this pairwise F1"
    )


class Service(_Strict):
    """The real-time resolve service (``customer360 serve``): where accepted records go,
    and how it listens."""

    inbox_source: str = Field(
        description="the ndjson folder source that receives every accepted record, so the "
        "next batch run folds it into the graph"
    )
    port: Annotated[int, Field(ge=1, le=65535)] = DEFAULT_SERVICE_PORT
    inbox_rotate_seconds: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=60,
        description="how long accepted records collect in the inbox's open file before it "
        "becomes a batch file the sensor sees",
    )
    max_body_bytes: Annotated[int, Field(ge=1024, le=10_485_760)] = 65_536
    probabilistic: bool = Field(
        default=False,
        description="score a record that links to nobody by identifiers against the "
        "published records sharing a blocking key, with the batch's trained model; a match "
        "at or above matching.threshold joins that customer",
    )


class Settings(_Strict):
    default_region: str = "US"
    salt_env_var: str = Field(
        default=DEFAULT_SALT_ENV_VAR,
        description="environment variable holding the secret salt of hashed identifiers",
    )
    show_personal_data: bool = Field(
        default=False,
        description="show personal values in previews, check results and error messages",
    )

    @field_validator("salt_env_var")
    @classmethod
    def _variable_name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(
                "must name an environment variable (letters, digits and underscores, not "
                f"starting with a digit), e.g. {DEFAULT_SALT_ENV_VAR}; it holds the salt, "
                "which itself never goes in the spec"
            )
        return name

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        return _phone_region(region)

    owner: str = "team:customer-data"
    missing_values: list[str] = ["", "n/a", "na", "null", "none", "-", "unknown"]

    @field_validator("owner")
    @classmethod
    def _owner_format(cls, owner: str) -> str:
        if not (owner.startswith("team:") or re.fullmatch(r"[^@\s]+@[^@\s]+", owner)):
            raise ValueError("owner must be an email address or 'team:<name>'")
        return owner


class Spec(_Strict):
    """The validated spec. Paths inside it are resolved against the spec file's folder."""

    settings: Settings = Settings()
    identifier_types: dict[Annotated[str, Field(pattern=NAME_PATTERN)], IdentifierType]
    sources: Annotated[list[Source], Field(min_length=1)]
    survivorship: Survivorship = Survivorship()
    quality: Quality = Quality()
    matching: Matching | None = None
    splitting: Splitting | None = None
    truth: Truth | None = None
    customer_360: CustomerView = CustomerView()
    organizations: Organizations | None = None
    service: Service | None = None
    base_dir: Path = Field(default=Path("."), exclude=True)

    def resolve(self, path: str) -> Path:
        """A path from the spec, relative to the spec file's folder unless absolute."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate).resolve()

    def source(self, name: str) -> Source:
        return next(s for s in self.sources if s.name == name)

    @property
    def attribute_names(self) -> list[str]:
        """Every mapped attribute, in first-seen order across sources."""
        return list(dict.fromkeys(a for s in self.sources for a in s.attributes))

    @property
    def measure_names(self) -> list[str]:
        """Every numeric measure, in first-seen order across sources."""
        return list(dict.fromkeys(m for s in self.sources for m in s.measures))

    @property
    def hashed_identifier_types(self) -> list[str]:
        """Identifier types whose values are replaced by a keyed hash at ingestion."""
        return [name for name, id_type in self.identifier_types.items() if id_type.hash]

    @property
    def golden_fields(self) -> list[str]:
        """Golden profile fields: ``<identifier>_primary`` for each identifier, then attributes."""
        return [f"{name}_primary" for name in self.identifier_types] + self.attribute_names

    @property
    def corroboration(self) -> dict[str, str]:
        """Identifier type -> the attribute that must not conflict inside its groups."""
        return {
            name: id_type.corroborate
            for name, id_type in self.identifier_types.items()
            if id_type.corroborate
        }

    def strategy(self, field: str) -> Strategy:
        return self.survivorship.attributes.get(field, self.survivorship.default)


def default_spec_path() -> Path:
    """``$CUSTOMER360_SPEC`` if set, else ``customer360.yaml`` in the working directory."""
    return Path(os.environ.get(SPEC_ENV_VAR, DEFAULT_SPEC_FILE)).expanduser().resolve()


def load_spec(path: Path | str | None = None, *, check_files: bool = True) -> Spec:
    """Read, validate and cross-check a spec; raise :class:`SpecError` naming every problem.

    ``check_files`` also opens every source to check that its file and mapped columns
    exist; switch it off only where the data is not there yet (e.g. documentation).
    """
    spec_path = Path(path).expanduser().resolve() if path else default_spec_path()
    raw = _read_yaml(spec_path)
    try:
        spec = Spec.model_validate({**raw, "base_dir": spec_path.parent})
    except ValidationError as exc:
        raise SpecError(spec_path, [_describe(error) for error in exc.errors()]) from None
    problems = _reference_problems(spec)
    from customer360.core.privacy import salt_problems  # privacy imports this module

    problems += salt_problems(spec)
    if check_files and not problems:
        from customer360.core.readers import source_problems  # readers import this module

        problems = [p for source in spec.sources for p in source_problems(spec, source)]
        problems += _truth_problems(spec)
    if problems:
        raise SpecError(spec_path, problems)
    return spec


def _read_yaml(spec_path: Path) -> dict:
    if not spec_path.is_file():
        raise SpecError(
            spec_path,
            [f"file not found; create it or point ${SPEC_ENV_VAR} at an existing spec"],
        )
    try:
        text = spec_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(spec_path, [f"not UTF-8 text ({exc}); save the file as UTF-8"]) from None
    try:
        raw = yaml.safe_load(text)
    except (
        yaml.YAMLError,
        ValueError,
        TypeError,
        AttributeError,
        LookupError,
        RecursionError,
    ) as exc:
        # PyYAML reports bad scalars (2024-02-30, !!int 5O) as plain Python errors
        raise SpecError(spec_path, [f"not valid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise SpecError(spec_path, ["the top level must be a mapping with 'sources' and more"])
    return raw


def _describe(error: dict) -> str:
    """One pydantic error as 'key.path: problem', in the spec's own vocabulary."""
    key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
    key = key.lstrip(".") or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key; remove it or check its spelling against the README"
    elif error["type"] == "missing":
        message = "required key is missing; add it"
    return f"{key}: {message}"


def _reference_problems(spec: Spec) -> list[str]:
    """Problems that span several parts of the spec (names that must refer to each other)."""
    problems: list[str] = []
    known_types = ", ".join(spec.identifier_types) or "(none defined)"
    seen_names: set[str] = set()
    for i, source in enumerate(spec.sources):
        where = f"sources[{i}] ({source.name})"
        if source.name in seen_names:
            problems.append(f"{where}.name: duplicate source name; give each source its own name")
        seen_names.add(source.name)
        for id_type in source.identifiers:
            if id_type not in spec.identifier_types:
                problems.append(
                    f"{where}.identifiers.{id_type}: unknown identifier type; "
                    f"define it under identifier_types or use one of: {known_types}"
                )
        for measure in source.measures:
            if measure in spec.identifier_types or measure in spec.attribute_names:
                problems.append(
                    f"{where}.measures.{measure}: name clashes with an identifier type or "
                    "an attribute; rename the measure"
                )
        for attribute in source.attributes:
            if attribute in spec.identifier_types or attribute in RESERVED_NAMES:
                problems.append(
                    f"{where}.attributes.{attribute}: name clashes with an identifier type or "
                    "an output column; rename the attribute"
                )
    view = spec.customer_360
    if view.value_measure and view.value_measure not in spec.measure_names:
        problems.append(
            f"customer_360.value_measure: no source defines measure '{view.value_measure}'; "
            f"use one of: {', '.join(spec.measure_names) or '(add sources[].measures first)'}"
        )
    if spec.organizations:
        problems += _organization_problems(spec, spec.organizations)
    if spec.matching:
        problems += _matching_problems(spec, spec.matching)
    for name, id_type in spec.identifier_types.items():
        if id_type.corroborate and id_type.corroborate not in spec.attribute_names:
            problems.append(
                f"identifier_types.{name}.corroborate: no source maps attribute "
                f"'{id_type.corroborate}'; map it under sources[].attributes or remove the key"
            )
    if spec.splitting:
        problems += _splitting_problems(spec, spec.splitting)
    if spec.service:
        problems += _service_problems(spec, spec.service)
    fields = set(spec.golden_fields)
    for field in spec.survivorship.attributes:
        if field not in fields:
            problems.append(
                f"survivorship.attributes.{field}: no such golden field; "
                f"use one of: {', '.join(spec.golden_fields)}"
            )
    return problems


def _splitting_problems(spec: Spec, splitting: Splitting) -> list[str]:
    problems = []
    named = [(f"conflicts.{key}", key) for key in splitting.conflicts] + [
        (f"swappable.{key}", partner) for key, partner in splitting.swappable.items()
    ]
    for where, attribute in named:
        if attribute not in spec.attribute_names:
            problems.append(
                f"splitting.{where}: no source maps attribute '{attribute}'; "
                "map it under sources[].attributes or remove the key"
            )
    for attribute in splitting.swappable:
        if attribute not in splitting.conflicts:
            problems.append(
                f"splitting.swappable.{attribute}: not a conflict attribute; add it under "
                "splitting.conflicts or remove the key"
            )
    return problems


def _organization_problems(spec: Spec, orgs: Organizations) -> list[str]:
    problems = []
    if orgs.email_identifier and orgs.email_identifier not in spec.identifier_types:
        problems.append(
            f"organizations.email_identifier: unknown identifier type '{orgs.email_identifier}'; "
            f"use one of: {', '.join(spec.identifier_types)}"
        )
    for key in ("company_attribute", "account_attribute", "role_attribute"):
        attribute = getattr(orgs, key)
        if attribute and attribute not in spec.attribute_names:
            problems.append(
                f"organizations.{key}: no source maps attribute '{attribute}'; map it under "
                "sources[].attributes or remove the key"
            )
    return problems


def _matching_problems(spec: Spec, matching: Matching) -> list[str]:
    """Every attribute the matching stage compares or blocks on must be mapped somewhere."""
    known = spec.attribute_names
    hint = f"use one of: {', '.join(known)}" if known else "map attributes under sources[]"
    problems = [
        f"matching.comparisons.{name}: no source maps attribute '{name}'; {hint}"
        for name in matching.comparisons
        if name not in known
    ]
    for key, blocks in [
        ("blocking", matching.blocking),
        ("training.em_blocking", matching.training.em_blocking),
    ]:
        for i, block in enumerate(blocks):
            problems += [
                f"matching.{key}[{i}]: no source maps attribute '{name}'; {hint}"
                for name in block
                if name not in known
            ]
    return problems


def _service_problems(spec: Spec, service: Service) -> list[str]:
    """The inbox must be a source the service can append to and the batch can read back."""
    names = [source.name for source in spec.sources]
    if service.inbox_source not in names:
        return [
            f"service.inbox_source: no source named '{service.inbox_source}'; add an ndjson "
            f"folder source for the service's records or use one of: {', '.join(names)}"
        ]
    inbox = spec.source(service.inbox_source)
    where = f"service.inbox_source ({inbox.name})"
    problems = []
    if inbox.format != "ndjson":
        problems.append(
            f"{where}: format is {inbox.format}; the service appends ndjson lines: set "
            "the source's format to ndjson"
        )
    if not inbox.path.endswith("/"):
        problems.append(
            f"{where}: path '{inbox.path}' is not a folder; the service writes one batch "
            f"file per rotation: end the path with '/' (e.g. '{inbox.path.rstrip('/')}/')"
        )
    if inbox.updated_at_format:
        problems.append(
            f"{where}: remove updated_at_format; the service writes ISO 8601 timestamps"
        )
    if service.probabilistic and (spec.matching is None or not spec.matching.enabled):
        problems.append(
            "service.probabilistic: scoring needs the batch's trained model; add an enabled "
            "matching section or set service.probabilistic: false"
        )
    written = {inbox.key, inbox.updated_at, *SERVICE_COLUMNS} - {None}
    for key, mapping in {
        **{f"identifiers.{k}": v for k, v in inbox.identifiers.items()},
        **{f"attributes.{k}": v for k, v in inbox.attributes.items()},
        **{f"measures.{k}": v for k, v in inbox.measures.items()},
    }.items():
        try:
            clashes = sorted(set(pl.sql_expr(mapping).meta.root_names()) & written)
        except Exception as exc:  # Polars raises several types for unparseable SQL
            problems.append(f"{where}: {key} '{mapping}' is not a valid SQL expression ({exc})")
            continue
        if clashes:
            problems.append(
                f"{where}: {key} reads column(s) {', '.join(clashes)}, which the service "
                "writes itself (key, updated_at, assigned_resolved_id, data_hash); map "
                "another column"
            )
    return problems


def _truth_problems(spec: Spec) -> list[str]:
    if spec.truth and not spec.resolve(spec.truth.path).is_file():
        return [
            f"truth.path: file {spec.resolve(spec.truth.path)} not found; "
            "generate the sample or remove the truth section"
        ]
    return []
