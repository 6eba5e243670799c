"""Seeded generator of a noisy, multi-source retail customer world with ground truth.

Identity resolution can only be measured against known truth, and only stress-tested on data
that is as messy as production: format drift between systems, typos, nicknames, households
sharing a landline or a family mailbox, placeholder values typed by staff, duplicate and
keyless rows. This module fabricates such a world, writes it in the storage formats the
pipeline ingests, and records which person produced every keyed record in ``truth.csv``.

Everything is vectorised with numpy and polars (no per-row Python), so the same code serves a
2,000-record unit test and a 10,000,000-record load test.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import xlsxwriter

from customer360.sample import names

SOURCE_FILES: dict[str, str] = {
    "crm_customers": "crm/customers.csv",
    "ecommerce_orders": "ecommerce/orders.ndjson",
    "support_tickets": "support/tickets.csv",
    "pos_transactions": "pos/transactions.parquet",
    "marketing_contacts": "marketing/contacts.xlsx",
    "erp_customers": "erp/legacy.duckdb",
    "web_signups": "web/signups.json",
    "loyalty_members": "loyalty/members.tsv",
}
"""Source name (as used in truth entity keys) -> file path relative to the output directory."""

TRUTH_FILE = "truth.csv"

B2B_SHARE = 0.60
"""Share of people with an employer who buy for it, under the employer's B2B account."""

MARKETING_ROW_CAP = 200_000
"""Excel writing is row-by-row inside xlsxwriter, so the marketing sheet is capped to keep
very large samples fast; people beyond the cap simply never joined the marketing list."""

PLACEHOLDER_EMAILS: tuple[str, ...] = (
    f"noreply@{names.RETAILER_DOMAIN}",
    "test@test.com",
    "none@none.com",
    "N/A",
    "-",
)
"""Values staff and web forms put in an email field when the customer gave none."""

PLACEHOLDER_PHONES: tuple[str, ...] = ("0000000000", "1234567890", "N/A")
"""Values put in a phone field when the customer gave none."""

_DAY_SECONDS = 86_400
_EPOCH = date(1970, 1, 1)
_WINDOW_START = date(2022, 1, 1)
_WINDOW_END = date(2026, 1, 1)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"
_MARKETING_README = (
    "Contacts exported from the marketing platform; one row per subscriber who opted in."
)

_FIRST = pl.Series("first", [first for first, _ in names.FIRST_NAMES])
_NICKNAMES = pl.Series("nickname", [nickname for _, nickname in names.FIRST_NAMES], pl.String)
_LAST = pl.Series("last", names.LAST_NAMES)
_STREETS = pl.Series("street", names.STREET_NAMES)
_SUFFIX_FULL = pl.Series("suffix_full", [full for full, _ in names.STREET_SUFFIXES])
_SUFFIX_SHORT = pl.Series("suffix_short", [short for _, short in names.STREET_SUFFIXES])
_CITIES = pl.Series("city", [city for city, _ in names.CITY_POSTCODES])
_POSTCODES = pl.Series("postcode", [postcode for _, postcode in names.CITY_POSTCODES])
_COMPANY_NAMES = pl.Series("company", [company for company, _ in names.COMPANIES])
_COMPANY_DOMAINS = pl.Series("domain", [domain for _, domain in names.COMPANIES])
_LEGAL_ENDING = "(?i),?\\s+(?:{})\\.?$".format(
    "|".join(sorted({suffix.strip(" ,.") for suffix in names.LEGAL_SUFFIXES} | {"Company"}))
)
"""Matches the legal-form ending of a company name (" Inc", ", Inc.", " Corporation", ...)."""
_JOB_TITLES = pl.Series("job_title", names.JOB_TITLES)
_MAIL_DOMAINS = pl.Series("domain", [domain for domain, _ in names.FREE_MAIL_DOMAINS])
_MAIL_SHARES = np.array([share for _, share in names.FREE_MAIL_DOMAINS])
_AREA_CODES = np.array(names.AREA_CODES, dtype=np.int64)
_EXCHANGES = np.array([e for e in range(200, 1000) if e % 100 != 11 and e != 555], np.int64)

_PHONE_LAYOUTS: tuple[tuple[str, str, str], ...] = (
    ("(", ") ", "-"),
    ("", ".", "."),
    ("+1 ", " ", " "),
    ("", "", ""),
    ("1-", "-", "-"),
    ("", "-", "-"),
    ("+1", "", ""),
)
"""Phone layouts seen across systems as (prefix, separator after the area code, separator
after the exchange): (212) 555-0187, 212.555.0187, +1 212 555 0187, 2125550187, ..."""

_LOCAL_FORMATS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("{}.{}", ("first", "last")),
    ("{}{}", ("first", "last")),
    ("{}{}", ("initial", "last")),
    ("{}_{}", ("first", "last")),
    ("{}.{}{}", ("first", "last", "yy")),
    ("{}{}{}", ("first", "last_initial", "yy")),
    ("{}.{}", ("last", "first")),
    ("{}.{}", ("nickname", "last")),
    ("{}{}", ("first", "number")),
)
"""Mailbox local-part patterns as (template, slug columns)."""
_LOCAL_SHARES = np.array([0.25, 0.12, 0.10, 0.05, 0.12, 0.08, 0.05, 0.10, 0.13])
_WORK_FORMATS = (0, 2)
_FAMILY_FORMATS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("{}family", ("last",)),
    ("the{}s", ("last",)),
)


@dataclass(frozen=True)
class SampleSummary:
    """What a generation run produced, so callers can report and locate it."""

    out_dir: Path
    people: int  # people with at least one record in the truth file
    records: dict[str, int]
    truth_path: Path

    @property
    def total_records(self) -> int:
        """Rows written across all sources, malformed rows included."""
        return sum(self.records.values())


@dataclass(frozen=True)
class _Reach:
    """How many people a source sees and how many records each of them leaves there."""

    share: float
    counts: tuple[float, ...]
    """Probability of leaving 1, 2, ... records."""

    @property
    def records_per_person(self) -> float:
        return self.share * sum((i + 1) * p for i, p in enumerate(self.counts))


_CARD_SHARE_IN_STORE = 0.90
_CARD_SHARE_ONLINE_ONLY = 0.20
"""Shares of store shoppers and of everybody else who hold a loyalty card."""

