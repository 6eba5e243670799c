"""Reading source extracts: every supported format becomes the same shape of frame.

All values are read as text. Types in customer extracts are unreliable (a phone column
inferred as integer loses its leading zeros, an id inferred as float gains ".0"), and
every later stage parses what it needs explicitly, so text is the honest common ground.
Each row keeps its provenance: the batch file it came from and its row number there.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import fastexcel
import polars as pl

from customer360.core.spec import Source, Spec
from customer360.core.workbook_header import header_names

if TYPE_CHECKING:
    from customer360.core.batch_cache import BatchCache

BATCH_COLUMN = "_batch"
ROW_COLUMN = "_row"
# Set on rows standing for input that could not be read as a record (a malformed line,
# an unreadable file): the records stage quarantines them with this reason.
REJECT_COLUMN = "_reject_reason"
RAW_LINE_COLUMN = "_raw_line"
# What a batch's name may not contain: the name is its partition key in the asset graph,
# and Dagster refuses these in partition keys ("..." marks a range of keys there).
UNKEYABLE_SUBSTRINGS = ("...", "\a", "\b", "\f", "\n", "\r", "\t", "\v", "\0")
# Lines of an NDJSON batch, or objects of a JSON one, whose keys the spec check reads
# first (see read_columns).
NDJSON_SAMPLE_LINES = 1000
# Of a JSON batch, the spec check reads the first objects within this many bytes.
JSON_SAMPLE_BYTES = 1 << 20
# Formats whose columns the spec check first takes from a cheap read that may miss some
# (the keys of the first objects, a worksheet's text header cells): a column it misses
# there is looked for as the reader reads the file.
SAMPLED_FORMATS = {"ndjson", "json", "xlsx"}
# Whitespace and the commas between a JSON array's elements.
_JSON_SEPARATORS = re.compile(r"[\s,]*")

EXTENSIONS: dict[str, tuple[str, ...]] = {
    "csv": (".csv", ".txt"),
    "tsv": (".tsv", ".txt"),
    "ndjson": (".ndjson", ".jsonl", ".json"),
    "json": (".json",),
    "parquet": (".parquet", ".pq"),
    "xlsx": (".xlsx",),
    "duckdb": (".duckdb", ".db"),
}


# Formats whose every batch has a header naming all its columns. NDJSON and JSON objects
# leave out keys they have no value for, so a batch of them may lack an attribute column.
HEADED_FORMATS = {"csv", "tsv", "parquet", "xlsx", "duckdb"}


class SourceReadError(RuntimeError):
    """A batch file that cannot be read at all; the message names the file and the fix."""


class MissingColumnsError(SourceReadError):
    """A batch whose header lacks columns the spec reads — renamed or dropped upstream.
    Read anyway, its rows would lose those values without a word."""


def list_batches(spec: Spec, source: Source) -> list[Path]:
    """The batch files of a source: the file itself, or the matching files of its folder.

    A folder with no batches yet, or a declared folder (``path`` ending in ``/``) that
    does not exist yet, has none: nothing has arrived.
    """
    path = spec.resolve(source.path)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(
            p
            for p in path.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix in EXTENSIONS[source.format]
        )
    return []


def batch_name(spec: Spec, source: Source, path: Path) -> str:
    """How a batch is named in outputs: its path relative to the source's path."""
    root = spec.resolve(source.path)
    return path.name if root == path else str(path.relative_to(root))


def unkeyable_name_problem(name: str) -> str | None:
    """Why a batch name cannot be a partition key, naming the fix; None when it can."""
    found = [repr(part) for part in UNKEYABLE_SUBSTRINGS if part in name]
    if not found:
        return None
    return (
        f"the file name {name!r} contains {', '.join(found)}, which a partition key may "
        "not hold; rename the file"
    )


