"""The keyed hash, the salt it needs, and which columns count as personal."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import polars as pl
import pytest

from customer360.core.privacy import (
    MIN_SALT_LENGTH,
    SaltError,
    error_detail,
    keyed_hash,
    lookup_value,
    personal_columns,
    read_salt,
)
from customer360.core.readers import BATCH_COLUMN, ROW_COLUMN, SourceReadError
from customer360.core.records import build_records
from customer360.core.spec import SpecError, load_spec
from customer360_tests.core.conftest import crm_source, make_spec, spec_dict, write_spec

SALT = "a-salt-of-twenty-chars"


def reference_hash(value: str, salt: str = SALT) -> str:
    return hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()


def hashing_spec(**settings: object) -> dict:
    raw = spec_dict(crm_source(), settings=settings)
    raw["identifier_types"]["email"]["hash"] = True
    return raw


def test_keyed_hash_is_hmac_sha256_of_each_value_in_place_and_keeps_nulls() -> None:
    values = pl.Series("email", ["b@x.com", None, "a@x.com", "b@x.com"])
    hashed = keyed_hash(values, SALT.encode())
    assert hashed.name == "email"
    assert hashed.to_list() == [
        reference_hash("b@x.com"),
        None,
        reference_hash("a@x.com"),
        reference_hash("b@x.com"),
    ]


def test_another_salt_gives_other_hashes() -> None:
    values = pl.Series(["a@x.com"])
    assert (
        keyed_hash(values, b"first-salt-0123456")[0] != keyed_hash(values, b"other-salt-0123456")[0]
    )


@pytest.mark.parametrize("salt", [None, "s3cr3t"], ids=["missing", "too short"])
def test_hashing_without_a_usable_salt_fails_naming_the_variable_and_how_to_set_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, salt: str | None
) -> None:
    if salt is None:
        monkeypatch.delenv("CUSTOMER360_SALT", raising=False)
    else:
        monkeypatch.setenv("CUSTOMER360_SALT", salt)
    path = write_spec(tmp_path, hashing_spec())
    with pytest.raises(SpecError) as raised:
        load_spec(path, check_files=False)
    message = str(raised.value)
    assert str(path) in message
    assert "identifier_types.email.hash" in message
    assert "export CUSTOMER360_SALT=" in message
    assert f"at least {MIN_SALT_LENGTH} characters" in message
    if salt:
        assert salt not in message  # never echoes the secret


def test_the_salt_variable_can_be_renamed_and_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CUSTOMER360_SALT", raising=False)
    path = write_spec(tmp_path, hashing_spec(salt_env_var="SHOP_SALT"))
    with pytest.raises(SpecError, match="export SHOP_SALT="):
        load_spec(path, check_files=False)
    monkeypatch.setenv("SHOP_SALT", SALT)
    spec = load_spec(path, check_files=False)
    assert read_salt(spec) == SALT.encode()
    assert SALT not in spec.model_dump_json()  # the spec never holds the salt itself


def test_without_hashed_identifiers_no_salt_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CUSTOMER360_SALT", raising=False)
    load_spec(write_spec(tmp_path, spec_dict()), check_files=False)


def test_read_salt_raises_a_salt_error_when_the_variable_went_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CUSTOMER360_SALT", raising=False)
    with pytest.raises(SaltError, match="CUSTOMER360_SALT"):
        read_salt(make_spec(hashing_spec()))


def test_the_salt_variable_must_be_a_variable_name(tmp_path: Path) -> None:
    path = write_spec(tmp_path, spec_dict(settings={"salt_env_var": "my salt!"}))
    with pytest.raises(SpecError, match="settings.salt_env_var: must name an environment"):
        load_spec(path, check_files=False)


def test_lookup_value_normalizes_and_hashes_like_the_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUSTOMER360_SALT", SALT)
    spec = make_spec(hashing_spec())
    assert lookup_value(spec, "email", " JOHN@Acme.com") == reference_hash("john@acme.com")
    assert lookup_value(spec, "phone", "(212) 555-0101") == "+12125550101"  # not hashed


def test_personal_columns_are_the_specs_identifiers_and_attributes_under_every_name() -> None:
    spec = make_spec(spec_dict(crm_source(attributes={"first_name": "first_name"})))
    personal = personal_columns(spec)
    assert {"email", "phone", "email_primary", "phone_primary", "first_name"} <= personal
    assert {"value_raw", "value", "raw_record", "name", "domains"} <= personal
    not_personal = {"entity_key", "resolved_id", "source", "record_count", "status", "updated_at"}
    assert not personal & not_personal


def test_error_detail_withholds_library_text_unless_personal_data_may_be_shown() -> None:
    error = pl.exceptions.InvalidOperationError("conversion failed: ['john@acme.com']")
    hidden = make_spec(spec_dict())
    shown = make_spec(spec_dict(settings={"show_personal_data": True}))
    assert "john@acme.com" not in error_detail(error, hidden)
    assert "InvalidOperationError" in error_detail(error, hidden)
    assert "john@acme.com" in error_detail(error, shown)


@pytest.mark.parametrize("shown", [False, True], ids=["hidden", "shown"])
def test_a_failing_mapping_quotes_the_values_only_when_personal_data_is_shown(
    shown: bool,
) -> None:
    raw = spec_dict(
        crm_source(attributes={"age": "CAST(first_name AS INTEGER)"}),
        settings={"show_personal_data": shown},
    )
    extract = pl.DataFrame(
        {
            "customer_id": ["C1"],
            "email": ["ann@example.com"],
            "phone": [None],
            "first_name": ["Annabel"],
            "updated": ["2024-01-01"],
            BATCH_COLUMN: ["crm.csv"],
            ROW_COLUMN: [1],
        },
        schema_overrides={"phone": pl.String},
    )
    with pytest.raises(SourceReadError) as raised:
        build_records(make_spec(raw), {"crm": extract})
    assert "source 'crm': a mapping failed to evaluate" in str(raised.value)
    assert ("Annabel" in str(raised.value)) is shown
    assert (raised.value.__cause__ is not None) is shown  # a chained error would quote it