_REACH: dict[str, _Reach] = {
    "crm_customers": _Reach(0.70, (0.95, 0.05)),
    "ecommerce_orders": _Reach(0.60, (0.45, 0.30, 0.15, 0.10)),
    "support_tickets": _Reach(0.25, (0.80, 0.20)),
    "pos_transactions": _Reach(0.45, (0.50, 0.30, 0.20)),
    "marketing_contacts": _Reach(0.30, (1.0,)),
    "erp_customers": _Reach(0.20, (1.0,)),
    "web_signups": _Reach(0.20, (1.0,)),
}
_IN_STORE = _REACH["pos_transactions"].share
_REACH["loyalty_members"] = _Reach(
    _IN_STORE * _CARD_SHARE_IN_STORE + (1 - _IN_STORE) * _CARD_SHARE_ONLINE_ONLY, (1.0,)
)
"""The register holds exactly the card holders; its expected share only sizes the population."""
_FALLBACK_SOURCE = "web_signups"
"""People no other source happened to see sign up on the web, so nobody is invisible."""


@dataclass(frozen=True)
class _EmailNoise:
    second: float
    work: float
    family: float
    typo: float
    upper: float
    capitalised: float
    padded: float
    placeholder: float
    missing: float


@dataclass(frozen=True)
class _PhoneNoise:
    formats: tuple[float, ...]
    """Weights over _PHONE_LAYOUTS."""
    landline: float
    slip: float
    placeholder: float
    missing: float


@dataclass(frozen=True)
class _NameNoise:
    nickname: float
    typo: float
    upper: float
    lower: float
    swapped: float


@dataclass(frozen=True)
class _LoyaltyNoise:
    present: float
    lower: float
    spaced: float
    padded: float
    mistyped: float


_CRM_EMAIL = _EmailNoise(0.12, 0.05, 0.05, 0.015, 0.04, 0.04, 0.03, 0.02, 0.05)
_ORDER_EMAIL = _EmailNoise(0.20, 0.04, 0.06, 0.010, 0.02, 0.06, 0.02, 0.005, 0.01)
_TICKET_EMAIL = _EmailNoise(0.20, 0.12, 0.05, 0.020, 0.04, 0.05, 0.05, 0.03, 0.06)
_MARKETING_EMAIL = _EmailNoise(0.15, 0.30, 0.05, 0.010, 0.03, 0.03, 0.02, 0.01, 0.02)
_ERP_EMAIL = _EmailNoise(0.10, 0.25, 0.05, 0.020, 0.60, 0.00, 0.04, 0.03, 0.15)
_WEB_EMAIL = _EmailNoise(0.30, 0.03, 0.04, 0.030, 0.03, 0.08, 0.05, 0.05, 0.00)
_MEMBER_EMAIL = _EmailNoise(0.20, 0.02, 0.08, 0.020, 0.03, 0.05, 0.03, 0.03, 0.10)

_CRM_PHONE = _PhoneNoise((0.30, 0.10, 0.05, 0.20, 0.05, 0.25, 0.05), 0.25, 0.010, 0.03, 0.08)
_ORDER_PHONE = _PhoneNoise((0.20, 0.05, 0.10, 0.35, 0.05, 0.20, 0.05), 0.10, 0.010, 0.01, 0.30)
_TICKET_PHONE = _PhoneNoise((0.25, 0.10, 0.10, 0.20, 0.05, 0.25, 0.05), 0.20, 0.015, 0.03, 0.25)
_POS_PHONE = _PhoneNoise((0.0, 0.0, 0.0, 0.85, 0.0, 0.15, 0.0), 0.30, 0.020, 0.04, 0.70)
_MARKETING_PHONE = _PhoneNoise((0.10, 0.05, 0.30, 0.10, 0.05, 0.10, 0.30), 0.0, 0.005, 0.01, 0.15)
_ERP_PHONE = _PhoneNoise((0.10, 0.0, 0.0, 0.40, 0.10, 0.40, 0.0), 0.35, 0.010, 0.05, 0.10)
_WEB_PHONE = _PhoneNoise((0.20, 0.10, 0.15, 0.25, 0.05, 0.15, 0.10), 0.05, 0.010, 0.04, 0.40)
_MEMBER_PHONE = _PhoneNoise((0.30, 0.10, 0.10, 0.25, 0.05, 0.15, 0.05), 0.30, 0.015, 0.03, 0.15)

_CRM_NAMES = _NameNoise(0.05, 0.02, 0.03, 0.02, 0.010)
_ORDER_NAMES = _NameNoise(0.25, 0.02, 0.03, 0.08, 0.010)
_TICKET_NAMES = _NameNoise(0.30, 0.03, 0.02, 0.12, 0.010)
_MARKETING_NAMES = _NameNoise(0.08, 0.01, 0.03, 0.02, 0.005)
_ERP_NAMES = _NameNoise(0.02, 0.02, 0.0, 0.0, 0.010)
_WEB_NAMES = _NameNoise(0.20, 0.02, 0.03, 0.15, 0.010)
_MEMBER_NAMES = _NameNoise(0.15, 0.02, 0.10, 0.02, 0.010)

_ORDER_LOYALTY = _LoyaltyNoise(0.50, 0.15, 0.15, 0.05, 0.020)
_POS_LOYALTY = _LoyaltyNoise(0.85, 0.02, 0.03, 0.02, 0.005)
_MEMBER_LOYALTY = _LoyaltyNoise(1.0, 0.05, 0.10, 0.02, 0.005)


