"""Amounts, counts, shares and times for people, in the reader's locale (Babel).

Amounts are integers in the currency's minor unit. They become major units exactly
(a Decimal built from the digits, never a float), with as many decimals as the currency's
ISO 4217 exponent: CNY 123450 is "¥1,234.50" in zh_CN and "CN¥1,234.50" in en; JPY 1500 is
"¥1,500" in ja and "JP¥1,500" in en. Babel's own rounding follows CLDR's digits, which
differ from ISO 4217 for a few currencies (IQD has 3 decimals in ISO 4217, 0 in CLDR), so
the pattern's decimals are set here instead and nothing is ever rounded.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from decimal import Decimal, localcontext

from babel import Locale
from babel.dates import format_datetime
from babel.numbers import format_currency, format_decimal, format_percent

from ledger_api.core.formats import major_units, minor_unit_exponent

_CODE = re.compile(r"^[A-Z]{3}$")


def major(amount: int, currency: str) -> Decimal:
    """The exact amount in major units: (123450, "CNY") -> Decimal("1234.50")."""
    return Decimal(major_units(amount, currency))


def money(amount: int, currency: str, locale: str) -> str:
    """`amount` (minor units) in `currency`, formatted for `locale` (a Babel locale name)."""
    exponent = minor_unit_exponent(currency)
    value = major(amount, currency)
    known = Locale.parse(locale)
    code = bool(_CODE.match(currency))
    # The locale's pattern, with exactly the currency's decimals.
    pattern = copy.copy(known.currency_formats["standard"] if code else known.decimal_formats[None])
    pattern.frac_prec = (exponent, exponent)
    with localcontext() as context:
        context.prec = 80  # goals go up to 10**24 minor units: never round
        if code:
            return format_currency(value, currency, format=pattern, locale=known, currency_digits=False)
        # Not a currency code (text from the chain can be anything): the number, then the text.
        return f"{pattern.apply(value, known)} {currency}"


def count(value: int, locale: str) -> str:
    return format_decimal(value, locale=locale)


def share(numerator: int, denominator: int, locale: str) -> str:
    """numerator / denominator as a percentage with at most one decimal ("45.7%")."""
    if denominator <= 0:
        return "—"
    return format_percent(Decimal(numerator) / Decimal(denominator), format="#,##0.#%", locale=locale)


def moment(iso: str | None, locale: str) -> str:
    """An ISO 8601 time (as the read services give it) in the reader's locale, in UTC."""
    if not iso:
        return "—"
    when = datetime.fromisoformat(iso)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return f"{format_datetime(when, 'medium', tzinfo=UTC, locale=locale)} UTC"
