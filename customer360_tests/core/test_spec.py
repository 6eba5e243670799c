"""Spec loading: a valid spec resolves its paths; every mistake becomes a SpecError whose
message names the spec file, the key and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from customer360.core.spec import SPEC_ENV_VAR, Exclusion, SpecError, load_spec

from .conftest import CRM_HEADER, CRM_ROWS, crm_source, spec_dict, write_csv, write_spec


def spec_error(path: Path) -> SpecError:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return caught.value


def test_valid_spec_loads_with_paths_relative_to_the_spec_file(tmp_path, monkeypatch):
    config = tmp_path / "config"
    write_csv(config / "data" / "crm.csv", CRM_HEADER, CRM_ROWS)
    spec_path = write_spec(config, spec_dict(crm_source(path="data/crm.csv")))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory must not matter

    spec = load_spec(spec_path)

    assert spec.base_dir == config.resolve()
    assert spec.resolve(spec.sources[0].path) == (config / "data" / "crm.csv").resolve()
    assert spec.resolve(str(tmp_path / "abs.csv")) == tmp_path / "abs.csv"
    assert list(spec.identifier_types) == ["email", "phone"]
    assert spec.golden_fields == ["email_primary", "phone_primary", "first_name"]
    assert spec.strategy("first_name") == "trust"  # the default strategy


def test_spec_path_comes_from_the_environment_variable(crm_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)
    monkeypatch.setenv(SPEC_ENV_VAR, str(crm_dir / "customer360.yaml"))
    assert load_spec().sources[0].name == "crm"


def test_missing_spec_file(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    error = spec_error(missing)
    assert str(missing) in str(error)
    assert "file not found" in str(error)
    assert SPEC_ENV_VAR in str(error)  # the fix: point the variable at a spec
    assert error.spec_path == missing


def test_invalid_yaml(tmp_path):
    spec_path = write_spec(tmp_path, "sources: [\n  - name: crm\n identifier_types: {")
    error = spec_error(spec_path)
    assert str(spec_path) in str(error)
    assert "not valid YAML" in str(error)


def test_top_level_must_be_a_mapping(tmp_path):
    error = spec_error(write_spec(tmp_path, "- just\n- a list\n"))
    assert "top level must be a mapping" in str(error)


def test_misspelt_top_level_key_is_named(crm_dir):
    raw = spec_dict(survivorshp={"default": "trust"})  # 'survivorship' misspelt
    error = spec_error(write_spec(crm_dir, raw))
    assert len(error.problems) == 1
    assert str(crm_dir / "customer360.yaml") in str(error)
    assert "survivorshp: unknown key; remove it or check its spelling" in str(error)


def test_misspelt_required_key_reports_both_sides(crm_dir):
    raw = spec_dict()
    raw["identifer_types"] = raw.pop("identifier_types")
    error = spec_error(write_spec(crm_dir, raw))
    assert "identifer_types: unknown key" in str(error)
    assert "identifier_types: required key is missing; add it" in str(error)
    assert len(error.problems) == 2


def test_bad_format_value_lists_the_allowed_ones(crm_dir):
    error = spec_error(write_spec(crm_dir, spec_dict(crm_source(format="cvs"))))
    (problem,) = error.problems
    assert problem.startswith("sources[0].format:")
    for allowed in ("'csv'", "'tsv'", "'ndjson'", "'json'", "'parquet'", "'xlsx'", "'duckdb'"):
        assert allowed in problem


def test_unknown_identifier_type_referenced_by_a_source(crm_dir):
    source = crm_source(identifiers={"emial": "email", "phone": "phone"})
    error = spec_error(write_spec(crm_dir, spec_dict(source)))
    assert error.problems == [
        "sources[0] (crm).identifiers.emial: unknown identifier type; "
        "define it under identifier_types or use one of: email, phone"
    ]
    assert str(crm_dir / "customer360.yaml") in str(error)


def test_unknown_column_in_a_mapping_is_checked_against_the_header(crm_dir):
    source = crm_source(identifiers={"email": "e_mail", "phone": "phone"})
    error = spec_error(write_spec(crm_dir, spec_dict(source)))
    (problem,) = error.problems
    assert "identifiers.email" in problem
    assert "unknown column 'e_mail' in crm.csv" in problem
    assert "use one of: customer_id, email, phone, first_name, updated" in problem


def test_unknown_column_inside_an_expression(crm_dir):
    source = crm_source(attributes={"first_name": "upper(firstname)"})
    error = spec_error(write_spec(crm_dir, spec_dict(source)))
    (problem,) = error.problems
    assert "attributes.first_name" in problem
    assert "unknown column 'firstname'" in problem


def test_mapping_expression_that_does_not_parse(crm_dir):
    source = crm_source(attributes={"first_name": "concat(first_name, "})
    error = spec_error(write_spec(crm_dir, spec_dict(source)))
    (problem,) = error.problems
    assert "attributes.first_name" in problem
    assert "'concat(first_name, ' is neither a column of crm.csv nor a valid SQL" in problem
    assert "use one of: customer_id" in problem


def test_expression_mapping_over_known_columns_is_accepted(crm_dir):
    source = crm_source(attributes={"first_name": "upper(trim(first_name))"})
    spec = load_spec(write_spec(crm_dir, spec_dict(source)))
    assert spec.sources[0].attributes == {"first_name": "upper(trim(first_name))"}


def test_missing_source_file(crm_dir):
    error = spec_error(write_spec(crm_dir, spec_dict(crm_source(path="missing.csv"))))
    (problem,) = error.problems
    assert ".path: no csv file at" in problem
    assert str(crm_dir / "missing.csv") in problem
    assert "fix the path" in problem


def test_missing_source_columns_key_and_updated_at(crm_dir):
    source = crm_source(key="cust_id", updated_at="modified")
    error = spec_error(write_spec(crm_dir, spec_dict(source)))
    assert len(error.problems) == 2
    key_problem, updated_problem = error.problems
    assert ".key: column 'cust_id' not in crm.csv" in key_problem
    assert ".updated_at: column 'modified' not in crm.csv" in updated_problem
    assert "(or add an alias)" in key_problem


def test_duckdb_source_without_table(crm_dir):
    source = crm_source(path="crm.duckdb", format="duckdb")
    error = spec_error(write_spec(crm_dir, spec_dict(source)))
    assert error.problems == [
        "sources[0]: format duckdb needs 'table': the table to read from the file"
    ]


def test_exclusion_with_two_matchers(crm_dir):
    raw = spec_dict()
    raw["identifier_types"]["email"]["exclusions"] = [
        {"value": "x@y.com", "like": "x@%", "reason": "two matchers"}
    ]
    error = spec_error(write_spec(crm_dir, raw))
    assert error.problems == [
        "identifier_types.email.exclusions[0]: "
        "give exactly one of 'value', 'like' or 'regex' (plus 'reason')"
    ]


def test_exclusion_regex_that_does_not_compile(crm_dir):
    raw = spec_dict()
    raw["identifier_types"]["email"]["exclusions"] = [{"regex": "^(test", "reason": "r"}]
    error = spec_error(write_spec(crm_dir, raw))
    (problem,) = error.problems
    assert problem.startswith("identifier_types.email.exclusions[0]: regex '^(test'")


def test_exclusion_regex_the_data_engine_cannot_run(crm_dir):
    # Exclusions run as Polars (Rust) regexes: a back-reference must fail at load time,
    # not in the middle of a run.
    raw = spec_dict()
    raw["identifier_types"]["phone"]["exclusions"] = [{"regex": r"^\+1(\d)\1{9}$", "reason": "r"}]
    error = spec_error(write_spec(crm_dir, raw))
    (problem,) = error.problems
    assert problem.startswith("identifier_types.phone.exclusions[0]: regex")


def test_survivorship_of_an_unknown_field(crm_dir):
    raw = spec_dict(survivorship={"attributes": {"firstname": "longest"}})
    error = spec_error(write_spec(crm_dir, raw))
    assert error.problems == [
        "survivorship.attributes.firstname: no such golden field; "
        "use one of: email_primary, phone_primary, first_name"
    ]


def test_survivorship_of_a_known_field_is_used(crm_dir):
    survivorship = {"default": "most_recent", "attributes": {"first_name": "longest"}}
    raw = spec_dict(survivorship=survivorship)
    spec = load_spec(write_spec(crm_dir, raw))
    assert spec.strategy("first_name") == "longest"
    assert spec.strategy("email_primary") == "most_recent"


def test_several_structural_problems_reported_together(crm_dir):
    raw = spec_dict(crm_source(format="cvs", trust=0))
    raw["identifier_types"]["email"]["exclusions"] = [{"reason": "no matcher"}]
    error = spec_error(write_spec(crm_dir, raw))
    keys = sorted(problem.split(":")[0] for problem in error.problems)
    assert keys == [
        "identifier_types.email.exclusions[0]",
        "sources[0].format",
        "sources[0].trust",
    ]
    # One message, one line per problem.
    assert str(error).count("\n  - ") == 3


def test_several_reference_problems_reported_together(crm_dir):
    source = crm_source(identifiers={"mail": "email"})
    raw = spec_dict(source, survivorship={"attributes": {"nickname": "trust"}})
    error = spec_error(write_spec(crm_dir, raw))
    assert len(error.problems) == 2
    assert "identifiers.mail: unknown identifier type" in error.problems[0]
    assert "survivorship.attributes.nickname: no such golden field" in error.problems[1]


def test_several_file_problems_reported_together(crm_dir):
    write_csv(crm_dir / "shop.csv", ["order_id", "mail"], [["O1", "ann@example.com"]])
    shop = crm_source(
        name="shop",
        path="shop.csv",
        key="order_id",
        updated_at=None,
        trust=2,
        identifiers={"email": "customer_email"},
        attributes={},
    )
    crm = crm_source(path="gone.csv")
    error = spec_error(write_spec(crm_dir, spec_dict(crm, shop)))
    assert len(error.problems) == 2
    assert "sources[0] (crm).path: no csv file" in error.problems[0]
    expected = "sources[1] (shop).identifiers.email: unknown column 'customer_email'"
    assert expected in error.problems[1]


def test_check_files_false_skips_the_disk(tmp_path):
    spec = load_spec(write_spec(tmp_path, spec_dict()), check_files=False)
    assert spec.sources[0].name == "crm"


@pytest.mark.parametrize(
    ("like", "matching", "not_matching"),
    [
        ("noreply@%", ["noreply@shop.com", "noreply@"], ["xnoreply@shop.com", "noreply"]),
        ("test_@%", ["test1@x.com", "testa@"], ["test@x.com", "test12@x.com"]),
        ("%@example.com", ["a@example.com"], ["a@exampleXcom", "a@example.com.au"]),
        ("a+b.c(d)%", ["a+b.c(d)", "a+b.c(d)zz"], ["aab.c(d)", "a+bxc(d)", "ab.cd"]),
    ],
)
def test_like_pattern_becomes_an_anchored_regex(like, matching, not_matching):
    pattern = Exclusion(like=like, reason="r").as_regex()
    assert pattern.startswith("^") and pattern.endswith("$")
    for text in matching:
        assert re.search(pattern, text), text
    for text in not_matching:
        assert not re.search(pattern, text), text


def test_like_regex_for_simple_pattern_and_other_matchers():
    assert Exclusion(like="noreply@%", reason="r").as_regex() == "^noreply@.*$"
    assert Exclusion(regex="^info@", reason="r").as_regex() == "^info@"
    assert Exclusion(value="x@y.com", reason="r").as_regex() is None


def inbox_source(**overrides) -> dict:
    """An ndjson folder source for the resolve service's accepted records."""
    entry = {
        "name": "inbox",
        "path": "inbox/",
        "format": "ndjson",
        "key": "inbox_key",
        "updated_at": "received_at",
        "trust": 2,
    }
    return crm_source(**{**entry, **overrides})


