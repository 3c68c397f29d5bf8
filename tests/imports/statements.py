"""Statements as banks export them, for the import tests: ledger_api/imports/sample.py's,
and as XLSX."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook

from ledger_api.imports.sample import HEADER, MAPPING, TITLE, csv_text, rows

__all__ = ["HEADER", "MAPPING", "TITLE", "csv_text", "rows", "xlsx"]


def xlsx(body: list[list[Any]], header: list[str] = HEADER) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for line in [*TITLE, header, *body]:
        sheet.append(line)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
