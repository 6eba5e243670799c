"""Property-based tests (hypothesis) for the normalizers and the spec loader.

The normalizers run over whatever text the sources hold, so they must never raise and
must keep every value in its place; the spec loader must turn every broken file into a
SpecError that names the file. Each normalizer sees at least MIN_VALUES_PER_NORMALIZER
generated values: examples are lists, normalized in one vectorised call, and the values
are counted as they are exercised.
"""

from __future__ import annotations

import copy
import os
import re
import string
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any, get_args

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from customer360.core import spec as spec_module
from customer360.core.normalize import normalize, normalize_email, phone_e164
from customer360.core.spec import IdentifierType, Spec, SpecError, load_spec

from .conftest import NORMALIZERS

# The "profile" of this file, independent of any pytest/hypothesis configuration: each
# test derives its own settings from it (settings objects do not change global state).
# Shrinking big batches of phone numbers can take minutes, so CI skips it: every assertion
# names the offending raw value and its output. CUSTOMER360_HYPOTHESIS_SHRINK=1 shrinks.
_PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
if os.environ.get("CUSTOMER360_HYPOTHESIS_SHRINK"):
    _PHASES += [Phase.shrink, Phase.explain]
PROPERTIES = settings(
    deadline=None,
    print_blob=True,
    phases=_PHASES,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

MIN_VALUES_PER_NORMALIZER = 10_000
FUZZ_EXAMPLES = 100
FUZZ_LIST_SIZE = (105, 150)  # 100 examples x >= 105 values: >= 10,500 by construction
assert FUZZ_EXAMPLES * FUZZ_LIST_SIZE[0] >= MIN_VALUES_PER_NORMALIZER

DEFAULT_REGION = "US"
PHONES = [name for name, config in NORMALIZERS.items() if config["normalizer"] == "phone"]
EXERCISED: Counter[str] = Counter()


def run(name: str, values: list[str | None]) -> pl.Series:
    series = pl.Series("raw", values, dtype=pl.String)
    return normalize(series, IdentifierType(**NORMALIZERS[name]), DEFAULT_REGION)


# --- generated raw values ------------------------------------------------------------

# Unicode White_Space: what Polars' strip_chars() and the regex class \s treat as space.
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# Characters that are not white space but are invisible or control characters.
INVISIBLE = "\x00\x01\x1b\x1c\x1f\x7f\u200b\u200c\u200d\u2060\ufeff"

whitespace_only = st.text(alphabet=WHITE_SPACE, min_size=1, max_size=12)
control_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(WHITE_SPACE + INVISIBLE),
        st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"]),
        st.characters(codec="ascii"),
    ),
    max_size=16,
)

_local = st.text(alphabet=string.ascii_letters + string.digits + "._+-", min_size=1, max_size=12)
_label = st.builds(  # a DNS label: letters, digits, inner hyphens
    lambda text, dash: text[0] + "-" + text[1:] if dash and len(text) > 1 else text,
    st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=10),
    st.booleans(),
)
_tld = st.text(alphabet=string.ascii_letters, min_size=2, max_size=6)
clean_email = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join([*labels, tld])}",
    _local,
    st.lists(_label, min_size=1, max_size=3),
    _tld,
)
decorated_email = st.builds(
    lambda before, address, after: f"{before}{address}{after}",
    st.sampled_from(["", "", " ", "\t", "mailto:", "MAILTO:", "<", "mailto:<", " <", "\xa0"]),
    clean_email,
    st.sampled_from(["", "", ">", " ", "\n", "> ", "\u2003"]),
)


def _insert(text: str, position: int, char: str) -> str:
    position %= len(text) + 1
    return text[:position] + char + text[position:]