def read_batch(spec: Spec, source: Source, path: Path) -> pl.DataFrame:
    """One batch file as text columns (aliases applied) plus ``_batch`` and ``_row``."""
    try:
        frame = _read_raw(source, path)
    except Exception as exc:  # every reader library raises its own types
        raise SourceReadError(
            f"source '{source.name}': cannot read {path} as {source.format}: {exc}. "
            f"Check that the file really is {source.format} (or fix sources[].format"
            f"{', or sources[].sheet' if source.format == 'xlsx' else ''})."
        ) from exc
    frame = (
        _as_text(frame)
        .rename(lambda c: c.strip().lstrip("\ufeff"))
        .rename({old: new for old, new in source.aliases.items()}, strict=False)
    )
    if source.format in HEADED_FORMATS:
        where = f"sources[{spec.sources.index(source)}] ({source.name})"
        problems = _column_problems(where, source, path, frame.columns)
        if problems:
            raise MissingColumnsError(
                f"{path.name} lacks columns the spec reads; rename them in the file or map "
                f"them with sources[].aliases: {'; '.join(problems)}"
            )
    return frame.with_columns(
        pl.lit(batch_name(spec, source, path)).alias(BATCH_COLUMN),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_COLUMN),
    )


def batch_path(spec: Spec, source: Source, name: str) -> Path:
    """The file of a batch named as :func:`batch_name` names it."""
    root = spec.resolve(source.path)
    return root if root.is_file() and root.name == name else root / name


def read_one_batch(
    spec: Spec, source: Source, path: Path, cache: BatchCache | None = None
) -> pl.DataFrame:
    """One batch of a source as :func:`read_source` reads it (an unreadable file becomes
    one rejected row); with a ``cache``, kept when read before."""

    def read(batch: Path) -> pl.DataFrame:
        return _read_batch_or_reject(spec, source, batch)

    if cache is None:
        return read(path)
    return cache.read(spec, source, [path], read, every_batch=False)[0]


def read_source(spec: Spec, source: Source, cache: BatchCache | None = None) -> pl.DataFrame:
    """Every batch of a source, stacked; columns missing from a batch are null there.

    A folder source with no batches yet gives no rows (the records stage supplies the
    columns the spec reads); a missing file is an error. With a ``cache``, batches read
    before with the same content come from it instead of their files.
    """
    batches = list_batches(spec, source)
    if not batches and not awaits_batches(spec, source):
        raise SourceReadError(
            f"source '{source.name}': no {source.format} files at {spec.resolve(source.path)}; "
            "check sources[].path or generate the sample data"
        )

    def read(path: Path) -> pl.DataFrame:
        return _read_batch_or_reject(spec, source, path)

    frames = (
        [read(path) for path in batches]
        if cache is None
        else cache.read(spec, source, batches, read)
    )
    if not frames:
        return pl.DataFrame(schema={BATCH_COLUMN: pl.String, ROW_COLUMN: pl.Int64})
    return pl.concat(frames, how="diagonal_relaxed")


def awaits_batches(spec: Spec, source: Source) -> bool:
    """A folder of batches — existing, or declared with a trailing ``/`` — rather than a
    file: having no batches in it is a valid state, not a wrong path."""
    return spec.resolve(source.path).is_dir() or (
        source.path.endswith("/") and not spec.resolve(source.path).exists()
    )


def _read_batch_or_reject(spec: Spec, source: Source, path: Path) -> pl.DataFrame:
    """A batch that cannot be read, lacks columns or has a name that cannot be its
    partition key fails alone: it becomes one rejected row naming the file and the
    problem, and the other batches go on (a batch with no partition is never read, so
    the records are always those of the batches the asset graph shows)."""
    name = batch_name(spec, source, path)
    unkeyable = unkeyable_name_problem(name)
    if unkeyable:
        return _rejected(name, f"batch rejected: source '{source.name}': {path}: {unkeyable}")
    try:
        return read_batch(spec, source, path)
    except SourceReadError as exc:
        failure = (
            "batch rejected" if isinstance(exc, MissingColumnsError) else "file could not be read"
        )
        return _rejected(name, f"{failure}: {exc}")


def _rejected(name: str, reason: str) -> pl.DataFrame:
    """The one row standing for a batch that could not be read."""
    return pl.DataFrame(
        {REJECT_COLUMN: [reason], BATCH_COLUMN: [name], ROW_COLUMN: [0]},
        schema={REJECT_COLUMN: pl.String, BATCH_COLUMN: pl.String, ROW_COLUMN: pl.Int64},
    )


