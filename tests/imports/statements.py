"""Statements as banks export them, for the import tests (and nothing else)."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import Workbook

HEADER = ["交易日期", "交易流水号", "对方户名", "收入金额", "支出金额", "余额", "摘要", "原捐赠编号"]
TITLE = [["中国工商银行 账户明细"], ["账号: 6222 0000 1111 2222", "", "期间: 2026-10-01 至 2026-10-31"], []]
MAPPING: dict[str, Any] = {
    "date": "交易日期",
    "bank_reference": "交易流水号",
    "payer_reference": "对方户名",
    "credit": "收入金额",
    "debit": "支出金额",
    "balance": "余额",
    "refund_of": "原捐赠编号",
}


def rows(count: int, prefix: str = "B", start: int = 0) -> list[list[str]]:
    """`count` credits of 10.00 to 19.99 yuan, dated through October 2026."""
    out = []
    balance = 100_000
    for i in range(start, start + count):
        amount = 1000 + i % 1000
        balance += amount
        out.append(
            [
                f"2026-10-{1 + i % 28:02d}",
                f"{prefix}{i:08d}",
                f"捐赠人 {i}",
                f"{amount // 100:,}.{amount % 100:02d}",
                "",
                f"{balance // 100:,}.{balance % 100:02d}",
                "捐款",
                "",
            ]
        )
    return out


def csv_text(
    body: list[list[str]], title: bool = True, delimiter: str = ",", header: list[str] = HEADER
) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows((TITLE if title else []) + [header] + body)
    return out.getvalue()


def xlsx(body: list[list[Any]], header: list[str] = HEADER) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for line in [*TITLE, header, *body]:
        sheet.append(line)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