email_like = st.one_of(
    decorated_email,
    decorated_email.map(str.upper),
    st.builds(_insert, decorated_email, st.integers(0, 60), st.characters(codec="utf-8")),
    st.builds(_insert, clean_email, st.integers(0, 60), st.sampled_from(WHITE_SPACE + INVISIBLE)),
    st.builds(lambda a, b: f"{a}@{b}", st.text(max_size=12), st.text(max_size=12)),
)

_phone_piece = st.one_of(
    st.text(alphabet=string.digits, min_size=1, max_size=6),
    st.sampled_from(
        [" ", "-", ".", "(", ")", "/", "+", "x", "X", " ext. ", "#", "*", "O", "\xa0"]
        + ["\u0663", "\uff12"]  # Arabic-Indic three, full-width two
    ),
)
phone_like = st.one_of(
    st.builds(
        lambda prefix, pieces: prefix + "".join(pieces),
        st.sampled_from(["", "", "+", "+1 ", "1-", "00", "+44 ", "+49 ", "011 ", "(0)"]),
        st.lists(_phone_piece, min_size=1, max_size=8),
    ),
    # international numbers of every length, short and over-long
    st.builds(
        lambda code, digits: f"+{code}{digits}",
        st.sampled_from(["1", "7", "33", "43", "44", "49", "62", "81", "86", "234", "598", "683"]),
        st.integers(3, 17).flatmap(
            lambda size: st.text(alphabet=string.digits, min_size=size, max_size=size)
        ),
    ),
)


