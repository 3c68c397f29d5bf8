"""Amounts and text for people and for documents: integer minor units to exact decimal
major units by the currency's ISO 4217 exponent, and text stripped of what XML (and a
printed page) cannot carry. Used by the IATI export and the public pages."""

from __future__ import annotations

import re

from iso4217 import Currency

DEFAULT_EXPONENT = 2
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def minor_unit_exponent(currency: str) -> int:
    """The ISO 4217 exponent of a currency (CNY 2, JPY 0, BHD 3); 2 when the code is
    unknown or has no minor unit (e.g. XAU)."""
    try:
        exponent = Currency(currency.strip().upper()).exponent
    except ValueError:
        return DEFAULT_EXPONENT
    return DEFAULT_EXPONENT if exponent is None else exponent


def major_units(amount: int, currency: str) -> str:
    """An integer amount in minor units as an exact decimal string in major units:
    (12345, "CNY") -> "123.45", (1500, "JPY") -> "1500", (-1200, "USD") -> "-12.00"."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amounts are integers in minor units, not {type(amount).__name__}")
    exponent = minor_unit_exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d}" if exponent else f"{sign}{whole}"


def xml_text(value: str) -> str:
    """`value` without the characters XML 1.0 cannot carry (control characters, lone
    surrogates, U+FFFE, U+FFFF); everything else is kept (lxml escapes it)."""
    return _NOT_XML_CHAR.sub("", value)
