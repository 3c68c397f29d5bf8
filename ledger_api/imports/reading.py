"""Reading an uploaded statement: bytes -> a header and rows of text cells.

Nothing here knows what a column means (that is the profile's job, `profiles.py`), and
nothing is parsed recursively. Every refusal is an `UnreadableFile` with a stable `code`:

- `file-too-large`: over MAX_FILE bytes (the route's body limit refuses a bigger request
  with 413 before it is read at all).
- `binary-file`: NUL bytes, or text that decodes to nothing sensible (a picture or a
  program renamed `.csv`).
- `undecodable`: charset-normalizer found no encoding that reads the file.
- `no-header`: no header row among the first HEADER_SEARCH rows.
- `too-many-rows`, `cell-too-long`: over MAX_ROWS data rows or a cell over MAX_CELL chars.
- `bad-xlsx`, `xlsx-too-large`: a spreadsheet openpyxl cannot open, or whose zip would
  inflate past MAX_XLSX_INFLATED bytes or MAX_XLSX_ENTRIES entries (a zip bomb), checked
  with `zipfile` before openpyxl opens it.

CSV/TSV: the encoding is detected by charset-normalizer (Chinese banks export GB18030 or
GBK, with or without a BOM); a guess in the GB family is read as GB18030, its superset. A
UTF-8 BOM is stripped. The delimiter is sniffed among `, ; TAB |`. The header is the first
of the first rows that is mostly non-numeric and as wide as most rows after it: bank
exports put a few title lines (account, period) above it.

XLSX: the first sheet, read-only and data-only: a formula is never evaluated; its cached
value is read when the file has one, else the formula's text as plain text.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from charset_normalizer import from_bytes
from openpyxl import load_workbook

MAX_FILE = 10 * 1024 * 1024  # an upload; a month of a busy charity's statement is < 2 MB
MAX_ROWS = 20_000
MAX_CELL = 1_000
MAX_COLUMNS = 100
HEADER_SEARCH = 20
MAX_XLSX_INFLATED = 100 * 1024 * 1024
MAX_XLSX_ENTRIES = 1_000
DELIMITERS = ",;\t|"
_GB_FAMILY = {"gb2312", "gbk", "gb18030", "hz", "cp936"}
# Full-width digits and commas too (U+FF0C, U+FF10-U+FF19).
_NUMERIC = re.compile("^[\\s¥\uffe5$+\\-().,\uff0c0-9\uff10-\uff19:/年月日]*$")


class UnreadableFile(Exception):
    """The upload cannot be read as a statement; nothing was stored."""

    def __init__(self, code: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.params = params


@dataclass
class Table:
    """A statement as text: the header's cells, and each data row with its line number
    in the file (1-based, as a spreadsheet shows it)."""

    header: list[str]
    rows: list[tuple[int, list[str]]]
    encoding: str
    delimiter: str | None
    header_line: int
    notes: list[str] = field(default_factory=list)


def read(data: bytes, filename: str = "") -> Table:
    """Read CSV, TSV or XLSX bytes (XLSX recognised by its zip signature, whatever the
    file is called)."""
    if len(data) > MAX_FILE:
        raise UnreadableFile("file-too-large", f"the file is over {MAX_FILE} bytes", limit=MAX_FILE)
    if not data.strip():
        raise UnreadableFile("empty-file", "the file is empty")
    if data.startswith(b"PK\x03\x04"):
        return _from_rows(_xlsx_rows(data), "xlsx", None)
    text, encoding = decode(data)
    delimiter = _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    rows: list[list[str]] = []
    try:
        for row in reader:
            rows.append(row)
            _bound(rows)
    except csv.Error as exc:
        raise UnreadableFile("bad-csv", f"the file is not readable CSV ({exc})") from None
    return _from_rows(rows, encoding, delimiter)


def decode(data: bytes) -> tuple[str, str]:
    """The file's text and the encoding it was read with."""
    if b"\x00" in data:
        raise UnreadableFile("binary-file", "this is a binary file, not a CSV or XLSX statement")
    if data.startswith(codecs.BOM_UTF8):
        return _sensible(data[3:], "utf-8"), "utf-8-sig"
    try:
        return _sensible(data, "utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    # GB18030 first when it reads the file as Chinese text: charset-normalizer took a
    # 30-row GB18030 statement for TIS-620 (Thai), and Chinese banks are what we read.
    try:
        chinese = data.decode("gb18030")
    except UnicodeDecodeError:
        chinese = ""
    wide = [ch for ch in chinese if ord(ch) > 0x7F]
    if wide and sum(1 for ch in wide if _common_chinese(ch)) >= 0.9 * len(wide):
        return _sensible(data, "gb18030"), "gb18030"
    best = from_bytes(data[:200_000]).best()
    # A guess in the GB family is read as GB18030 (their superset); no guess (a short file,
    # or one with a few control characters) is tried as GB18030 too: what Chinese banks use.
    guess = best.encoding.lower().replace("-", "").replace("_", "") if best is not None else "gb18030"
    name = "gb18030" if guess in _GB_FAMILY or guess.startswith("gb") else guess
    try:
        return _sensible(data, name), name
    except (UnicodeDecodeError, LookupError):
        raise UnreadableFile("undecodable", "the file's text encoding is not recognised") from None


def _common_chinese(character: str) -> bool:
    """In GB2312 (the 6,763 common characters and Chinese punctuation): Latin text read as
    GB18030 by mistake ("Müller" in cp1252) turns into rare characters outside it."""
    try:
        character.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _sensible(data: bytes, encoding: str) -> str:
    text = data.decode(encoding)
    # Control characters other than line breaks and tabs do not occur in a text export.
    controls = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\r\n\t") or 0x7F <= ord(ch) < 0xA0)
    if controls > max(8, len(text) // 100):
        raise UnreadableFile("binary-file", "this is a binary file, not a CSV or XLSX statement")
    return text


def _delimiter(text: str) -> str:
    sample = "\n".join(text.splitlines()[:40])
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {d: sample.count(d) for d in DELIMITERS}
        return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _bound(rows: list[list[str]]) -> None:
    if len(rows) > MAX_ROWS + HEADER_SEARCH + 1:
        raise UnreadableFile("too-many-rows", f"the file has over {MAX_ROWS} rows", limit=MAX_ROWS)
    row = rows[-1]
    if len(row) > MAX_COLUMNS:
        raise UnreadableFile(
            "too-many-columns", f"line {len(rows)} has over {MAX_COLUMNS} columns", line=len(rows)
        )
    for cell in row:
        if len(cell) > MAX_CELL:
            raise UnreadableFile(
                "cell-too-long",
                f"line {len(rows)} has a cell over {MAX_CELL} characters",
                line=len(rows),
                limit=MAX_CELL,
            )


def _looks_like_header(row: list[str], later: list[list[str]]) -> bool:
    cells = [c.strip() for c in row if c.strip()]
    if len(cells) < 2:
        return False
    words = sum(1 for c in cells if not _NUMERIC.match(c))
    if words * 2 <= len(cells):
        return False
    width = len(row)
    same = [r for r in later[:10] if any(c.strip() for c in r)]
    # A row as wide as the header, or a little narrower (a spreadsheet drops empty cells
    # at the end of a row), never wider.
    return not same or sum(1 for r in same if width // 2 < len(r) <= width) * 2 > len(same)


def _from_rows(rows: list[list[str]], encoding: str, delimiter: str | None) -> Table:
    for i, row in enumerate(rows[:HEADER_SEARCH]):
        if _looks_like_header(row, rows[i + 1 :]):
            header = [c.strip() for c in row]
            data = [
                (i + 1 + n, [c.strip() for c in r])
                for n, r in enumerate(rows[i + 1 :], start=1)
                if any(c.strip() for c in r)
            ]
            if len(data) > MAX_ROWS:
                raise UnreadableFile("too-many-rows", f"the file has over {MAX_ROWS} rows", limit=MAX_ROWS)
            return Table(header, data, encoding, delimiter, i + 1)
    raise UnreadableFile(
        "no-header", f"no header row (column names) in the first {HEADER_SEARCH} lines", limit=HEADER_SEARCH
    )


def _xlsx_rows(data: bytes) -> list[list[str]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise UnreadableFile("bad-xlsx", "the file is not a readable XLSX workbook") from None
    inflated = sum(e.file_size for e in entries)
    if len(entries) > MAX_XLSX_ENTRIES or inflated > MAX_XLSX_INFLATED:
        raise UnreadableFile(
            "xlsx-too-large",
            f"the workbook would unpack to {inflated} bytes in {len(entries)} parts (at most"
            f" {MAX_XLSX_INFLATED} bytes, {MAX_XLSX_ENTRIES} parts)",
            limit=MAX_XLSX_INFLATED,
        )
    try:
        # Twice: the cached values, and the formulas' text where a formula has no cached
        # value (a file written by a program, never opened in a spreadsheet).
        values = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        formulas = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception:  # openpyxl raises many kinds on a damaged workbook
        raise UnreadableFile("bad-xlsx", "the file is not a readable XLSX workbook") from None
    try:
        rows: list[list[str]] = []
        # Columns past MAX_COLUMNS are not read; trailing empty cells are dropped.
        for cached, written in zip(
            values.worksheets[0].iter_rows(values_only=True, max_col=MAX_COLUMNS),
            formulas.worksheets[0].iter_rows(values_only=True, max_col=MAX_COLUMNS),
            strict=False,
        ):
            cells = [_cell_text(v if v is not None else w) for v, w in zip(cached, written, strict=False)]
            while cells and not cells[-1]:
                cells.pop()
            rows.append(cells)
            _bound(rows)
        return rows
    except UnreadableFile:
        raise
    except Exception:
        raise UnreadableFile("bad-xlsx", "the file is not a readable XLSX workbook") from None
    finally:
        values.close()
        formulas.close()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float):
        # A spreadsheet number: its shortest repr, never arithmetic on it (core/amounts.py
        # reads the text exactly with Decimal).
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)
