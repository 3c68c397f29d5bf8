# Full-width characters below are what a Chinese keyboard types; RUF002 takes them for look-alikes.
# ruff: noqa: RUF002
"""Amounts written by people, in major units, to integers in minor units: exactly.

One grammar for every place that reads an amount a person wrote: the console's forms
(`minor_units`) and the cells of a bank statement (`signed`, used by ledger_api.imports).
What a bookkeeper types or a bank prints: `1234.5`, `1,234.50`, `¥1,234.50`,
`CN¥1,234.50`, `CNY 1234.50`, `RMB 1,234.50`, `1234.50 元`, full-width
`￥１，２３４．５０` (a Chinese input method's digits and signs are folded by NFKC first).
A statement's debit is `-1,234.50` or `(1,234.50)`. The digits become a Decimal and then an
integer of the currency's minor unit (its ISO 4217 exponent: CNY 2, JPY 0, BHD 3); never a
float. Refused, with a reason (`AmountError.reason`, the tail of a message key) and a stable
code for API answers (`AmountError.code`): more decimals than the currency has (`1234.567`
in CNY: nothing is rounded), misplaced thousands separators (`1,23.4`, `12,34`), exponents,
more than the contract's 10^18, and anything else. A form also refuses zero and a sign.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

from ledger_api.core.formats import minor_unit_exponent

MAX_AMOUNT = 10**18  # the contract's bound on every amount
MAX_TYPED = 64  # characters: nothing longer is an amount
# A currency sign or code before or after the number: "¥", "CN¥", "US$", "CNY", "元".
_CURRENCY = r"(?:[A-Z]{0,3}[¥$€£]|[A-Z]{3}|元)"
_LEADING = re.compile(rf"^{_CURRENCY}\s?")
_TRAILING = re.compile(rf"\s?{_CURRENCY}$")
# Digits, grouped by three with commas or not at all, and an optional fraction.
_NUMBER = re.compile(r"(?P<number>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<fraction>\d*))?|\.(?P<bare>\d+)")
_CODES = {
    "empty": "amount-empty",
    "format": "amount-not-a-number",
    "decimals": "amount-too-precise",
    "too_large": "amount-too-large",
    "zero": "amount-zero",
}


class AmountError(ValueError):
    """Why an amount is refused: `reason` is one of REASONS (a message key's tail), `code`
    its stable name in API answers, `decimals` the currency's exponent (or, for a minor-unit
    cell, 0), `written` how many decimals the text had."""

    REASONS = tuple(_CODES)

    def __init__(self, reason: str, decimals: int = 0, text: str = "", written: int = 0) -> None:
        self.reason = reason
        self.code = _CODES[reason]
        self.decimals = decimals
        self.written = written
        shown = repr(text.strip()[:40])
        self.message = {
            "empty": "the amount is empty",
            "format": f"{shown} is not an amount",
            "decimals": f"{shown} has {written} decimals (at most {decimals})",
            "too_large": f"{shown} is too large",
            "zero": "the amount is zero",
        }[reason]
        super().__init__(self.message)

    @property
    def params(self) -> dict[str, int]:
        if self.reason == "decimals":
            return {"decimals": self.written, "allowed": self.decimals}
        if self.reason == "too_large":
            return {"limit": MAX_AMOUNT}
        return {}


def signed(text: str, exponent: int, *, minor: bool = False) -> int:
    """The amount written in `text`, in minor units of a currency with `exponent` decimals;
    negative for a debit (`-12.00`, `(12.00)`, `¥-12.00`). With `minor`, the text is already
    in minor units and must be a whole number."""
    allowed = 0 if minor else exponent
    value = unicodedata.normalize("NFKC", text).replace("\u3000", " ").replace("。", ".").strip().upper()
    if not value:
        raise AmountError("empty", allowed, text)
    if len(value) > MAX_TYPED:
        raise AmountError("format", allowed, text)
    negative = False
    if value.startswith("(") and value.endswith(")"):
        negative, value = True, value[1:-1].strip()
    for _ in range(2):  # a sign and a currency, in either order: "-¥12", "¥-12"
        if not negative and value[:1] == "-":
            negative, value = True, value[1:].strip()
        elif value[:1] == "+":
            value = value[1:].strip()
        value = _TRAILING.sub("", _LEADING.sub("", value, count=1), count=1).strip()
    match = _NUMBER.fullmatch(value)
    if match is None:
        raise AmountError("format", allowed, text)
    number = match.group("number") or "0"
    fraction = match.group("fraction") or match.group("bare") or ""
    written = len(fraction.rstrip("0"))
    if written > allowed:
        raise AmountError("decimals", allowed, text, written)
    amount = Decimal(number.replace(",", "") + "." + (fraction or "0")).scaleb(allowed)
    if amount != amount.to_integral_value():  # cannot happen after the check above; never round
        raise AmountError("decimals", allowed, text, written)
    units = int(amount)
    if units > MAX_AMOUNT:
        raise AmountError("too_large", allowed, text)
    return -units if negative else units


def minor_units(typed: str, currency: str) -> int:
    """An amount typed into a form, in major units of `currency`: positive, never zero."""
    exponent = minor_unit_exponent(currency)
    stripped = unicodedata.normalize("NFKC", typed).strip()
    if stripped[:1] in ("-", "+", "("):  # a form asks for an amount, not a debit
        raise AmountError("format", exponent, typed)
    units = signed(typed, exponent)
    if units < 0:  # "¥-12": a sign after the currency
        raise AmountError("format", exponent, typed)
    if units == 0:
        raise AmountError("zero", exponent, typed)
    return units


def format_major(minor: int, exponent: int) -> str:
    """`123450` with exponent 2 -> `1234.50` (plain digits, for messages and reports)."""
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}.{part:0{exponent}d}" if exponent else f"{sign}{whole}"
