"""A month of a bank statement as a Chinese bank exports it: title lines above the
headings, the usual headings (交易日期, 交易流水号, 对方户名, 收入金额, 支出金额, 余额),
credits in yuan with thousands separators, a running balance; GB18030 on disk.

`ledger dev --demo` writes one beside its keystore for a bookkeeper to try the console's
import with; the benchmarks, the screenshots and the tests build theirs here too.
"""

from __future__ import annotations

import csv
import io

HEADER = ["交易日期", "交易流水号", "对方户名", "收入金额", "支出金额", "余额", "摘要", "原捐赠编号"]
TITLE = [["中国工商银行 账户明细"], ["账号: 6222 0000 1111 2222", "", "期间: 2026-10-01 至 2026-10-31"], []]
# Which column holds what (imports/schemas.py Mapping, without the campaign).
MAPPING = {
    "date": "交易日期",
    "bank_reference": "交易流水号",
    "payer_reference": "对方户名",
    "credit": "收入金额",
    "debit": "支出金额",
    "balance": "余额",
    "refund_of": "原捐赠编号",
}


def rows(count: int, prefix: str = "B", start: int = 0) -> list[list[str]]:
    """`count` credits of 10.00 to 19.99 yuan, dated through October 2026, with the
    bank's transaction references `prefix` + a number."""
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


def statement(count: int, prefix: str = "B") -> bytes:
    """A statement of `count` credits, as the bank's file (GB18030)."""
    return csv_text(rows(count, prefix)).encode("gb18030")
