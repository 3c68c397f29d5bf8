# Chinese column headings below use full-width brackets, which RUF001 takes for look-alikes.
# ruff: noqa: RUF001
"""Which column is which, guessed from a statement's headings: what a bookkeeper would
otherwise type in by hand the first time.

Chinese banks' online statements (and the spreadsheets charities keep) name their columns
with a small vocabulary: 交易日期, 收入金额 / 贷方发生额, 支出金额 / 借方发生额, 对方户名,
交易流水号, 余额, and the English exports say Date, Credit, Debit, Payer, Reference,
Balance. A heading is compared after NFKC, case folding and dropping a unit in brackets
("收入金额(元)", "Amount (CNY)") and spaces and colons; only an exact match counts, so a
guess is never a near miss. What is not recognised is left for the bookkeeper to name, and
what she names always wins over a guess.
"""

from __future__ import annotations

import re
import unicodedata

SYNONYMS: dict[str, tuple[str, ...]] = {
    "date": (
        "交易日期",
        "记账日期",
        "入账日期",
        "交易时间",
        "日期",
        "date",
        "transaction date",
        "booking date",
        "value date",
        "posting date",
    ),
    "credit": (
        "收入金额",
        "贷方发生额",
        "贷方金额",
        "存入金额",
        "收入",
        "贷方",
        "credit",
        "credit amount",
        "paid in",
        "money in",
        "deposits",
    ),
    "debit": (
        "支出金额",
        "借方发生额",
        "借方金额",
        "支取金额",
        "支出",
        "借方",
        "debit",
        "debit amount",
        "paid out",
        "money out",
        "withdrawals",
    ),
    "amount": ("交易金额", "发生额", "金额", "捐赠金额", "捐款金额", "amount", "transaction amount"),
    "payer_reference": (
        "对方户名",
        "对方账户名称",
        "对方名称",
        "对方账户名",
        "付款人",
        "付款人名称",
        "捐赠人",
        "捐款人",
        "payer",
        "payer name",
        "counterparty",
        "donor",
        "name",
    ),
    "bank_reference": (
        "交易流水号",
        "流水号",
        "业务流水号",
        "交易参考号",
        "交易序号",
        "凭证号",
        "reference",
        "bank reference",
        "transaction id",
        "transaction reference",
    ),
    "balance": ("余额", "账户余额", "当前余额", "balance", "running balance"),
}
_UNIT = re.compile(r"[(（\[【][^)）\]】]*[)）\]】]")
_DROPPED = re.compile(r"[\s:：_\-]+")


def _plain(heading: str) -> str:
    text = unicodedata.normalize("NFKC", heading).casefold()
    return _DROPPED.sub("", _UNIT.sub("", text))


_KNOWN = {_plain(word): field for field, words in SYNONYMS.items() for word in words}


def guess(header: list[str]) -> dict[str, str]:
    """Field -> the heading (as the file writes it) for each field recognised. One column
    is never given two fields; the first column that names a field takes it. An `amount`
    guess is dropped when credit or debit columns were found (a statement with both has
    the signed amount as a convenience column, and the credit column is the donation)."""
    found: dict[str, str] = {}
    for heading in header:
        field = _KNOWN.get(_plain(heading))
        if field is not None and field not in found:
            found[field] = heading
    if "credit" in found or "debit" in found:
        found.pop("amount", None)
    return found