def generate_sample(out_dir: Path, records: int = 20_000, seed: int = 42) -> SampleSummary:
    """Write the eight noisy source files plus ``truth.csv`` under ``out_dir``.

    ``records`` is the approximate total number of source rows (within about 10%); the number
    of people is derived from it, since each person leaves on average ~3.6 records across the
    sources. The same ``seed`` and ``records`` always produce the same data.

    The marketing workbook is capped at ``MARKETING_ROW_CAP`` (200,000) rows because Excel
    writing dominates the runtime at large sizes; people beyond the cap are simply not on the
    marketing list, and the people count is adjusted so the total still matches ``records``.

    Rows whose record key was blanked out (the CSV sources carry a few, for quarantine
    testing) are absent from the truth file; exact duplicate rows appear there once.
    """
    if records < 1:
        raise ValueError(f"records must be positive, got {records}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    population = _people_for(records)
    presence = _presence(population, _rng(seed, "presence"))
    people = _build_people(population, presence["pos_transactions"], _rng(seed, "people"))
    people = people.hstack(_accounts(people, _rng(seed, "accounts")))
    presence["loyalty_members"] = people["loyalty"].is_not_null().to_numpy()
    owners = _owners(presence, _rng(seed, "volumes"))
    truth_path = out_dir / TRUTH_FILE
    written: dict[str, int] = {}
    recorded: list[pl.Series] = []  # who left a record: some people reach no source
    with truth_path.open("wb") as truth_file:
        for source in _SOURCES:
            frame = source.build(people, owners[source.name], _rng(seed, source.name))
            target = out_dir / SOURCE_FILES[source.name]
            target.parent.mkdir(parents=True, exist_ok=True)
            source.write(frame.drop("_person"), target)
            truth = _truth(source.name, source.key, frame)
            truth.write_csv(truth_file, include_header=not written)
            recorded.append(truth["person_id"])
            written[source.name] = frame.height
    return SampleSummary(out_dir, pl.concat(recorded).n_unique(), written, truth_path)


def _rng(seed: int, stream: str) -> np.random.Generator:
    """Independent random stream per concern, so changing one source never reshuffles another."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


def _people_for(records: int) -> int:
    """Invert the expected records per person, accounting for the marketing row cap."""
    unseen = math.prod(1 - reach.share for reach in _REACH.values())
    per_person = sum(reach.records_per_person for reach in _REACH.values()) + unseen
    marketing = _REACH["marketing_contacts"].share
    people = records / per_person
    if people * marketing > MARKETING_ROW_CAP:
        people = (records - MARKETING_ROW_CAP) / (per_person - marketing)
    return max(1, round(people))


def _presence(population: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Decide which people each source has ever seen."""
    presence = {name: rng.random(population) < reach.share for name, reach in _REACH.items()}
    marketing = presence["marketing_contacts"]
    marketing[np.flatnonzero(marketing)[MARKETING_ROW_CAP:]] = False
    unseen = ~np.logical_or.reduce(list(presence.values()))
    presence[_FALLBACK_SOURCE] |= unseen
    return presence


def _owners(presence: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Person index of every record of every source (people repeat when they have several)."""
    owners = {}
    for name, seen in presence.items():
        members = np.flatnonzero(seen)
        counts = _REACH[name].counts
        owners[name] = np.repeat(members, 1 + rng.choice(len(counts), members.size, p=counts))
    return owners


# People -------------------------------------------------------------------------------------


def _build_people(population: int, in_store: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """The true attributes of every person, before any source mangles them."""
    household, head, rank = _households(population, rng)
    first = _skewed_choice(rng, len(_FIRST), population, 0.4)
    own_last = _skewed_choice(rng, len(_LAST), population, 0.5)
    takes_head_name = (rank > 0) & (rng.random(population) < 0.85)
    last = np.where(takes_head_name, own_last[head], own_last)
    people = pl.DataFrame(
        {
            "first": _FIRST.gather(first),
            "nickname": _NICKNAMES.gather(first),
            "last": _LAST.gather(last),
            "dob": _birth_dates(rank, rng),
        }
    )
    return pl.concat(
        [
            people,
            _addresses(household, rng),
            _emails(people, head, rank, rng),
            _phones(household, rng),
            pl.DataFrame({"loyalty": _loyalty_numbers(in_store, rng)}),
        ],
        how="horizontal",
    )


def _households(
    population: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group people into households of 1-4: (household id, index of its head, rank within)."""
    sizes = rng.choice(np.arange(1, 5), population, p=(0.50, 0.30, 0.12, 0.08))
    starts = np.cumsum(sizes) - sizes
    household = np.repeat(np.arange(population), sizes)[:population]
    head = starts[household]
    return household, head, np.arange(population) - head


def _skewed_choice(rng: np.random.Generator, size: int, n: int, skew: float) -> np.ndarray:
    """Zipf-like draw: early vocabulary entries are common, late ones rare, as with real names."""
    weights = 1.0 / np.arange(1, size + 1) ** skew
    return rng.choice(size, n, p=weights / weights.sum())


def _birth_dates(rank: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """Adults for the first two household members, grown-up children for the rest."""
    adult = _days_between(rng, rank.size, date(1945, 1, 1), date(2004, 1, 1))
    young = _days_between(rng, rank.size, date(1996, 1, 1), date(2008, 1, 1))
    return pl.Series("dob", np.where(rank < 2, adult, young), pl.Int32).cast(pl.Date)


def _days_between(rng: np.random.Generator, n: int, start: date, end: date) -> np.ndarray:
    return rng.integers((start - _EPOCH).days, (end - _EPOCH).days, n)


def _addresses(household: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """One address per household, shared by everybody living there."""
    homes = int(household.max()) + 1
    street = rng.integers(0, len(_STREETS), homes)[household]
    suffix = rng.integers(0, len(_SUFFIX_FULL), homes)[household]
    place = rng.integers(0, len(_CITIES), homes)[household]
    number = rng.integers(1, 2500, homes)[household]
    apartment = np.where(rng.random(homes) < 0.12, rng.integers(1, 40, homes), 0)[household]
    return pl.DataFrame(
        {
            "house_number": number,
            "street_name": _STREETS.gather(street),
            "suffix_full": _SUFFIX_FULL.gather(suffix),
            "suffix_short": _SUFFIX_SHORT.gather(suffix),
            "apartment": _masked(pl.Series(apartment).cast(pl.String), apartment > 0),
            "city": _CITIES.gather(place),
            "postcode": _POSTCODES.gather(place),
        }
    )


def _emails(
    people: pl.DataFrame, head: np.ndarray, rank: np.ndarray, rng: np.random.Generator
) -> pl.DataFrame:
    """Personal, work and family mailboxes; every address belongs to one owner (or couple)."""
    n = people.height
    slugs = _name_slugs(people, rng)
    first_format = rng.choice(len(_LOCAL_FORMATS), n, p=_LOCAL_SHARES)
    second_format = (first_format + rng.integers(1, len(_LOCAL_FORMATS), n)) % len(_LOCAL_FORMATS)
    has_email = rng.random(n) < 0.97
    has_second = has_email & (rng.random(n) < 0.40)
    company = rng.integers(0, len(_COMPANY_NAMES), n)
    works = rng.random(n) < 0.25
    household_size = np.bincount(head, minlength=n)[head]
    family_head = (rank == 0) & (household_size >= 2) & (rng.random(n) < 0.12)
    candidates = pl.concat(
        [
            _masked(
                _address(slugs, _LOCAL_FORMATS, first_format, _mail_domains(rng, n)), has_email
            ),
            _masked(
                _address(slugs, _LOCAL_FORMATS, second_format, _mail_domains(rng, n)), has_second
            ),
            _masked(_work_address(slugs, company, rng), works),
            _masked(_family_address(slugs, rng), family_head),
        ]
    )
    unique = _unique_addresses(candidates)
    family = unique.slice(3 * n, n).gather(head)
    return pl.DataFrame(
        {
            "email1": unique.slice(0, n),
            "email2": unique.slice(n, n),
            "work_email": unique.slice(2 * n, n),
            "family_email": _masked(family, rank < 2),
            "company": _masked(_COMPANY_NAMES.gather(company), works | (rng.random(n) < 0.15)),
        }
    )


def _accounts(people: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """B2B side of every person: employer account, job title, and a title since changed.

    Each employer has one account number shared by all of its buying staff. Everybody with an
    employer has a job title; a few have moved on to a newer one, which is what they later
    tell marketing. Drawn from a stream of its own, so the older attributes are unaffected.
    """
    n = people.height
    employer = people["company"].cast(pl.Enum(_COMPANY_NAMES)).to_physical().cast(pl.Int64)
    employed = employer.is_not_null().to_numpy()
    employer = employer.fill_null(0).to_numpy()
    numbers = rng.choice(np.arange(1, 100_000), len(_COMPANY_NAMES), replace=False)
    accounts = pl.Series(numbers).cast(pl.String).str.zfill(5)
    buyer = employed & (rng.random(n) < B2B_SHARE)
    titles = len(_JOB_TITLES)
    title = _skewed_choice(rng, titles, n, 0.6)
    promoted = rng.random(n) < 0.15
    latest = np.where(promoted, (title + rng.integers(1, titles, n)) % titles, title)
    return pl.DataFrame(
        {
            "account": _masked("ACC-" + accounts.gather(employer), buyer),
            "job_title": _masked(_JOB_TITLES.gather(title), employed),
            "latest_title": _masked(_JOB_TITLES.gather(latest), employed),
        }
    )


def _name_slugs(people: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Lower-case ASCII name fragments people build mailbox names from."""

    def slug(column: pl.Expr) -> pl.Expr:
        return column.str.to_lowercase().str.replace_all("[^a-z]", "")

    return people.select(
        first=slug(pl.col("first")),
        last=slug(pl.col("last")),
        nickname=slug(pl.coalesce("nickname", "first")),
        initial=slug(pl.col("first")).str.slice(0, 1),
        last_initial=slug(pl.col("last")).str.slice(0, 1),
        yy=(pl.col("dob").dt.year() % 100).cast(pl.String).str.zfill(2),
        number=pl.Series(rng.integers(1, 1000, people.height)).cast(pl.String),
    )


def _address(
    slugs: pl.DataFrame,
    formats: tuple[tuple[str, tuple[str, ...]], ...],
    chosen: np.ndarray,
    domains: pl.Series,
) -> pl.Series:
    """Assemble local@domain, the local part following the chosen pattern per row."""
    local = pl.repeat(None, slugs.height, dtype=pl.String, eager=True)
    for index, (template, columns) in enumerate(formats):
        rows = np.flatnonzero(chosen == index)
        local.scatter(rows, slugs[rows].select(pl.format(template, *columns)).to_series())
    return local + "@" + domains


def _mail_domains(rng: np.random.Generator, n: int) -> pl.Series:
    return _MAIL_DOMAINS.gather(rng.choice(len(_MAIL_DOMAINS), n, p=_MAIL_SHARES))


def _work_address(slugs: pl.DataFrame, company: np.ndarray, rng: np.random.Generator) -> pl.Series:
    formats = tuple(_LOCAL_FORMATS[i] for i in _WORK_FORMATS)
    chosen = (rng.random(slugs.height) < 0.3).astype(np.int64)
    return _address(slugs, formats, chosen, _COMPANY_DOMAINS.gather(company))


def _family_address(slugs: pl.DataFrame, rng: np.random.Generator) -> pl.Series:
    chosen = rng.integers(0, len(_FAMILY_FORMATS), slugs.height)
    return _address(slugs, _FAMILY_FORMATS, chosen, _mail_domains(rng, slugs.height))


def _unique_addresses(addresses: pl.Series) -> pl.Series:
    """Number repeated mailboxes (john.smith2@...) the way providers force people to."""
    present = np.flatnonzero(addresses.is_not_null().to_numpy())
    return _patch(addresses, present, _deduplicated)


def _deduplicated(addresses: pl.Series) -> pl.Series:
    """Renumber repeats until no address is left twice (a new number can hit an existing one)."""
    while True:
        repeats = np.flatnonzero(~addresses.is_first_distinct().to_numpy())
        if repeats.size == 0:
            return addresses
        addresses = _patch(addresses, repeats, _numbered)


def _numbered(addresses: pl.Series) -> pl.Series:
    """Suffix the n-th repeat of an address with n, just before the @."""
    address = pl.col("address")
    return (
        addresses.to_frame("address")
        .select(
            pl.format(
                "{}{}@{}",
                address.str.extract("^(.*)@"),
                address.cum_count().over("address"),
                address.str.extract("@(.*)$"),
            )
        )
        .to_series()
    )


def _phones(household: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """A personal mobile for most people and a landline shared by some households."""
    population = household.size
    homes = int(household.max()) + 1
    size = np.bincount(household, minlength=homes)
    has_landline = rng.random(homes) < np.where(size >= 2, 0.45, 0.15)
    numbers = pl.Series(_unique_phone_numbers(rng, population + homes)).cast(pl.String)
    landline = numbers.slice(population, homes).gather(household)
    return pl.DataFrame(
        {
            "mobile": _masked(numbers.slice(0, population), rng.random(population) < 0.93),
            "landline": _masked(landline, has_landline[household]),
        }
    )


def _unique_phone_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Valid NANP numbers (real area code, exchange 200-999 minus N11 and 555), all distinct."""
    numbers = _draw_phone_numbers(rng, n)
    while True:
        _, first_seen = np.unique(numbers, return_index=True)
        repeated = np.ones(n, dtype=bool)
        repeated[first_seen] = False
        if not repeated.any():
            return numbers
        numbers[repeated] = _draw_phone_numbers(rng, int(repeated.sum()))


def _draw_phone_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    area = rng.choice(_AREA_CODES, n)
    exchange = rng.choice(_EXCHANGES, n)
    return area * 10_000_000 + exchange * 10_000 + rng.integers(0, 10_000, n)


def _loyalty_numbers(in_store: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """Loyalty card digits: most store shoppers have a card, a few online-only people too."""
    population = in_store.size
    holds = rng.random(population) < np.where(
        in_store, _CARD_SHARE_IN_STORE, _CARD_SHARE_ONLINE_ONLY
    )
    digits = pl.Series(10_000 + rng.permutation(population)).cast(pl.String)
    return _masked(digits, holds)


# Series helpers -----------------------------------------------------------------------------


def _masked(values: pl.Series, keep: np.ndarray) -> pl.Series:
    """Null out the rows where ``keep`` is false."""
    return _patch(values, np.flatnonzero(~np.asarray(keep)), _nulls)


def _patch(
    values: pl.Series, rows: np.ndarray, transform: Callable[[pl.Series], pl.Series]
) -> pl.Series:
    """Return a copy of ``values`` where only ``rows`` are replaced by ``transform`` of them."""
    if rows.size == 0:
        return values
    patched = values.clone()
    patched.scatter(rows, transform(values.gather(rows)).cast(values.dtype))
    return patched


def _side_stream(rng: np.random.Generator) -> np.random.Generator:
    """A child stream for columns added to a source later.

    Spawning does not advance ``rng``, so every older column keeps exactly its former values.
    """
    return rng.spawn(1)[0]


def _pick(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """Row positions hit by a noise kind that affects ``share`` of rows."""
    return np.flatnonzero(rng.random(n) < share)


def _nulls(values: pl.Series) -> pl.Series:
    return pl.repeat(None, len(values), dtype=values.dtype, eager=True).rename(values.name)


def _upper(values: pl.Series) -> pl.Series:
    return values.str.to_uppercase()


def _lower(values: pl.Series) -> pl.Series:
    return values.str.to_lowercase()


def _capitalised(values: pl.Series) -> pl.Series:
    return values.str.slice(0, 1).str.to_uppercase() + values.str.slice(1)


def _one_of(options: tuple[str, ...], rng: np.random.Generator) -> Callable[[pl.Series], pl.Series]:
    """Transform replacing every value by a random pick among ``options``."""

    def replace(values: pl.Series) -> pl.Series:
        return _choose(options, rng, len(values)).rename(values.name)

    return replace


def _choose(options: tuple[str, ...], rng: np.random.Generator, n: int) -> pl.Series:
    return _labels(options, rng.integers(0, len(options), n))


def _labels(options: tuple[str, ...], index: np.ndarray) -> pl.Series:
    """Map small integer codes (booleans read as 0/1) to text, avoiding numpy string arrays."""
    return pl.Series(options, dtype=pl.String).gather(np.asarray(index, dtype=np.int64))


def _padded(rng: np.random.Generator) -> Callable[[pl.Series], pl.Series]:
    """Transform adding the stray leading/trailing blanks copy-paste leaves behind."""

    def pad(values: pl.Series) -> pl.Series:
        side = rng.integers(0, 3, len(values))
        before = _labels(("", " "), side != 1)
        after = _labels(("", " "), side != 0)
        return before + values + after

    return pad


def _typo(rng: np.random.Generator, alphabet: str = _LETTERS) -> Callable[[pl.Series], pl.Series]:
    """Transform making one keying slip per value: drop, replace or swap an inner character.

    The first character is never touched, mirroring how people rarely mistype an initial.
    """

    def slip(values: pl.Series) -> pl.Series:
        n = len(values)
        frame = pl.DataFrame(
            {
                "text": values,
                "kind": rng.integers(0, 3, n),
                "at": rng.random(n),
                "char": _choose(tuple(alphabet), rng, n),
            }
        )
        text = pl.col("text")
        length = text.str.len_chars()
        at = (1 + pl.col("at") * (length - 2)).floor().cast(pl.Int64)
        edited = (
            pl.when(pl.col("kind") == 0)
            .then(text.str.slice(0, at) + text.str.slice(at + 1))
            .when(pl.col("kind") == 1)
            .then(text.str.slice(0, at) + pl.col("char") + text.str.slice(at + 1))
            .otherwise(_swap_at(text, at))
        )
        return frame.select(pl.when(length >= 3).then(edited).otherwise(text)).to_series()

    return slip


def _swap_at(text: pl.Expr, at: pl.Expr) -> pl.Expr:
    """Swap the characters at positions ``at`` and ``at + 1``."""
    return (
        text.str.slice(0, at)
        + text.str.slice(at + 1, 1)
        + text.str.slice(at, 1)
        + text.str.slice(at + 2)
    )


def _datetimes(rng: np.random.Generator, n: int, opens: int = 0, closes: int = 24) -> pl.Series:
    """Timestamps in the 2022-2025 window, within the given opening hours."""
    days = _days_between(rng, n, _WINDOW_START, _WINDOW_END)
    seconds = days * _DAY_SECONDS + rng.integers(opens * 3600, closes * 3600, n)
    return pl.Series(seconds * 1_000_000).cast(pl.Datetime("us"))


def _dates(rng: np.random.Generator, n: int) -> pl.Series:
    days = _days_between(rng, n, _WINDOW_START, _WINDOW_END)
    return pl.Series(days, dtype=pl.Int32).cast(pl.Date)


def _keyed_in_time_order(
    frame: pl.DataFrame, key: str, prefix: str, stamp: str, layout: str, width: int = 7
) -> pl.DataFrame:
    """Rows in time order, numbered (``_serial``) into a new first column ``key``, with the
    time stamp last, as text in the source's own ``layout``."""
    return frame.sort(stamp, maintain_order=True).select(
        "_person",
        _serial(prefix, width).alias(key),
        pl.exclude("_person", stamp),
        pl.col(stamp).dt.strftime(layout),
    )


def _serial(prefix: str, width: int) -> pl.Expr:
    """Sequential text keys (C0000001, ...) in current row order."""
    number = pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(width)
    return pl.format(prefix + "{}", number)


# Noisy fields -------------------------------------------------------------------------------


def _email_field(records: pl.DataFrame, rng: np.random.Generator, noise: _EmailNoise) -> pl.Series:
    """The address a system captured: often not the primary one, and often mangled."""
    n = records.height
    kind = pl.Series(
        np.searchsorted(
            np.cumsum([noise.work, noise.family, noise.second]), rng.random(n), side="right"
        )
    )
    email = records.select(
        pl.coalesce(
            pl.when(kind == 0)
            .then(pl.col("work_email"))
            .when(kind == 1)
            .then(pl.col("family_email"))
            .when(kind == 2)
            .then(pl.col("email2")),
            pl.col("email1"),
        )
    ).to_series()
    email = _patch(email, _pick(rng, n, noise.typo), _email_typo(rng))
    email = _patch(email, _pick(rng, n, noise.upper), _upper)
    email = _patch(email, _pick(rng, n, noise.capitalised), _capitalised)
    email = _patch(email, _pick(rng, n, noise.padded), _padded(rng))
    email = _patch(email, _pick(rng, n, noise.placeholder), _one_of(PLACEHOLDER_EMAILS, rng))
    return _patch(email, _pick(rng, n, noise.missing), _nulls)


def _email_typo(rng: np.random.Generator) -> Callable[[pl.Series], pl.Series]:
    """Transform mistyping either the mailbox name or the provider (gmial.com)."""
    typo = _typo(rng)

    def slip(values: pl.Series) -> pl.Series:
        parts = values.to_frame("email").select(
            local=pl.col("email").str.extract("^(.*)@"),
            label=pl.col("email").str.extract("@([^.]*)"),
            rest=pl.col("email").str.extract(r"@[^.]*(\..*)$"),
        )
        in_domain = pl.Series(rng.random(len(values)) < 0.4)
        local, label = typo(parts["local"]), typo(parts["label"])
        return parts.select(
            pl.format(
                "{}@{}{}",
                pl.when(in_domain).then(pl.col("local")).otherwise(pl.lit(local)),
                pl.when(in_domain).then(pl.lit(label)).otherwise(pl.col("label")),
                pl.col("rest"),
            )
        ).to_series()

    return slip


def _phone_field(records: pl.DataFrame, rng: np.random.Generator, noise: _PhoneNoise) -> pl.Series:
    """The number a system captured, in that system's habitual layout."""
    n = records.height
    landline_first = pl.Series(rng.random(n) < noise.landline)
    digits = records.select(
        pl.when(landline_first)
        .then(pl.coalesce("landline", "mobile"))
        .otherwise(pl.coalesce("mobile", "landline"))
    ).to_series()
    digits = _patch(digits, _pick(rng, n, noise.slip), _subscriber_slip(rng))
    weights = np.asarray(noise.formats) / sum(noise.formats)
    phone = _phone_layout(digits, rng.choice(len(_PHONE_LAYOUTS), n, p=weights))
    phone = _patch(phone, _pick(rng, n, noise.placeholder), _one_of(PLACEHOLDER_PHONES, rng))
    return _patch(phone, _pick(rng, n, noise.missing), _nulls)


def _subscriber_slip(rng: np.random.Generator) -> Callable[[pl.Series], pl.Series]:
    """Transform swapping two adjacent digits of the last four: still valid, now someone else."""

    def slip(values: pl.Series) -> pl.Series:
        at = pl.Series(6 + rng.integers(0, 3, len(values)))
        return values.to_frame("digits").select(_swap_at(pl.col("digits"), pl.lit(at))).to_series()

    return slip


def _phone_layout(digits: pl.Series, layout: np.ndarray) -> pl.Series:
    prefix, first, second = (
        _labels(tuple(parts[i] for parts in _PHONE_LAYOUTS), layout) for i in range(3)
    )
    pieces = [prefix, digits.str.slice(0, 3), first, digits.str.slice(3, 3), second]
    return pl.select(
        pl.concat_str([*map(pl.lit, pieces), pl.lit(digits.str.slice(6, 4))])
    ).to_series()


def _name_fields(
    records: pl.DataFrame, rng: np.random.Generator, noise: _NameNoise
) -> tuple[pl.Series, pl.Series]:
    """(first, last) as a system captured them: nicknames, slips, shouting, swapped fields."""
    n = records.height
    nickname = pl.Series(rng.random(n) < noise.nickname)
    first = records.select(
        pl.when(nickname).then(pl.coalesce("nickname", "first")).otherwise(pl.col("first"))
    ).to_series()
    last = records["last"]
    first = _patch(first, _pick(rng, n, noise.typo), _typo(rng))
    last = _patch(last, _pick(rng, n, noise.typo), _typo(rng))
    for share, transform in ((noise.upper, _upper), (noise.lower, _lower)):
        rows = _pick(rng, n, share)
        first, last = _patch(first, rows, transform), _patch(last, rows, transform)
    swapped = pl.Series(rng.random(n) < noise.swapped)
    frame = pl.DataFrame({"first": first, "last": last})
    return (
        frame.select(pl.when(swapped).then("last").otherwise("first")).to_series(),
        frame.select(pl.when(swapped).then("first").otherwise("last")).to_series(),
    )


def _full_name(
    records: pl.DataFrame,
    rng: np.random.Generator,
    noise: _NameNoise,
    missing: float,
    first_only: float = 0.0,
) -> pl.Series:
    """One free-text name field ("First Last"): sometimes only the first name, or nothing."""
    first, last = _name_fields(records, rng, noise)
    last = _patch(last, _pick(rng, records.height, first_only), _nulls)
    joined = pl.select(
        pl.concat_str([pl.lit(first), pl.lit(last)], separator=" ", ignore_nulls=True)
    )
    name = joined.to_series()
    return _patch(_masked(name, (name != "").to_numpy()), _pick(rng, len(name), missing), _nulls)


def _loyalty_field(
    records: pl.DataFrame, rng: np.random.Generator, noise: _LoyaltyNoise
) -> pl.Series:
    """Loyalty ids as typed or scanned: "LY10042", "ly 10042", " LY10042", a wrong digit."""
    n = records.height
    digits = _masked(records["loyalty"], rng.random(n) < noise.present)
    digits = _patch(digits, _pick(rng, n, noise.mistyped), _typo(rng, _DIGITS))
    prefix = _labels(("LY", "ly"), rng.random(n) < noise.lower)
    spacer = _labels(("", " "), rng.random(n) < noise.spaced)
    lead = _labels(("", " "), rng.random(n) < noise.padded)
    return pl.select(
        pl.format("{}{}{}{}", pl.lit(lead), pl.lit(prefix), pl.lit(spacer), pl.lit(digits))
    ).to_series()


def _account_field(records: pl.DataFrame, rng: np.random.Generator) -> pl.Series:
    """B2B account numbers as keyed: "ACC-00042", now and then "acc-00042", " ACC-00042"..."""
    n = records.height
    account = _patch(records["account"], _pick(rng, n, 0.04), _unhyphenated)
    account = _patch(account, _pick(rng, n, 0.04), _lower)
    return _patch(account, _pick(rng, n, 0.03), _padded(rng))


def _unhyphenated(values: pl.Series) -> pl.Series:
    return values.str.replace_all("-", "", literal=True)


def _company_field(records: pl.DataFrame, rng: np.random.Generator) -> pl.Series:
    """Employer names as people type them: "Acme Corporation", "Acme", "ACME, Inc."..."""
    return _patch(records["company"], _pick(rng, records.height, 0.30), _retyped_company(rng))


def _retyped_company(rng: np.random.Generator) -> Callable[[pl.Series], pl.Series]:
    """Transform keeping a company's bare name, maybe shouted, with any legal ending or none."""
    endings = ("", *names.LEGAL_SUFFIXES)
    weights = np.array([0.35] + [0.65 / len(names.LEGAL_SUFFIXES)] * len(names.LEGAL_SUFFIXES))

    def retype(values: pl.Series) -> pl.Series:
        n = len(values)
        bare = _patch(values.str.replace(_LEGAL_ENDING, ""), _pick(rng, n, 0.25), _upper)
        return bare + _labels(endings, rng.choice(len(endings), n, p=weights))

    return retype


def _street_field(records: pl.DataFrame, rng: np.random.Generator) -> pl.Series:
    n = records.height
    spelled_out = pl.Series(rng.random(n) < 0.3)
    street = records.select(
        pl.concat_str(
            [
                pl.col("house_number").cast(pl.String),
                pl.col("street_name"),
                pl.when(spelled_out).then("suffix_full").otherwise("suffix_short"),
                pl.format("Apt {}", "apartment"),
            ],
            separator=" ",
            ignore_nulls=True,
        )
    ).to_series()
    street = _patch(street, _pick(rng, n, 0.03), _upper)
    return _patch(street, _pick(rng, n, 0.03), _nulls)


def _birth_date_field(records: pl.DataFrame, rng: np.random.Generator) -> pl.Series:
    """ISO birth dates, with the occasional day/month mix-up and many blanks."""
    dob = _patch(records["dob"], _pick(rng, records.height, 0.01), _day_month_swapped)
    return _patch(dob.dt.strftime("%Y-%m-%d"), _pick(rng, records.height, 0.12), _nulls)


def _day_month_swapped(values: pl.Series) -> pl.Series:
    return (
        values.to_frame("d")
        .select(
            pl.when(pl.col("d").dt.day() <= 12)
            .then(pl.date(pl.col("d").dt.year(), pl.col("d").dt.day(), pl.col("d").dt.month()))
            .otherwise(pl.col("d"))
        )
        .to_series()
    )


def _records(people: pl.DataFrame, owners: np.ndarray, columns: tuple[str, ...]) -> pl.DataFrame:
    """One row of the true person attributes a source captures, per source record."""
    return people.select(columns)[owners]


# Sources ------------------------------------------------------------------------------------


_EMAILS = ("email1", "email2", "work_email", "family_email")
_PHONES = ("mobile", "landline")
_NAMES = ("first", "nickname", "last")
_CONTACT = _EMAILS + _PHONES + _NAMES
_STREET = ("house_number", "street_name", "suffix_full", "suffix_short", "apartment")
_CRM_EXTRA = ("dob", "postcode", "city", "account", "job_title")


def _crm(people: pl.DataFrame, owners: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    records = _records(people, owners, _CONTACT + _STREET + _CRM_EXTRA)
    n = records.height
    side = _side_stream(rng)
    first, last = _name_fields(records, rng, _CRM_NAMES)
    buyer = records["account"].is_not_null().to_numpy()
    frame = pl.DataFrame(
        {
            "_person": owners,
            "email": _email_field(records, rng, _CRM_EMAIL),
            "phone": _phone_field(records, rng, _CRM_PHONE),
            "first_name": _patch(first, _pick(rng, n, 0.01), _nulls),
            "last_name": _patch(last, _pick(rng, n, 0.005), _nulls),
            "date_of_birth": _birth_date_field(records, rng),
            "street": _street_field(records, rng),
            "postcode": _patch(records["postcode"], _pick(rng, n, 0.02), _nulls),
            "city": _patch(
                _patch(records["city"], _pick(rng, n, 0.04), _upper), _pick(rng, n, 0.02), _nulls
            ),
            "created_at": _datetimes(rng, n),
            "account_id": _account_field(records, side),
            "job_title": _patch(_masked(records["job_title"], buyer), _pick(side, n, 0.03), _nulls),
        }
    ).sort("created_at", maintain_order=True)
    frame = frame.select(
        "_person",
        _serial("C", 7).alias("customer_id"),
        pl.exclude("_person", "created_at", "account_id", "job_title"),
        pl.col("created_at").dt.strftime("%Y-%m-%d %H:%M:%S"),
        "account_id",
        "job_title",
    )
    return _with_malformed_rows(frame, "customer_id", rng)


def _orders(people: pl.DataFrame, owners: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    records = _records(people, owners, _CONTACT + ("loyalty",))
    n = records.height
    frame = pl.DataFrame(
        {
            "_person": owners,
            "customer_email": _email_field(records, rng, _ORDER_EMAIL),
            "customer_name": _full_name(records, rng, _ORDER_NAMES, missing=0.03),
            "phone_number": _phone_field(records, rng, _ORDER_PHONE),
            "loyalty_id": _loyalty_field(records, rng, _ORDER_LOYALTY),
            "order_total": np.round(rng.lognormal(4.1, 0.8, n), 2),
            "order_date": _datetimes(rng, n),
        }
    )
    frame = _keyed_in_time_order(
        frame, "order_id", "O", "order_date", "%Y-%m-%dT%H:%M:%SZ", width=8
    )
    return _with_malformed_rows(frame, "order_id", rng, missing_keys=0.0)


def _tickets(people: pl.DataFrame, owners: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    records = _records(people, owners, _CONTACT)
    n = records.height
    frame = pl.DataFrame(
        {
            "_person": owners,
            "contact_email": _email_field(records, rng, _TICKET_EMAIL),
            "contact_phone": _phone_field(records, rng, _TICKET_PHONE),
            "contact_name": _full_name(records, rng, _TICKET_NAMES, missing=0.04, first_only=0.1),
            "subject": _choose(names.SUPPORT_SUBJECTS, rng, n),
            "opened_at": _datetimes(rng, n),
        }
    )
    frame = _keyed_in_time_order(frame, "ticket_id", "T", "opened_at", "%m/%d/%Y %H:%M")
    return _with_malformed_rows(frame, "ticket_id", rng)


def _pos(people: pl.DataFrame, owners: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    records = _records(people, owners, _PHONES + ("loyalty",))
    n = records.height
    frame = pl.DataFrame(
        {
            "_person": owners,
            "loyalty_number": _loyalty_field(records, rng, _POS_LOYALTY),
            "phone": _phone_field(records, rng, _POS_PHONE),
            "store_id": pl.Series(rng.integers(1, 41, n)).cast(pl.String).str.zfill(3),
            "amount": np.round(rng.lognormal(3.4, 0.9, n), 2),
            "transaction_ts": _datetimes(rng, n, opens=8, closes=21),
        }
    ).sort("transaction_ts", maintain_order=True)
    identified = pl.col("loyalty_number").is_not_null() | pl.col("phone").is_not_null()
    return frame.filter(identified).select(
        "_person",
        (pl.int_range(pl.len(), dtype=pl.Int64) + 1_000_001).alias("transaction_id"),
        "loyalty_number",
        "phone",
        pl.format("S{}", "store_id").alias("store_id"),
        "amount",
        "transaction_ts",
    )


def _marketing(people: pl.DataFrame, owners: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    records = _records(people, owners, _CONTACT + ("company", "latest_title"))
    n = records.height
    side = _side_stream(rng)
    first, last = _name_fields(records, rng, _MARKETING_NAMES)
    company = _patch(_company_field(records, side), _pick(rng, n, 0.05), _upper)
    frame = pl.DataFrame(
        {
            "_person": owners,
            "Email Address": _email_field(records, rng, _MARKETING_EMAIL),
            "Mobile": _phone_field(records, rng, _MARKETING_PHONE),
            "First Name": first,
            "Last Name": _patch(last, _pick(rng, n, 0.03), _nulls),
            "Company": _patch(company, _pick(rng, n, 0.10), _nulls),
            "Opt-in Date": _dates(rng, n),
        }
    )
    title = _masked(records["latest_title"], frame["Company"].is_not_null().to_numpy())
    frame = frame.insert_column(
        frame.get_column_index("Company") + 1,
        _patch(title, _pick(side, n, 0.03), _nulls).alias("Job Title"),
    )
    return _keyed_in_time_order(frame, "Contact ID", "M", "Opt-in Date", "%Y-%m-%d")


def _erp(people: pl.DataFrame, owners: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    records = _records(people, owners, _CONTACT + ("postcode",))
    n = records.height
    first, last = _name_fields(records, rng, _ERP_NAMES)
    name = pl.select(
        pl.concat_str([pl.lit(last), pl.lit(first)], separator=", ", ignore_nulls=True)
    ).to_series()
    zip_plus_four = pl.format("{}-{}", "postcode", pl.lit(rng.integers(1000, 10_000, n)))
    frame = pl.DataFrame(
        {
            "_person": owners,
            "CUST_NO": pl.Series(rng.permutation(n) + 1, dtype=pl.Int32),
            "EMAIL_ADDR": _email_field(records, rng, _ERP_EMAIL),
            "TEL": _phone_field(records, rng, _ERP_PHONE),
            "NAME": _patch(name.str.to_uppercase(), _pick(rng, n, 0.01), _nulls),
            "ZIP": records.select(
                pl.when(pl.lit(pl.Series(rng.random(n) < 0.2)))
                .then(zip_plus_four)
                .otherwise("postcode")
            ).to_series(),
            "LAST_CHANGE": _dates(rng, n),
        }
    )
    return frame.with_columns(_patch(frame["ZIP"], _pick(rng, n, 0.03), _nulls)).sort("CUST_NO")


def _web(people: pl.DataFrame, owners: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    records = _records(people, owners, _CONTACT)
    n = records.height
    frame = pl.DataFrame(
        {
            "_person": owners,
            "email": _email_field(records, rng, _WEB_EMAIL),
            "phone": _phone_field(records, rng, _WEB_PHONE),
            "full_name": _full_name(records, rng, _WEB_NAMES, missing=0.05),
            "signed_up_at": _datetimes(rng, n),
        }
    )
    return _keyed_in_time_order(frame, "signup_id", "W", "signed_up_at", "%Y-%m-%dT%H:%M:%S")


def _loyalty_members(
    people: pl.DataFrame, owners: np.ndarray, rng: np.random.Generator
) -> pl.DataFrame:
    """The loyalty programme's register: one enrolment form per card, typed in at the till."""
    records = _records(people, owners, _CONTACT + ("loyalty", "dob", "postcode"))
    n = records.height
    first, last = _name_fields(records, rng, _MEMBER_NAMES)
    frame = pl.DataFrame(
        {
            "_person": owners,
            "card_number": _loyalty_field(records, rng, _MEMBER_LOYALTY),
            "first_name": first,
            "last_name": _patch(last, _pick(rng, n, 0.01), _nulls),
            "email": _email_field(records, rng, _MEMBER_EMAIL),
            "phone": _phone_field(records, rng, _MEMBER_PHONE),
            "birthday": _patch(_birth_date_field(records, rng), _pick(rng, n, 0.30), _nulls),
            "zip": _patch(records["postcode"], _pick(rng, n, 0.05), _nulls),
            "enrolled_on": _dates(rng, n),
        }
    )
    return _keyed_in_time_order(frame, "member_id", "L", "enrolled_on", "%Y-%m-%d")


def _with_malformed_rows(
    frame: pl.DataFrame,
    key: str,
    rng: np.random.Generator,
    duplicates: float = 0.006,
    missing_keys: float = 0.004,
) -> pl.DataFrame:
    """Blank some record keys and repeat some rows verbatim, as flaky exports do."""
    n = frame.height
    blanked = max(1, round(n * missing_keys)) if missing_keys else 0
    repeated = max(1, round(n * duplicates))
    if n <= blanked + repeated:
        return frame
    order = rng.permutation(n)
    keyed = frame.with_columns(_patch(frame[key], order[:blanked], _nulls))
    rows = np.sort(np.concatenate([np.arange(n), order[blanked : blanked + repeated]]))
    return keyed[rows]


# Writers ------------------------------------------------------------------------------------


def _write_csv(frame: pl.DataFrame, path: Path) -> None:
    frame.write_csv(path)


def _write_ndjson(frame: pl.DataFrame, path: Path) -> None:
    frame.write_ndjson(path)


def _write_json_array(frame: pl.DataFrame, path: Path) -> None:
    frame.write_json(path)


def _write_tsv(frame: pl.DataFrame, path: Path) -> None:
    frame.write_csv(path, separator="\t")


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    frame.write_parquet(path)


def _write_workbook(frame: pl.DataFrame, path: Path) -> None:
    """A ``contacts`` sheet plus a ``readme`` sheet, like workbooks people actually export."""
    with xlsxwriter.Workbook(path) as workbook:
        workbook.set_properties({"created": datetime(2025, 12, 31)})
        frame.write_excel(workbook, worksheet="contacts")
        workbook.add_worksheet("readme").write(0, 0, _MARKETING_README)


def _write_duckdb(frame: pl.DataFrame, path: Path) -> None:
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as connection:
        connection.register("erp_rows", frame.to_arrow())
        connection.execute("CREATE TABLE customers AS SELECT * FROM erp_rows")


def _truth(source: str, key: str, frame: pl.DataFrame) -> pl.DataFrame:
    """entity_key -> person_id for every row that has a key (each key once)."""
    return (
        frame.filter(pl.col(key).is_not_null())
        .select(
            entity_key=pl.format(f"{source}:{{}}", pl.col(key).cast(pl.String)),
            person_id=pl.format("P{}", (pl.col("_person") + 1).cast(pl.String).str.zfill(7)),
        )
        .unique("entity_key", keep="first", maintain_order=True)
    )


@dataclass(frozen=True)
class _Source:
    name: str
    key: str
    build: Callable[[pl.DataFrame, np.ndarray, np.random.Generator], pl.DataFrame]
    write: Callable[[pl.DataFrame, Path], None]


_SOURCES: tuple[_Source, ...] = (
    _Source("crm_customers", "customer_id", _crm, _write_csv),
    _Source("ecommerce_orders", "order_id", _orders, _write_ndjson),
    _Source("support_tickets", "ticket_id", _tickets, _write_csv),
    _Source("pos_transactions", "transaction_id", _pos, _write_parquet),
    _Source("marketing_contacts", "Contact ID", _marketing, _write_workbook),
    _Source("erp_customers", "CUST_NO", _erp, _write_duckdb),
    _Source("web_signups", "signup_id", _web, _write_json_array),
    _Source("loyalty_members", "member_id", _loyalty_members, _write_tsv),
)
