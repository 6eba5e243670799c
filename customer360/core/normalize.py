"""Identifier normalizers: raw text in, canonical text out (null when not a valid value).

Each normalizer is a vectorised function over a Polars Series so that the batch path,
the tests and the resolve service share exactly the same rules. Normalization is
idempotent: normalizing a normalized value gives it back unchanged.
"""

from __future__ import annotations

import functools

import phonenumbers
import polars as pl

from customer360.core.spec import IdentifierType

_LOCAL_PART = r"[^@\s<>(),;:\"\[\]]+"
_DOMAIN_LABEL = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
# Control and format characters (NUL, BOM, zero-width space) that copy-paste leaves in
# addresses: removed, so that they never make one mailbox two identifiers.
INVISIBLE = r"[\p{Cc}\p{Cf}]"
EMAIL_PATTERN = rf"^{_LOCAL_PART}@{_DOMAIN_LABEL}(\.{_DOMAIN_LABEL})*\.[a-z]{{2,}}$"


# '+' and at most 15 digits (ITU-T E.164).
E164_MAX_LENGTH = 16
# Regions where a national number is a 10-digit NANP number with country code 1.
NANP_REGIONS = frozenset({"US", "CA"})


def normalize(values: pl.Series, id_type: IdentifierType, default_region: str) -> pl.Series:
    """Normalize raw identifier values with the identifier type's normalizer."""
    text = values.cast(pl.String)
    if id_type.normalizer == "phone":
        return normalize_phone(text, id_type.region or default_region, id_type.phone_validation)
    if id_type.normalizer == "email":
        return normalize_email(text)
    return _evaluate(text, _text_normalizer(id_type.normalizer, id_type.expression))


@functools.cache
def _text_normalizer(normalizer: str, expression: str | None) -> pl.Expr:
    """The normalizers other than email and phone, as one expression over ``value``
    (built once per kind: parsing an expression costs as much as applying it to a value)."""
    value = pl.col("value")
    match normalizer:
        case "upper":
            return _collapse_spaces(value).str.to_uppercase()
        case "lower":
            return _collapse_spaces(value).str.to_lowercase()
        case "trim":
            return _collapse_spaces(value)
        case "digits":
            return _none_if_empty(value.str.replace_all(r"\D", ""))
        case "expression":
            return _none_if_empty(pl.sql_expr(expression).cast(pl.String).str.strip_chars())
    raise AssertionError(f"unhandled normalizer {normalizer}")


def _evaluate(values: pl.Series, *steps: pl.Expr) -> pl.Series:
    """Expressions over ``value`` applied to a Series, each step to the result of the
    last. Few calls into Polars, each computing a value once: a call costs tens of
    microseconds whatever its size, and the resolve service normalizes one value at a
    time — but a step that repeats a sub-expression computes it once per repetition
    (an email's cleaning repeated in its pattern test costs a million addresses 0.7 s
    more than a second step, and so does testing the pattern with ``extract``)."""
    frame = pl.DataFrame({"value": values})
    for step in steps:
        frame = frame.select(step.alias("value"))
    return frame.to_series().alias(values.name)


def normalize_email(values: pl.Series) -> pl.Series:
    """Lower-case, trimmed, without ``mailto:`` or angle brackets; null unless it looks
    like ``local@domain.tld``. No provider-specific rewriting (dots, plus tags): that
    would merge addresses that really are different mailboxes on most providers."""
    return _evaluate(values, *_EMAIL_STEPS)


_EMAIL_STEPS = (
    pl.col("value")
    .str.replace_all(INVISIBLE, "")
    .str.strip_chars()
    .str.to_lowercase()
    .str.replace(r"^mailto:", "")
    .str.strip_chars("<> \t"),
    pl.when(pl.col("value").str.contains(EMAIL_PATTERN)).then(pl.col("value")),
)


def normalize_phone(values: pl.Series, region: str, validation: str = "possible") -> pl.Series:
    """E.164 via the phonenumbers library; null when it is not a phone number.

    phonenumbers is a per-value Python routine, so it runs once per distinct value after
    reducing each value to the characters that matter (digits, a leading '+', an
    extension marker): '(212) 555-0187' and '212.555.0187' cost one parse, not two.
    ``validation`` 'possible' checks the length of a full number (test data often uses
    unassigned ranges such as 555); 'valid' also requires an assigned number range.

    For North American regions with 'possible' validation, the overwhelmingly common
    plain 10-digit forms are converted by a vectorised rule that gives exactly what
    phonenumbers gives (a test compares the two); only the rest is parsed one by one.
    """
    fast = _NANP_FAST if region in NANP_REGIONS and validation == "possible" else _NO_FAST
    stages = pl.DataFrame({"value": values}).select(_PHONE_REDUCED).with_columns(fast)
    reduced, fast_values = stages.get_column("reduced"), stages.get_column("fast")
    # the few values left are gathered, parsed once per distinct value and put back
    pending_rows = (fast_values.is_null() & reduced.is_not_null()).arg_true()
    if pending_rows.is_empty():
        return fast_values.alias(values.name)
    pending = reduced.gather(pending_rows)
    distinct = pending.unique()
    parsed = pl.Series(
        [phone_e164(value, region, validation) for value in distinct.to_list()], dtype=pl.String
    )
    e164 = fast_values.scatter(pending_rows, pending.replace_strict(distinct, parsed))
    return e164.alias(values.name)


# Built once: constructing expressions costs as much as running them on one value.
# Digits, '+' and extension markers: what phonenumbers reads.
_PHONE_REDUCED = (
    pl.col("value").str.replace_all(r"[^0-9+xX#]", "").str.to_lowercase().alias("reduced")
)
# E.164 for '2125550187', '12125550187' and '+12125550187' (an optional '1' or '+1'
# before a 10-digit number whose area code starts 2-9); null for anything else.
_NANP_FAST = ("+1" + pl.col("reduced").str.extract(r"^(?:\+?1)?([2-9]\d{9})$", 1)).alias("fast")
_NO_FAST = pl.lit(None, dtype=pl.String).alias("fast")


def phone_e164(value: str, region: str, validation: str = "possible") -> str | None:
    """One phone number to E.164 with phonenumbers — the reference the batch path follows.

    A result must be its own normal form: a few malformed inputs ('+44 0812…', where the
    trunk 0 should not follow the country code) format to a number that parses
    differently again; those are rejected rather than stored in an unstable form.
    """
    e164 = _e164_once(value, region, validation)
    if e164 is None or _e164_once(e164, region, validation) != e164:
        return None
    return e164


def _e164_once(value: str, region: str, validation: str) -> str | None:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    check = phonenumbers.is_valid_number if validation == "valid" else _is_diallable
    if number.national_number == 0 or not check(number):
        return None  # all zeros is a placeholder, not a number
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164 if len(e164) <= E164_MAX_LENGTH else None


def _is_diallable(number: phonenumbers.PhoneNumber) -> bool:
    """Possible as a full number — not merely a local number missing its area code."""
    reason = phonenumbers.is_possible_number_with_reason(number)
    return reason == phonenumbers.ValidationResult.IS_POSSIBLE


def _collapse_spaces(value: pl.Expr) -> pl.Expr:
    return _none_if_empty(value.str.replace_all(r"\s+", " ").str.strip_chars())


def _none_if_empty(value: pl.Expr) -> pl.Expr:
    return pl.when(value != "").then(value)