def _repeat_to(unit: str, length: int) -> str:
    return (unit * (length // len(unit) + 1))[:length]


long_text = st.builds(
    _repeat_to,
    st.one_of(st.text(min_size=1, max_size=8), phone_like, email_like.filter(bool)),
    st.one_of(st.sampled_from([10_000, 4_096]), st.integers(1_000, 10_000)),
)

raw_value = st.one_of(
    st.none(),
    st.just(""),
    whitespace_only,
    st.text(max_size=40),  # any code point but surrogates, control characters included
    control_text,
    email_like,
    phone_like,
    long_text,
)
raw_values = st.lists(raw_value, min_size=FUZZ_LIST_SIZE[0], max_size=FUZZ_LIST_SIZE[1])
small_batches = st.lists(raw_value, min_size=10, max_size=60)


# --- 1. no exception, one text-or-null output per input ------------------------------


@settings(PROPERTIES, max_examples=FUZZ_EXAMPLES)
@given(values=raw_values)
def _exercise_every_normalizer(values: list[str | None]) -> None:
    # One generated list goes through every normalizer: generating is the costly part.
    for name in NORMALIZERS:
        try:
            result = run(name, values)
        except Exception as error:
            error.add_note(f"raised by the {name!r} normalizer")
            raise
        assert isinstance(result, pl.Series), name
        assert len(result) == len(values), name
        assert result.dtype == pl.String, name
        assert all(value is None or isinstance(value, str) for value in result.to_list()), name
        EXERCISED[name] += len(values)


def test_normalizers_never_raise_and_keep_one_text_or_null_per_input() -> None:
    before = {name: EXERCISED[name] for name in NORMALIZERS}
    _exercise_every_normalizer()
    exercised = {name: EXERCISED[name] - before[name] for name in NORMALIZERS}
    assert min(exercised.values()) >= MIN_VALUES_PER_NORMALIZER, exercised


@pytest.mark.parametrize("name", list(NORMALIZERS))
@pytest.mark.parametrize(
    "series",
    [
        pl.Series("raw", [], dtype=pl.String),
        pl.Series("raw", [None, None, None]),  # dtype Null: a column with no values at all
        pl.Series("raw", [2125550187, None, 0]),  # numbers read from a typed source
    ],
    ids=["empty", "all-null", "integers"],
)
def test_normalizer_accepts_empty_null_and_non_text_columns(name: str, series: pl.Series) -> None:
    result = normalize(series, IdentifierType(**NORMALIZERS[name]), DEFAULT_REGION)
    assert len(result) == len(series)
    assert result.dtype == pl.String


# --- 2. idempotence --------------------------------------------------------------------


@pytest.mark.parametrize("name", list(NORMALIZERS))
@settings(PROPERTIES, max_examples=40)
@given(values=small_batches)
@example(values=["+43 000000", "00000000000", "Ann@Example.com", " a  B "])
def test_normalizing_a_normalized_value_changes_nothing(name: str, values: list) -> None:
    once = run(name, values).to_list()
    twice = run(name, once).to_list()
    changed = [(raw, a, b) for raw, a, b in zip(values, once, twice, strict=True) if a != b]
    assert not changed, f"(raw, once, twice): {changed[:3]}"


@settings(PROPERTIES, max_examples=60)
@given(values=st.lists(phone_like, min_size=20, max_size=60))
def test_e164_is_its_own_normal_form_in_every_region(values: list[str]) -> None:
    """An E.164 number carries its country: re-normalizing it gives it back whatever the
    region and whichever path (NANP fast path or phonenumbers) handles it."""
    e164 = [value for value in run("phone", values).to_list() if value is not None]
    for config in ({"region": "US"}, {"region": "GB"}, {"region": "DE"}, {"region": "CA"}):
        again = normalize(
            pl.Series(e164, dtype=pl.String),
            IdentifierType(normalizer="phone", **config),
            DEFAULT_REGION,
        )
        changed = [(a, b) for a, b in zip(e164, again.to_list(), strict=True) if a != b]
        assert not changed, f"{config}: (E.164, re-normalized): {changed[:3]}"


# --- 3. equal inputs give equal outputs, wherever they are and whatever comes with them -


@pytest.mark.parametrize("name", list(NORMALIZERS))
@settings(PROPERTIES, max_examples=30)
@given(values=small_batches, data=st.data())
def test_output_depends_only_on_the_value(name: str, values: list, data: st.DataObject) -> None:
    alone = run(name, values).to_list()
    expected = dict(zip(values, alone, strict=True))
    order = data.draw(
        st.lists(st.integers(0, len(values) - 1), min_size=1, max_size=3 * len(values)),
        label="positions (shuffled, repeated)",
    )
    others = data.draw(small_batches, label="other values in the same batch")
    reordered = [values[i] for i in order]
    mixed = run(name, reordered + others).to_list()
    differ = [
        (value, expected[value], got)
        for value, got in zip(reordered, mixed, strict=False)
        if got != expected[value]
    ]
    assert not differ, f"(value, alone, in a mixed batch): {differ[:3]}"
    assert mixed[len(reordered) :] == run(name, others).to_list()


def _reduce_phone(value: str) -> str:
    """What normalize_phone hands to phonenumbers: digits, '+', extension markers."""
    return re.sub(r"[^0-9+xX#]", "", value).lower()


@pytest.mark.parametrize("name", PHONES)
@settings(PROPERTIES, max_examples=60)
@given(values=st.lists(st.one_of(phone_like, raw_value), min_size=20, max_size=80))
def test_phone_batch_path_agrees_with_the_one_value_reference(name: str, values: list) -> None:
    """The distinct-value and NANP fast paths give exactly what phone_e164 gives."""
    config = NORMALIZERS[name]
    region = config.get("region") or DEFAULT_REGION
    validation = config.get("phone_validation", "possible")
    batch = run(name, values).to_list()
    reference = [
        None if value is None else phone_e164(_reduce_phone(value), region, validation)
        for value in values
    ]
    assert batch == reference


# --- 4. output shapes -----------------------------------------------------------------

EMAIL_SHAPE = re.compile(
    r"[^@]+@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,}"
)
E164_SHAPE = re.compile(r"\+[1-9][0-9]{5,14}")
email_batches = st.lists(st.one_of(email_like, raw_value), min_size=20, max_size=100)


@settings(PROPERTIES, max_examples=80)
@given(values=email_batches)
def test_email_output_is_lower_case_local_at_domain_tld(values: list) -> None:
    for raw, email in zip(values, normalize_email(pl.Series(values, dtype=pl.String)), strict=True):
        if email is None:
            continue
        assert EMAIL_SHAPE.fullmatch(email), (raw, email)
        assert email.count("@") == 1, (raw, email)
        assert email == email.lower(), (raw, email)
        assert email.strip(WHITE_SPACE) == email, (raw, email)
        assert not any(char in WHITE_SPACE for char in email), (raw, email)


EMAIL_WRAPPINGS = [
    ("", ""), (" ", " "), ("\t", "\n"), ("\xa0", "\u3000"), ("mailto:", ""), ("MAILTO:", " "),
    ("<", ">"), (" <", "> "), ("mailto:<", ">"),
]  # fmt: skip


@settings(PROPERTIES, max_examples=80)
@given(address=clean_email, wrapping=st.sampled_from(EMAIL_WRAPPINGS))
def test_decorated_email_normalizes_to_the_clean_lower_case_address(address, wrapping) -> None:
    before, after = wrapping
    for raw in (address, before + address + after, (before + address + after).upper()):
        assert normalize_email(pl.Series([raw])).to_list() == [address.lower()]


@settings(PROPERTIES, max_examples=80)
@given(values=email_batches)
@example(values=["\ufeffann@example.com", "ann\u200b@example.com", "ann\x00@example.com"])
def test_email_output_has_no_control_or_invisible_characters(values: list) -> None:
    """A NUL, a byte-order mark or a zero-width space is not part of any mailbox name:
    '\\ufeffann@example.com' must give 'ann@example.com' (or null), not a different
    identifier that never links with the clean address."""
    for raw, email in zip(values, normalize_email(pl.Series(values, dtype=pl.String)), strict=True):
        if email is None:
            continue
        bad = [char for char in email if unicodedata.category(char) in ("Cc", "Cf")]
        assert not bad, f"{raw!r} -> {email!r} keeps {bad!r}"


@pytest.mark.parametrize("name", PHONES)
@settings(PROPERTIES, max_examples=80)
@given(values=st.lists(st.one_of(phone_like, raw_value), min_size=20, max_size=100))
@example(values=["+49 351 396937 164870", "+81 120 123 456 789 012 34", "+683 4002"])
def test_phone_output_is_e164(name: str, values: list) -> None:
    """'+', a country code (never 0) and at most 15 digits in all (ITU-T E.164). The lower
    bound is 6 digits, not 8: real numbers are that short (Niue '+683 4002' has 7)."""
    for raw, phone in zip(values, run(name, values), strict=True):
        if phone is not None:
            assert E164_SHAPE.fullmatch(phone), f"{raw!r} -> {phone!r} ({len(phone) - 1} digits)"


# --- 5. the spec loader: a Spec or a SpecError naming the file, nothing else ------------

SPEC_KEYS = sorted(
    {
        field
        for model in vars(spec_module).values()
        if isinstance(model, type) and issubclass(model, spec_module.BaseModel)
        for field in model.model_fields
    }
)
SPEC_WORDS = [
    *get_args(spec_module.SourceFormat),
    *get_args(spec_module.Normalizer),
    *get_args(spec_module.Strategy),
    "possible", "valid",
    "US", "us", "GB", "XX", "team:crm", "owner@example.com", "utf8", "latin1",
    "crm", "records", "value", "upper(value)", "not sql ((", "noreply@%", "[", "(?=x)",
    "a{99999999}", "2024-02-30", "~", "", " ", "-1", "0", "1e400", ".nan",
]  # fmt: skip

yaml_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.dates(),
    st.datetimes(),
    st.sampled_from(SPEC_WORDS),
)
yaml_key = st.one_of(
    st.sampled_from(SPEC_KEYS),
    st.text(max_size=12),
    st.integers(-3, 3),
    st.none(),
    st.booleans(),
    st.dates(),
)
yaml_value = st.recursive(
    yaml_scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(yaml_key, children, max_size=5)
    ),
    max_leaves=20,
)
yaml_document = st.one_of(
    yaml_value,
    st.dictionaries(st.sampled_from(list(Spec.model_fields)), yaml_value, max_size=8),
)

