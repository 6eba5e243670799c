"""Behavioural tests for the sample world generator: files, determinism, truth and noise."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import duckdb
import phonenumbers
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from customer360.sample import SOURCE_FILES, SampleSummary, generate_sample, generator, names

RECORDS = 2_000

COLUMNS = {
    "crm_customers": [
        "customer_id",
        "email",
        "phone",
        "first_name",
        "last_name",
        "date_of_birth",
        "street",
        "postcode",
        "city",
        "created_at",
        "account_id",
        "job_title",
    ],
    "ecommerce_orders": [
        "order_id",
        "customer_email",
        "customer_name",
        "phone_number",
        "loyalty_id",
        "order_total",
        "order_date",
    ],
    "support_tickets": [
        "ticket_id",
        "contact_email",
        "contact_phone",
        "contact_name",
        "subject",
        "opened_at",
    ],
    "pos_transactions": [
        "transaction_id",
        "loyalty_number",
        "phone",
        "store_id",
        "amount",
        "transaction_ts",
    ],
    "marketing_contacts": [
        "Contact ID",
        "Email Address",
        "Mobile",
        "First Name",
        "Last Name",
        "Company",
        "Job Title",
        "Opt-in Date",
    ],
    "erp_customers": ["CUST_NO", "EMAIL_ADDR", "TEL", "NAME", "ZIP", "LAST_CHANGE"],
    "web_signups": ["signup_id", "email", "phone", "full_name", "signed_up_at"],
    "loyalty_members": [
        "member_id",
        "card_number",
        "first_name",
        "last_name",
        "email",
        "phone",
        "birthday",
        "zip",
        "enrolled_on",
    ],
}
KEYS = {
    "crm_customers": "customer_id",
    "ecommerce_orders": "order_id",
    "support_tickets": "ticket_id",
    "pos_transactions": "transaction_id",
    "marketing_contacts": "Contact ID",
    "erp_customers": "CUST_NO",
    "web_signups": "signup_id",
    "loyalty_members": "member_id",
}
EMAILS = {
    "crm_customers": "email",
    "ecommerce_orders": "customer_email",
    "support_tickets": "contact_email",
    "marketing_contacts": "Email Address",
    "erp_customers": "EMAIL_ADDR",
    "web_signups": "email",
    "loyalty_members": "email",
}
PHONES = {
    "crm_customers": "phone",
    "ecommerce_orders": "phone_number",
    "support_tickets": "contact_phone",
    "pos_transactions": "phone",
    "marketing_contacts": "Mobile",
    "erp_customers": "TEL",
    "web_signups": "phone",
    "loyalty_members": "phone",
}


LEGAL_ENDING = r",?\s+(?:INC|LLC|LTD|CORP|CORPORATION|CO|COMPANY)\.?$"


def company_key(name: pl.Expr) -> pl.Expr:
    """Company name reduced to its bare, upper-case, alphanumeric core: ACME, Inc. -> ACME."""
    upper = name.str.strip_chars().str.to_uppercase()
    return upper.str.replace(LEGAL_ENDING, "").str.replace_all("[^A-Z0-9]", "")


def account_key(account: pl.Expr) -> pl.Expr:
    return account.str.to_uppercase().str.replace_all("[^A-Z0-9]", "")


def _read_duckdb(path: Path) -> pl.DataFrame:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.sql("SELECT * FROM customers").pl()


READERS: dict[str, Callable[[Path], pl.DataFrame]] = {
    "crm_customers": lambda path: pl.read_csv(path, infer_schema=False),
    "ecommerce_orders": lambda path: pl.read_ndjson(path, infer_schema_length=None),
    "support_tickets": lambda path: pl.read_csv(path, infer_schema=False),
    "pos_transactions": pl.read_parquet,
    "marketing_contacts": lambda path: pl.read_excel(path, sheet_name="contacts"),
    "erp_customers": _read_duckdb,
    "web_signups": lambda path: pl.read_json(path, infer_schema_length=None),
    "loyalty_members": lambda path: pl.read_csv(path, separator="\t", infer_schema=False),
}


def read_source(root: Path, source: str) -> pl.DataFrame:
    return READERS[source](root / SOURCE_FILES[source])


def with_truth(root: Path, source: str) -> pl.DataFrame:
    """Source rows that carry a key, joined to the person who produced them."""
    truth = pl.read_csv(root / "truth.csv", infer_schema=False)
    rows = read_source(root, source).filter(pl.col(KEYS[source]).is_not_null())
    keyed = rows.with_columns(
        entity_key=pl.format(f"{source}:{{}}", pl.col(KEYS[source]).cast(pl.String))
    )
    return keyed.join(truth, on="entity_key", how="left")


def all_values(root: Path, columns: dict[str, str]) -> pl.Series:
    return pl.concat(
        [read_source(root, source)[column].cast(pl.String) for source, column in columns.items()]
    ).drop_nulls()


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleSummary:
    return generate_sample(tmp_path_factory.mktemp("sample"), records=RECORDS, seed=42)


@pytest.mark.parametrize("source", list(SOURCE_FILES))
def test_every_source_reads_back_with_its_contract_columns(
    sample: SampleSummary, source: str
) -> None:
    frame = read_source(sample.out_dir, source)
    assert frame.columns == COLUMNS[source]
    assert frame.height == sample.records[source] > 0


def test_typed_sources_use_real_types(sample: SampleSummary) -> None:
    pos = read_source(sample.out_dir, "pos_transactions")
    assert pos.schema["transaction_id"] == pl.Int64
    assert pos.schema["amount"] == pl.Float64
    assert isinstance(pos.schema["transaction_ts"], pl.Datetime)
    erp = read_source(sample.out_dir, "erp_customers")
    assert erp.schema["CUST_NO"] == pl.Int32
    assert erp.schema["LAST_CHANGE"] == pl.Date
    readme = pl.read_excel(
        sample.out_dir / SOURCE_FILES["marketing_contacts"], sheet_name="readme", has_header=False
    )
    assert readme.height == 1


def test_text_timestamps_follow_each_source_format_inside_the_window(
    sample: SampleSummary,
) -> None:
    formats = {
        ("crm_customers", "created_at"): "%Y-%m-%d %H:%M:%S",
        ("ecommerce_orders", "order_date"): "%Y-%m-%dT%H:%M:%SZ",
        ("support_tickets", "opened_at"): "%m/%d/%Y %H:%M",
        ("marketing_contacts", "Opt-in Date"): "%Y-%m-%d",
        ("web_signups", "signed_up_at"): "%Y-%m-%dT%H:%M:%S",
        ("loyalty_members", "enrolled_on"): "%Y-%m-%d",
    }
    for (source, column), layout in formats.items():
        parsed = read_source(sample.out_dir, source)[column].str.to_datetime(layout, strict=True)
        assert parsed.null_count() == 0
        assert parsed.min().year >= 2022
        assert parsed.max().year <= 2025


def test_total_records_are_within_ten_percent_of_the_request(sample: SampleSummary) -> None:
    assert abs(sample.total_records - RECORDS) <= RECORDS * 0.10
    assert sample.people < RECORDS


def test_same_seed_gives_the_same_data_and_another_seed_does_not(tmp_path: Path) -> None:
    first = generate_sample(tmp_path / "first", records=RECORDS, seed=7)
    again = generate_sample(tmp_path / "again", records=RECORDS, seed=7)
    other = generate_sample(tmp_path / "other", records=RECORDS, seed=8)
    for source in SOURCE_FILES:
        assert_frame_equal(read_source(first.out_dir, source), read_source(again.out_dir, source))
    assert (first.truth_path.read_bytes()) == again.truth_path.read_bytes()
    assert first.truth_path.read_bytes() != other.truth_path.read_bytes()
    assert not read_source(first.out_dir, "crm_customers").equals(
        read_source(other.out_dir, "crm_customers")
    )


def test_truth_covers_exactly_the_keyed_records(sample: SampleSummary) -> None:
    truth = pl.read_csv(sample.truth_path, infer_schema=False)
    assert truth.columns == ["entity_key", "person_id"]
    assert truth["entity_key"].is_unique().all()
    assert truth["person_id"].null_count() == 0
    for source in SOURCE_FILES:
        keys = read_source(sample.out_dir, source)[KEYS[source]].drop_nulls().cast(pl.String)
        expected = {f"{source}:{key}" for key in keys.unique()}
        listed = set(truth.filter(pl.col("entity_key").str.starts_with(f"{source}:"))["entity_key"])
        assert listed == expected


def test_many_people_span_three_or_more_sources(sample: SampleSummary) -> None:
    truth = pl.read_csv(sample.truth_path, infer_schema=False)
    spread = truth.group_by("person_id").agg(
        pl.col("entity_key").str.extract("^([a-z_]+):").n_unique().alias("sources")
    )
    assert spread.filter(pl.col("sources") >= 3).height >= 50
    assert spread.height == sample.people  # the people the truth file holds


def test_in_source_duplicates_and_missing_keys_exist(sample: SampleSummary) -> None:
    for source in ("crm_customers", "support_tickets"):
        keys = read_source(sample.out_dir, source)[KEYS[source]]
        assert keys.null_count() > 0
        assert keys.drop_nulls().is_duplicated().any()
    crm = with_truth(sample.out_dir, "crm_customers").unique("customer_id")
    assert crm["person_id"].is_duplicated().any(), "some people hold two CRM customer ids"


def test_emails_carry_case_whitespace_and_placeholder_noise(sample: SampleSummary) -> None:
    emails = all_values(sample.out_dir, EMAILS)
    assert emails.str.contains("[A-Z]").any()
    assert (emails != emails.str.strip_chars()).any()
    assert emails.str.strip_chars().is_in(list(generator.PLACEHOLDER_EMAILS)).any()
    company_domains = [domain for _, domain in names.COMPANIES]
    domains = emails.str.to_lowercase().str.extract("@(.+)$").drop_nulls()
    assert domains.is_in(company_domains).any()


def test_names_carry_nicknames_and_legacy_layout(sample: SampleSummary) -> None:
    nicknames = {nickname for _, nickname in names.FIRST_NAMES if nickname}
    first_words = (
        read_source(sample.out_dir, "ecommerce_orders")["customer_name"]
        .drop_nulls()
        .str.extract(r"^(\S+)")
    )
    assert first_words.is_in(list(nicknames)).any()
    erp_names = read_source(sample.out_dir, "erp_customers")["NAME"].drop_nulls()
    assert (erp_names == erp_names.str.to_uppercase()).all()
    assert erp_names.str.contains(", ").mean() > 0.9


def test_loyalty_ids_come_with_format_noise(sample: SampleSummary) -> None:
    loyalty = pl.concat(
        [
            read_source(sample.out_dir, "ecommerce_orders")["loyalty_id"],
            read_source(sample.out_dir, "pos_transactions")["loyalty_number"],
        ]
    ).drop_nulls()
    assert loyalty.str.contains(r"^LY\d+$").mean() > 0.5
    assert (~loyalty.str.contains(r"^LY\d+$")).any()


def test_phone_noise_includes_placeholders_and_shared_numbers(sample: SampleSummary) -> None:
    phones = all_values(sample.out_dir, PHONES)
    assert phones.is_in(list(generator.PLACEHOLDER_PHONES)).any()
    layouts = phones.str.replace_all(r"\d", "9").unique()
    assert layouts.len() >= 5
    linked = pl.concat(
        [
            with_truth(sample.out_dir, source).select(
                phone=pl.col(column).cast(pl.String), person_id="person_id"
            )
            for source, column in PHONES.items()
        ]
    ).filter(~pl.col("phone").is_in(list(generator.PLACEHOLDER_PHONES)))
    by_number = (
        linked.with_columns(digits=pl.col("phone").str.replace_all(r"\D", "").str.slice(-10))
        .group_by("digits")
        .agg(pl.col("person_id").n_unique().alias("people"))
    )
    assert by_number.filter(pl.col("people") > 1).height > 0


def test_real_phones_are_valid_us_numbers(sample: SampleSummary) -> None:
    phones = all_values(sample.out_dir, PHONES)
    real = phones.filter(~phones.is_in(list(generator.PLACEHOLDER_PHONES)))
    assert real.len() > 300
    for phone in real.sample(300, seed=1):
        parsed = phonenumbers.parse(phone, "US")
        assert phonenumbers.is_valid_number(parsed), phone
        assert re.fullmatch(r"[2-9]\d\d[2-9]\d{6}", str(parsed.national_number))


def test_marketing_sheet_respects_the_row_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generator, "MARKETING_ROW_CAP", 40)
    capped = generate_sample(tmp_path, records=RECORDS, seed=3)
    assert capped.records["marketing_contacts"] == 40
    assert read_source(tmp_path, "marketing_contacts").height == 40
    assert abs(capped.total_records - RECORDS) <= RECORDS * 0.10


def test_rejects_non_positive_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="records must be positive"):
        generate_sample(tmp_path, records=0)


def employers(root: Path) -> pl.DataFrame:
    """person_id -> company key, from work-domain emails anywhere and the marketing Company."""
    domains = pl.DataFrame(
        {
            "domain": [domain for _, domain in names.COMPANIES],
            "name": [n for n, _ in names.COMPANIES],
        }
    ).select("domain", company=company_key(pl.col("name")))
    emails = pl.concat(
        [
            with_truth(root, source).select(
                "person_id",
                domain=pl.col(column)
                .cast(pl.String)
                .str.strip_chars()
                .str.to_lowercase()
                .str.extract("@(.+)$"),
            )
            for source, column in EMAILS.items()
        ]
    ).join(domains, on="domain")
    marketing = with_truth(root, "marketing_contacts").select(
        "person_id", company=company_key(pl.col("Company"))
    )
    return pl.concat([emails.select("person_id", "company"), marketing]).drop_nulls().unique()


def test_each_b2b_account_belongs_to_exactly_one_company(sample: SampleSummary) -> None:
    raw = read_source(sample.out_dir, "crm_customers")["account_id"].drop_nulls()
    assert 0.1 < raw.len() / sample.records["crm_customers"] < 0.4
    assert raw.str.contains(r"^ACC-\d{5}$").mean() > 0.7
    assert (~raw.str.contains(r"^ACC-\d{5}$")).any(), "some account ids carry format noise"
    crm = (
        with_truth(sample.out_dir, "crm_customers")
        .filter(pl.col("account_id").is_not_null())
        .select("person_id", account=account_key(pl.col("account_id")))
    )
    assert crm["account"].str.contains(r"^ACC\d{5}$").all()
    per_person = crm.group_by("person_id").agg(pl.col("account").n_unique())
    assert (per_person["account"] == 1).all()
    staff = crm.group_by("account").agg(pl.col("person_id").n_unique().alias("people"))
    assert staff.filter(pl.col("people") >= 2).height >= 5
    linked = crm.join(employers(sample.out_dir), on="person_id").unique()
    companies = linked.group_by("account").agg(pl.col("company").n_unique())
    assert companies.height >= 10
    assert (companies["company"] == 1).all(), "people sharing an account share an employer"
    accounts = linked.group_by("company").agg(pl.col("account").n_unique())
    assert (accounts["account"] == 1).all(), "an employer has a single account"


def test_job_titles_appear_only_alongside_a_company(sample: SampleSummary) -> None:
    crm = read_source(sample.out_dir, "crm_customers")
    marketing = read_source(sample.out_dir, "marketing_contacts")
    titled = crm.filter(pl.col("job_title").is_not_null())
    assert titled.height > 0
    assert titled["account_id"].null_count() == 0
    assert titled["job_title"].is_in(list(names.JOB_TITLES)).all()
    with_company = marketing.filter(pl.col("Company").is_not_null())
    assert marketing.filter(pl.col("Company").is_null())["Job Title"].is_null().all()
    assert with_company["Job Title"].is_not_null().mean() > 0.9
    assert with_company["Job Title"].drop_nulls().is_in(list(names.JOB_TITLES)).all()
    both = (
        with_truth(sample.out_dir, "crm_customers")
        .select("person_id", crm_title="job_title")
        .join(
            with_truth(sample.out_dir, "marketing_contacts").select(
                "person_id", marketing_title="Job Title"
            ),
            on="person_id",
        )
        .drop_nulls()
    )
    same = both["crm_title"] == both["marketing_title"]
    assert both.height >= 10
    assert same.mean() > 0.5, "mostly the CRM title (some people moved on to a newer one)"


def test_marketing_company_names_carry_legal_suffix_and_case_noise(sample: SampleSummary) -> None:
    company = read_source(sample.out_dir, "marketing_contacts")["Company"].drop_nulls()
    canonical = [name for name, _ in names.COMPANIES]
    keys = pl.select(company_key(pl.lit(pl.Series(canonical)))).to_series()
    spelled = company.to_frame("raw").with_columns(key=company_key(pl.col("raw")))
    assert spelled["key"].is_in(keys.implode()).all()
    assert (~company.is_in(canonical)).mean() > 0.1
    assert (company == company.str.to_uppercase()).any()
    spellings = spelled.group_by("key").agg(pl.col("raw").str.to_lowercase().n_unique())
    assert spellings.filter(pl.col("raw") >= 2).height >= 2