def read_columns(spec: Spec, source: Source, path: Path, *, whole_file: bool = True) -> list[str]:
    """Column names of a batch after aliasing, reading as little of the file as possible.

    NDJSON and JSON objects need not all have the same keys, so only the whole file gives
    every column; ``whole_file=False`` reads the keys of the first objects instead — a
    subset of the columns, enough to confirm that the columns a spec names are there. A
    workbook's header is read as the reader reads it, which parses the whole sheet;
    ``whole_file=False`` takes the header's text cells from the file itself instead (see
    :mod:`customer360.core.workbook_header`).
    """
    if source.format in ("csv", "tsv"):
        head = pl.read_csv(
            path,
            n_rows=0,
            separator=_separator(source),
            infer_schema=False,
            encoding=source.encoding,
        )
        names = head.columns
    elif source.format == "parquet":
        names = list(pl.read_parquet_schema(path))
    elif source.format == "duckdb":
        with duckdb.connect(str(path), read_only=True) as con:
            names = con.sql(f'SELECT * FROM "{source.table}" LIMIT 0').columns
    elif source.format == "xlsx":
        names = (None if whole_file else header_names(path, source.sheet)) or _sheet_columns(
            source, path
        )
    elif source.format == "ndjson" and not whole_file:
        sample = pl.scan_ndjson(path, infer_schema_length=NDJSON_SAMPLE_LINES)
        names = sample.collect_schema().names()
    elif source.format == "json" and not whole_file:
        names = _json_sample_columns(path)
        if names is None:  # not an array of objects: read as the reader reads it
            names = _read_raw(source, path).columns
    else:
        names = _read_raw(source, path).columns
    stripped = [name.strip().lstrip("\ufeff") for name in names]
    return [source.aliases.get(name, name) for name in stripped]


def _sheet_columns(source: Source, path: Path) -> list[str]:
    """The header row only, named as read_excel names them (it reads with fastexcel)."""
    sheet = fastexcel.read_excel(path).load_sheet(
        source.sheet if source.sheet is not None else 0, n_rows=0
    )
    return [column.name for column in sheet.available_columns()]


def _json_sample_columns(path: Path) -> list[str] | None:
    """The keys of a JSON array's first objects, in order of appearance: those that end
    within its first JSON_SAMPLE_BYTES, at most NDJSON_SAMPLE_LINES of them. None when
    the file does not open as an array of objects.

    Reading a whole JSON batch to learn its columns costs as much as reading its rows
    (0.9 CPU s for the 76 MB of web sign-ups at ten million records), and the spec is
    checked at the start of every run.
    """
    with path.open("rb") as handle:
        head = handle.read(JSON_SAMPLE_BYTES).decode("utf-8-sig", errors="replace").lstrip()
    if not head.startswith("["):
        return None
    decoder = json.JSONDecoder()
    names: dict[str, None] = {}
    position = 1
    for _ in range(NDJSON_SAMPLE_LINES):
        position = _JSON_SEPARATORS.match(head, position).end()
        try:
            item, position = decoder.raw_decode(head, position)
        except ValueError:  # the array's end, or an object cut off by the sample's end
            break
        if not isinstance(item, dict):
            return None
        names.update(dict.fromkeys(item))
    return list(names) or None


def mapping_expr(mapping: str, columns: list[str]) -> pl.Expr:
    """A mapping is a column name when it names one, else a Polars SQL expression."""
    return pl.col(mapping) if mapping in columns else pl.sql_expr(mapping)


def mapping_columns(mapping: str, columns: list[str]) -> list[str]:
    """The source columns a mapping reads (raises if the expression does not parse)."""
    if mapping in columns:
        return [mapping]
    return list(dict.fromkeys(pl.sql_expr(mapping).meta.root_names()))