VALID_SPEC: dict[str, Any] = {
    "settings": {"default_region": "US", "owner": "team:crm", "missing_values": ["", "n/a"]},
    "identifier_types": {
        "email": {
            "normalizer": "email",
            "max_group_size": 20,
            "exclusions": [
                {"like": "noreply@%", "reason": "no-reply mailbox"},
                {"regex": "^test@", "reason": "test address"},
                {"value": "none@none.com", "reason": "placeholder"},
            ],
        },
        "phone": {"normalizer": "phone", "region": "US", "phone_validation": "possible"},
        "loyalty_id": {"normalizer": "expression", "expression": "upper(value)"},
        "tax_id": {"normalizer": "digits", "active": False},
    },
    "sources": [
        {
            "name": "crm",
            "description": "CRM",
            "path": "crm.csv",
            "format": "csv",
            "key": "id",
            "updated_at": "updated",
            "updated_at_format": "%Y-%m-%d",
            "trust": 1,
            "encoding": "utf8",
            "aliases": {"E-mail": "email"},
            "identifiers": {"email": "email", "phone": "phone"},
            "attributes": {"first_name": "first_name", "company": "company"},
            "measures": {"spend": "amount"},
        },
        {
            "name": "erp",
            "path": "erp.duckdb",
            "format": "duckdb",
            "table": "customers",
            "key": "CUST_NO",
            "trust": 2,
            "identifiers": {"loyalty_id": "LOY", "tax_id": "TAX"},
        },
        {
            "name": "marketing",
            "path": "contacts.xlsx",
            "format": "xlsx",
            "sheet": "contacts",
            "key": "cid",
            "trust": 3,
            "attributes": {"last_name": "ln"},
        },
    ],
    "survivorship": {
        "default": "trust",
        "attributes": {"first_name": "most_recent", "email_primary": "most_frequent"},
    },
    "quality": {"max_cluster_size": 40},
    "truth": {"path": "truth.csv", "key_column": "entity_key", "person_column": "person_id"},
    "customer_360": {
        "as_of": "2024-06-30T00:00:00",
        "value_measure": "spend",
        "value_tiers": [{"name": "Gold", "above": 1000}, {"name": "Rest"}],
        "lifecycle": [{"name": "Active", "within_days": 30}, {"name": "Gone"}],
    },
    "organizations": {
        "email_identifier": "email",
        "company_attribute": "company",
        "free_mail_domains": ["gmail.com"],
    },
}


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One spec file, rewritten by every example (module scope: shared by examples)."""
    return tmp_path_factory.mktemp("spec_properties") / "customer360.yaml"


def load_or_spec_error(path: Path) -> Spec | SpecError:
    """load_spec's answer: a Spec, or a SpecError whose message names the file."""
    try:
        return load_spec(path, check_files=False)
    except SpecError as error:
        assert error.spec_path == path.resolve()
        assert str(path.resolve()) in str(error).splitlines()[0]
        assert error.problems
        assert all(isinstance(p, str) and p for p in error.problems)
        return error
    except Exception as error:
        raise AssertionError(
            f"load_spec raised {type(error).__name__} instead of SpecError: {error}"
        ) from error


