"""Amounts as a statement writes them -> integers in minor units, exactly.

Major units (`1,234.50`, `¥1,234.50`, `￥1,234.50`, `CN¥ 1234.5`, `RMB 1,234.50`,
`1234.50 CNY`, full-width digits and commas, surrounding spaces) are read with `Decimal`
and scaled by the currency's ISO 4217 exponent; more decimals than the exponent allows
(`1234.567` for CNY) is refused, never rounded. Minor units (`123450`) are whole numbers.
A debit is written `-1,234.50` or `(1,234.50)`. Never a float.

`parse` raises `AmountError(code, message)`: `amount-empty`, `amount-not-a-number`,
`amount-too-precise` (with `decimals` and `allowed`), `amount-too-large`.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

MAX_AMOUNT = 10**18  # the contract's bound
_CURRENCY_WORDS = re.compile(r"^(CN¥|RMB|CNY|¥|元)|(CN¥|RMB|CNY|¥|元)$", re.IGNORECASE)
_NUMBER = re.compile(r"^\d+(\.\d*)?$|^\.\d+$")


class AmountError(ValueError):
    def __init__(self, code: str, message: str, **params: int | str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.params = params


def parse(text: str, exponent: int, minor_units: bool = False) -> int:
    """The signed amount in minor units (negative for a debit)."""
    # NFKC maps full-width digits, commas and the full-width yen sign to ASCII (and ¥).
    value = unicodedata.normalize("NFKC", text).strip().replace("\u00a0", " ")
    if not value:
        raise AmountError("amount-empty", "the amount is empty")
    negative = False
    if value.startswith("(") and value.endswith(")"):
        negative, value = True, value[1:-1].strip()
    if value.startswith("-"):
        negative, value = not negative, value[1:].strip()
    elif value.startswith("+"):
        value = value[1:].strip()
    for _ in range(2):  # a currency word before and/or after
        value = _CURRENCY_WORDS.sub("", value).strip()
    if value.startswith("-") and not negative:  # "¥-12.00"
        negative, value = True, value[1:].strip()
    if re.search(r",\d{0,2}(?:\.|$)|,\d{4,}", value):  # commas only between groups of three
        raise AmountError("amount-not-a-number", f"{text.strip()[:40]!r} is not an amount")
    value = value.replace(",", "")
    if not _NUMBER.match(value):
        raise AmountError("amount-not-a-number", f"{text.strip()[:40]!r} is not an amount")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise AmountError("amount-not-a-number", f"{text.strip()[:40]!r} is not an amount") from None
    allowed = 0 if minor_units else exponent
    decimals = len(value.split(".")[1].rstrip("0")) if "." in value else 0
    if decimals > allowed:
        what = "minor units are whole numbers" if minor_units else f"at most {allowed} decimals"
        raise AmountError(
            "amount-too-precise",
            f"{text.strip()[:40]!r} has {decimals} decimals ({what})",
            decimals=decimals,
            allowed=allowed,
        )
    minor = int(number if minor_units else number.scaleb(exponent))
    if minor > MAX_AMOUNT:
        raise AmountError("amount-too-large", f"{text.strip()[:40]!r} is too large", limit=MAX_AMOUNT)
    return -minor if negative else minor


def format_major(minor: int, exponent: int) -> str:
    """`123450` with exponent 2 -> `1234.50` (for messages and reports)."""
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}.{part:0{exponent}d}" if exponent else f"{sign}{whole}"
