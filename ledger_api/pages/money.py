"""Amounts, counts, shares and times for people, in the reader's locale (Babel).

Amounts are formatted by `ledger_api.core.formats.money` (exact, with the currency's
ISO 4217 decimals), which the `ledger` command line uses too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from babel.dates import format_datetime
from babel.numbers import format_decimal, format_percent

from ledger_api.core.formats import major, money

__all__ = ["count", "major", "moment", "money", "share"]


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