def _dump(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def test_the_valid_spec_used_for_mutations_loads(spec_file: Path) -> None:
    spec_file.write_text(_dump(VALID_SPEC), encoding="utf-8")
    assert isinstance(load_or_spec_error(spec_file), Spec)


@settings(PROPERTIES, max_examples=150)
@given(document=yaml_document)
def test_any_yaml_document_gives_a_spec_or_a_spec_error(spec_file: Path, document: Any) -> None:
    spec_file.write_text(_dump(document), encoding="utf-8")
    load_or_spec_error(spec_file)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            paths += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            paths += _paths(child, (*prefix, index))
    return paths


def _mutate(document: Any, data: st.DataObject) -> Any:
    path = data.draw(st.sampled_from(_paths(document)), label="path")
    operation = data.draw(
        st.sampled_from(["drop", "replace", "add unknown key", "append", "wrap"]),
        label="operation",
    )
    if not path:
        return data.draw(yaml_value, label="new document") if operation == "replace" else document
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    target = parent[path[-1]]
    if operation == "drop":
        del parent[path[-1]]
    elif operation == "replace":
        parent[path[-1]] = data.draw(yaml_value, label="new value")
    elif operation == "add unknown key" and isinstance(target, dict):
        target[data.draw(yaml_key, label="key")] = data.draw(yaml_value, label="value")
    elif operation == "append" and isinstance(target, list):
        extra = st.sampled_from(target) if target else yaml_value
        target.append(copy.deepcopy(data.draw(st.one_of(extra, yaml_value), label="element")))
    elif operation == "wrap":
        parent[path[-1]] = data.draw(st.sampled_from([[target], {"value": target}]))
    return document


@settings(PROPERTIES, max_examples=250)
@given(data=st.data(), mutations=st.integers(1, 4))
def test_mutated_valid_spec_gives_a_spec_or_a_spec_error(
    spec_file: Path, data: st.DataObject, mutations: int
) -> None:
    document = copy.deepcopy(VALID_SPEC)
    for _ in range(mutations):
        document = _mutate(document, data)
    spec_file.write_text(_dump(document), encoding="utf-8")
    load_or_spec_error(spec_file)


YAML_TOKENS = [
    "\n", "\n", "  ", "    ", "- ", ": ", ":", "{", "}", "[", "]", ",", "'", '"', "#", "? ",
    "|", ">", "~", "&a ", "*a", "<<: ", "---\n", "...\n", "%YAML 1.1\n", "\t", "!!str ",
    "!!python/object/apply:os.getcwd []", "!!binary ", "!!timestamp ", "!!int ", "null",
    "true", "1e400", "0x1F", "0o17", "1_000", "12:30:45", "sources:", "identifier_types:",
    "settings:", "customer_360:", "as_of: ", "normalizer: ", "email", "phone", "name: ",
]  # fmt: skip
yaml_ish_text = st.lists(
    st.one_of(
        st.sampled_from(YAML_TOKENS),
        st.sampled_from(SPEC_KEYS).map(lambda key: key + ": "),
        st.from_regex(
            r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9]{1,2}:[0-9]{2}:[0-9]{2})?", fullmatch=True
        ),
        st.text(max_size=6),
    ),
    max_size=40,
).map("".join)


@settings(PROPERTIES, max_examples=200)
@given(text=st.one_of(yaml_ish_text, st.text()))
@example(text="customer_360:\n  as_of: 2024-02-30\n")  # a typo in a date: ValueError
@example(text="customer_360:\n  as_of: !!timestamp yesterday\n")  # AttributeError
@example(text="quality:\n  max_cluster_size: !!int\n")  # IndexError
@example(text="organizations:\n  account_attribute: !!bool maybe\n")  # KeyError
def test_any_text_gives_a_spec_or_a_spec_error(spec_file: Path, text: str) -> None:
    spec_file.write_text(text, encoding="utf-8")
    load_or_spec_error(spec_file)


@settings(PROPERTIES, max_examples=100)
@given(content=st.binary(max_size=300))
@example(content="sources:\n  - name: crm\n    description: Café\n".encode("latin-1"))
def test_any_bytes_give_a_spec_or_a_spec_error(spec_file: Path, content: bytes) -> None:
    spec_file.write_bytes(content)
    load_or_spec_error(spec_file)