def source_problems(spec: Spec, source: Source) -> list[str]:
    """Everything wrong between a source's spec entry and its file, as readable problems.

    The columns come from the cheapest read that can confirm them (see
    :func:`read_columns`); a column that seems missing is looked for in the whole file.
    """
    where = f"sources[{spec.sources.index(source)}] ({source.name})"
    batches = list_batches(spec, source)
    if not batches and awaits_batches(spec, source):
        return []  # nothing to check the mappings against until a batch arrives
    if not batches:
        return [
            f"{where}.path: no {source.format} file at {spec.resolve(source.path)}; "
            "fix the path, or run `customer360 sample` to generate the sample data"
        ]
    try:
        columns = read_columns(spec, source, batches[0], whole_file=False)
        problems = _column_problems(where, source, batches[0], columns)
        if problems and source.format in SAMPLED_FORMATS:
            columns = read_columns(spec, source, batches[0])
            problems = _column_problems(where, source, batches[0], columns)
    except Exception as exc:
        return [f"{where}.path: cannot read {batches[0]} as {source.format}: {exc}"]
    return problems + hashed_column_problems(spec, source, columns)


def _column_problems(where: str, source: Source, batch: Path, columns: list[str]) -> list[str]:
    """Columns the spec entry names that the batch lacks, and mappings that do not parse."""
    problems = []
    available = ", ".join(columns)
    required = {"key": source.key}
    if source.updated_at:
        required["updated_at"] = source.updated_at
    for key, column in required.items():
        if column not in columns:
            problems.append(
                f"{where}.{key}: column '{column}' not in {batch.name}; "
                f"use one of: {available} (or add an alias)"
            )
    mappings = {f"identifiers.{k}": v for k, v in source.identifiers.items()}
    mappings |= {f"attributes.{k}": v for k, v in source.attributes.items()}
    for key, mapping in mappings.items():
        try:
            used = mapping_columns(mapping, columns)
        except Exception as exc:
            problems.append(
                f"{where}.{key}: '{mapping}' is neither a column of {batch.name} nor a "
                f"valid SQL expression ({exc}); use one of: {available}"
            )
            continue
        missing = [c for c in used if c not in columns]
        if missing:
            problems.append(
                f"{where}.{key}: unknown column {', '.join(repr(c) for c in missing)} "
                f"in {batch.name}; use one of: {available} (or add an alias)"
            )
    return problems


def hashed_column_problems(spec: Spec, source: Source, columns: list[str]) -> list[str]:
    """A hashed identifier is hashed in place, in the column it is mapped from, before
    anything else reads the source: that column must be mapped as it is (not through an
    expression) and must feed nothing else, or its plain text would travel on."""
    where = f"sources[{spec.sources.index(source)}] ({source.name})"
    used: dict[str, list[str]] = {}  # mapping key → the columns it reads
    for key, mapping in _mappings(source).items():
        try:
            used[key] = mapping_columns(mapping, columns)
        except Exception:  # a mapping that does not parse is reported by source_problems
            continue
    problems = []
    for name in (n for n in source.identifiers if n in spec.hashed_identifier_types):
        mapping, key = source.identifiers[name], f"identifiers.{name}"
        if mapping in columns:
            others = [other for other, read in used.items() if mapping in read and other != key]
            if others:
                problems.append(
                    f"{where}.{key}: column '{mapping}' is hashed, but {', '.join(others)} "
                    "also read(s) it and would keep its plain text (a key would put it in "
                    "every entity_key); read another column there"
                )
        elif key in used and all(column in columns for column in used[key]):
            problems.append(
                f"{where}.{key}: a hashed identifier must map a column as it is, not an "
                "expression; map the column and transform it with the type's normalizer "
                "(normalizer: expression)"
            )
    return problems


def _mappings(source: Source) -> dict[str, str]:
    """Every column or expression a source's spec entry reads, by its key in the spec."""
    mappings = {"key": source.key}
    if source.updated_at:
        mappings["updated_at"] = source.updated_at
    for section in ("identifiers", "attributes", "measures"):
        for name, mapping in getattr(source, section).items():
            mappings[f"{section}.{name}"] = mapping
    return mappings