def test_service_section_names_an_inbox_folder_that_need_not_exist_yet(crm_dir):
    raw = spec_dict(crm_source(), inbox_source(), service={"inbox_source": "inbox"})
    spec = load_spec(write_spec(crm_dir, raw))
    assert spec.service is not None
    assert (spec.service.inbox_source, spec.service.port) == ("inbox", 8360)
    assert spec.service.max_body_bytes == 65_536
    assert spec.service.probabilistic is False  # identifiers only, unless asked


def test_service_probabilistic_scoring_needs_the_matching_stage(crm_dir):
    service = {"inbox_source": "inbox", "probabilistic": True}
    raw = spec_dict(crm_source(), inbox_source(), service=service)
    assert spec_error(write_spec(crm_dir, raw)).problems == [
        "service.probabilistic: scoring needs the batch's trained model; add an enabled "
        "matching section or set service.probabilistic: false"
    ]


def test_service_inbox_must_be_a_known_source(crm_dir):
    error = spec_error(write_spec(crm_dir, spec_dict(service={"inbox_source": "signups"})))
    assert error.problems == [
        "service.inbox_source: no source named 'signups'; add an ndjson folder source for "
        "the service's records or use one of: crm"
    ]


def test_service_inbox_problems_are_reported_together(crm_dir):
    inbox = inbox_source(
        format="csv",
        path="inbox.csv",
        updated_at_format="%Y",
        attributes={"first_name": "first_name", "owner": "upper(assigned_resolved_id)"},
    )
    raw = spec_dict(crm_source(), inbox, service={"inbox_source": "inbox", "port": 0})
    problems = spec_error(write_spec(crm_dir, raw)).problems
    assert problems == ["service.port: Input should be greater than or equal to 1"]

    raw["service"]["port"] = 8000
    problems = spec_error(write_spec(crm_dir, raw)).problems
    assert [p.split(":")[0] for p in problems] == ["service.inbox_source (inbox)"] * 4
    assert "format is csv; the service appends ndjson lines" in problems[0]
    assert "path 'inbox.csv' is not a folder" in problems[1] and "'inbox.csv/'" in problems[1]
    assert "remove updated_at_format" in problems[2]
    assert "attributes.owner reads column(s) assigned_resolved_id" in problems[3]


def test_splitting_names_mapped_attributes_only(crm_dir):
    splitting = {
        "conflicts": {"first_name": "name", "birthday": "date"},
        "swappable": {"first_name": "surname", "nickname": "first_name"},
    }
    error = spec_error(write_spec(crm_dir, spec_dict(splitting=splitting)))
    assert error.problems == [
        "splitting.conflicts.birthday: no source maps attribute 'birthday'; "
        "map it under sources[].attributes or remove the key",
        "splitting.swappable.first_name: no source maps attribute 'surname'; "
        "map it under sources[].attributes or remove the key",
        "splitting.swappable.nickname: not a conflict attribute; add it under "
        "splitting.conflicts or remove the key",
    ]


def test_splitting_conflict_methods_are_listed(crm_dir):
    raw = spec_dict(splitting={"conflicts": {"first_name": "fuzzy"}})
    (problem,) = spec_error(write_spec(crm_dir, raw)).problems
    assert problem.startswith("splitting.conflicts.first_name:")
    assert "'name', 'date' or 'exact'" in problem
