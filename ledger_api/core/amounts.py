# Full-width characters below are what a Chinese keyboard types; RUF001/RUF002 take them for look-alikes.
# ruff: noqa: RUF001, RUF002
"""Amounts typed by people, in major units, to integers in minor units: exactly.

What a bookkeeper types or copies from a bank statement: `1234.5`, `1,234.50`,
`¥1,234.50`, `CN¥1,234.50`, `CNY 1234.50`, full-width `￥１，２３４．５０` (a Chinese input
method's digits and signs are folded by NFKC first). The digits become a Decimal and then
an integer of the currency's minor unit (its ISO 4217 exponent: CNY 2, JPY 0, BHD 3);
never a float. Refused, with the reason a form shows at its field: more decimals than the
currency has (`1234.567` in CNY: nothing is rounded), misplaced thousands separators
(`1,23.4`), signs, zero, more than the contract's 10^18, and anything else.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

from ledger_api.core.formats import minor_unit_exponent

MAX_AMOUNT = 10**18  # the contract's bound on every amount
MAX_TYPED = 64  # characters: nothing longer is an amount
# An optional currency sign or code before the number (and the code after it).
_SIGNS = r"(?:[A-Z]{0,3}[¥$€£]|[A-Z]{3}\s?)?"
_NUMBER = re.compile(
    rf"^{_SIGNS}(?P<number>\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.(?P<fraction>\d+))?(?:\s?[A-Z]{{3}})?$"
)


class AmountError(ValueError):
    """Why a typed amount is refused: `reason` is one of REASONS (a message key's tail)."""

    REASONS = ("empty", "format", "decimals", "zero", "too_large")

    def __init__(self, reason: str, decimals: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.decimals = decimals


def minor_units(typed: str, currency: str) -> int:
    """The amount `typed` in major units of `currency`, as an integer of its minor unit."""
    text = unicodedata.normalize("NFKC", typed).strip().upper()
    text = text.replace("\u3000", " ").replace("，", ",").replace("。", ".")
    if not text:
        raise AmountError("empty")
    exponent = minor_unit_exponent(currency)
    match = _NUMBER.fullmatch(text) if len(text) <= MAX_TYPED else None
    if match is None:
        raise AmountError("format", exponent)
    fraction = match.group("fraction") or ""
    if len(fraction.rstrip("0")) > exponent:
        raise AmountError("decimals", exponent)
    value = Decimal(match.group("number").replace(",", "") + "." + (fraction or "0"))
    amount = value.scaleb(exponent)
    if amount != amount.to_integral_value():  # cannot happen after the check above; never round
        raise AmountError("decimals", exponent)
    units = int(amount)
    if units == 0:
        raise AmountError("zero", exponent)
    if units > MAX_AMOUNT:
        raise AmountError("too_large", exponent)
    return units