def _separator(source: Source) -> str:
    return "\t" if source.format == "tsv" else ","


def _read_raw(source: Source, path: Path) -> pl.DataFrame:
    match source.format:
        case "csv" | "tsv":
            return _read_delimited(source, path)
        case "ndjson":
            return pl.read_ndjson(path, infer_schema_length=None)
        case "json":
            return pl.read_json(path, infer_schema_length=None)
        case "parquet":
            return pl.read_parquet(path)
        case "xlsx":
            return pl.read_excel(path, sheet_name=source.sheet, infer_schema_length=0)
        case "duckdb":
            with duckdb.connect(str(path), read_only=True) as con:
                return con.sql(f'SELECT * FROM "{source.table}"').pl()
    raise AssertionError(f"unhandled format {source.format}")


def _read_delimited(source: Source, path: Path) -> pl.DataFrame:
    """CSV/TSV as text. A file with malformed lines is read again line-tolerantly: the
    good lines are kept and every bad line becomes a row carrying ``_reject_reason``
    (line number and what is wrong) and ``_raw_line``, which the records stage
    quarantines. Nothing is dropped without a row that says so."""
    options = {"separator": _separator(source), "infer_schema": False}
    try:
        return pl.read_csv(path, encoding=source.encoding, **options)
    except pl.exceptions.NoDataError:
        raise SourceReadError(f"{path} is empty (not even a header line)") from None
    except pl.exceptions.ComputeError:
        header = pl.read_csv(path, n_rows=0, encoding=source.encoding, **options).columns
        return _read_delimited_leniently(source, path, header)


def _read_delimited_leniently(source: Source, path: Path, header: list[str]) -> pl.DataFrame:
    columns = ", ".join(f"'{_sql_text(name)}': 'VARCHAR'" for name in header)
    encoding = "latin-1" if source.encoding == "latin1" else "utf-8"
    query = (
        f"SELECT * FROM read_csv('{_sql_text(str(path))}', auto_detect=false, header=true, "
        f"delim='{_sql_text(_separator(source))}', quote='\"', escape='\"', "
        f"encoding='{encoding}', columns={{{columns}}}, store_rejects=true, "
        "ignore_errors=true, parallel=false)"
    )
    with duckdb.connect() as con:
        good = con.sql(query).pl()
        bad = con.sql(
            "SELECT line, error_type, error_message, csv_line FROM reject_errors ORDER BY line"
        ).pl()
    rejects = bad.select(
        pl.format(
            "malformed line {}: {} ({})",
            pl.col("line"),
            pl.col("error_type").cast(pl.String).str.to_lowercase(),
            pl.col("error_message"),
        ).alias(REJECT_COLUMN),
        pl.col("csv_line").alias(RAW_LINE_COLUMN),
    )
    frames = [good, rejects]
    lost = _data_lines(path) - good.height - bad.height
    if lost > 0:
        frames.append(
            pl.DataFrame(
                {
                    REJECT_COLUMN: [
                        f"{lost} line(s) could not be parsed at all — usually an unterminated "
                        "quote that runs to the end of the file; fix the quoting"
                    ]
                }
            )
        )
    return pl.concat(frames, how="diagonal_relaxed")


def _data_lines(path: Path) -> int:
    """Non-empty lines after the header, counted in C over the file's bytes."""
    content = path.read_bytes()
    lines = content.count(b"\n") + (0 if content.endswith(b"\n") else 1)
    blank = content.count(b"\n\n") + content.count(b"\r\n\r\n")
    return max(lines - 1 - blank, 0)


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text: objects as JSON, lists joined with commas."""
    exprs = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if isinstance(dtype, pl.Struct):
            exprs.append(
                pl.when(column.is_null())
                .then(None)
                .otherwise(column.struct.json_encode())
                .alias(name)
            )
        elif isinstance(dtype, (pl.List, pl.Array)):
            exprs.append(column.list.eval(pl.element().cast(pl.String)).list.join(", "))
        elif dtype != pl.String:
            exprs.append(column.cast(pl.String))
    return frame.with_columns(exprs) if exprs else frame
