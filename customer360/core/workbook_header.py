"""A worksheet's column names from its header row alone.

The spreadsheet reader parses a whole sheet before it hands back even its header (0.6
CPU s for the 72,000 rows of the marketing workbook at ten million records), and the spec
is checked against every source's columns at the start of every run. An ``.xlsx`` file is
a zip of XML parts: the header's cells open the sheet's part, and the texts they point to
usually open the shared strings, so both are streamed only as far as they are needed.

Only text cells are named here, from a header in the sheet's first row; what the reader
makes of a number, a date, an empty cell or a header further down is its own affair. The
names are therefore some of the reader's — enough to confirm that the columns a spec
names are there — and the reader itself is asked whenever one seems missing (or anything
here is not as expected: None).
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
RELATIONSHIP_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
RELATIONSHIP = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
# Characters Excel escapes in its text (_x000D_): left to the reader to unescape.
ESCAPED = re.compile(r"_x[0-9A-Fa-f]{4}_")
SHARED_STRINGS = "xl/sharedStrings.xml"


def header_names(path: Path, sheet: str | None) -> list[str] | None:
    """The texts of the header row's text cells of ``sheet`` (default: the first sheet),
    in order; None when the workbook is not laid out as this reads it."""
    try:
        with zipfile.ZipFile(path) as archive:
            part = _sheet_part(archive, sheet)
            cells = None if part is None else _first_row(archive, part)
            if not cells:
                return None
            wanted = {int(value) for kind, value in cells if kind == "s"}
            strings = _shared_strings(archive, wanted) if wanted else {}
            names = [strings.get(int(value)) if kind == "s" else value for kind, value in cells]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, ElementTree.ParseError):
        return None
    if any(name is None or ESCAPED.search(name) for name in names):
        return None
    return [name for name in names if name]


def _sheet_part(archive: zipfile.ZipFile, sheet: str | None) -> str | None:
    """The zip member holding the sheet named ``sheet``, or the first sheet's."""
    workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    sheets = workbook.findall(f"{MAIN}sheets/{MAIN}sheet")
    chosen = next((s for s in sheets if sheet is None or s.get("name") == sheet), None)
    if chosen is None:
        return None
    relations = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target") for r in relations.iter(RELATIONSHIP)}
    target = targets.get(chosen.get(RELATIONSHIP_ID))
    if not target:
        return None
    return target.lstrip("/") if target.startswith("/") else posixpath.join("xl", target)


def _first_row(archive: zipfile.ZipFile, part: str) -> list[tuple[str, str]] | None:
    """(kind, value) of the text cells of the sheet's first row with a value — 's' and
    the index of a shared string, or 'text' and the text — when that row is row 1."""
    with archive.open(part) as stream:
        for row in _rows(stream):
            cells = [cell for cell in row.iter(f"{MAIN}c") if _has_value(cell)]
            if not cells:
                continue
            if row.get("r") != "1":
                return None
            return [text for text in map(_cell_text, cells) if text is not None]
    return None


def _rows(stream) -> Iterator[ElementTree.Element]:
    """The sheet's rows, each complete, as the part streams past."""
    for _, element in ElementTree.iterparse(stream):
        if element.tag == f"{MAIN}row":
            yield element


def _has_value(cell: ElementTree.Element) -> bool:
    return cell.find(f"{MAIN}v") is not None or cell.find(f"{MAIN}is") is not None


def _cell_text(cell: ElementTree.Element) -> tuple[str, str] | None:
    """A text cell's (kind, value); None for any other cell."""
    kind = cell.get("t")
    if kind == "s":
        return "s", cell.findtext(f"{MAIN}v", "")
    if kind == "str":
        return "text", cell.findtext(f"{MAIN}v", "")
    if kind == "inlineStr":
        rich = cell.find(f"{MAIN}is")
        return "text", "" if rich is None else _rich_text(rich)
    return None


def _shared_strings(archive: zipfile.ZipFile, wanted: set[int]) -> dict[int, str]:
    """The shared strings at the ``wanted`` positions, read until the last of them."""
    found: dict[int, str] = {}
    with archive.open(SHARED_STRINGS) as stream:
        position = 0
        for _, element in ElementTree.iterparse(stream):
            if element.tag != f"{MAIN}si":
                continue
            if position in wanted:
                found[position] = _rich_text(element)
                if len(found) == len(wanted):
                    break
            element.clear()
            position += 1
    return found


def _rich_text(item: ElementTree.Element) -> str:
    """A string item's text: its own text, or its runs' (phonetic hints left out)."""
    plain = item.find(f"{MAIN}t")
    if plain is not None:
        return plain.text or ""
    return "".join(run.findtext(f"{MAIN}t", "") for run in item.findall(f"{MAIN}r"))
