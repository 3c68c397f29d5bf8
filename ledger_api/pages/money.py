# Chinese examples are written with full-width punctuation, which RUF002 takes for look-alikes.
# ruff: noqa: RUF002
"""Amounts, counts, shares and times for people, in the reader's locale (Babel).

Amounts are formatted by `ledger_api.core.formats.money`, which the `ledger` command line
uses too. They are integers in the currency's minor unit and become major units exactly
(a Decimal built from the digits, never a float), with as many decimals as the currency's
ISO 4217 exponent: CNY 123450 is "¥1,234.50" in zh_CN and "CN¥1,234.50" in en; JPY 1500 is
"¥1,500" in ja and "JP¥1,500" in en. Babel's own rounding follows CLDR's digits, which
differ from ISO 4217 for a few currencies (IQD has 3 decimals in ISO 4217, 0 in CLDR), so
the pattern's decimals are set here instead and nothing is ever rounded.

Times are shown on the clock of the reader's zone (see `i18n.Reader.zone`), and every one
says which clock that is, in CLDR's words (Babel): "Mar 4, 2026, 5:06\u202fAM UTC",
"2026年3月4日 13:06 中国标准时间（GMT+08:00）".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.core import get_global
from babel.dates import (
    format_date,
    format_time,
    get_datetime_format,
    get_timezone_gmt,
    get_timezone_location,
    get_timezone_name,
)
from babel.numbers import format_decimal, format_percent

from ledger_api.core.formats import major, money

__all__ = ["count", "instant", "is_utc", "local_time", "major", "money", "share", "zone_at", "zone_title"]


def count(value: int, locale: str) -> str:
    return format_decimal(value, locale=locale)


def share(numerator: int, denominator: int, locale: str) -> str:
    """numerator / denominator as a percentage with at most one decimal ("45.7%")."""
    if denominator <= 0:
        return "—"
    return format_percent(Decimal(numerator) / Decimal(denominator), format="#,##0.#%", locale=locale)


def instant(iso: str) -> datetime:
    """An ISO 8601 time as the read services give it (in UTC; a naive one is taken as UTC)."""
    when = datetime.fromisoformat(iso)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def local_time(when: datetime, zone: ZoneInfo, locale: str) -> str:
    """`when` on the clock of `zone`, to the minute: the locale's medium date and short time,
    joined by its own date-time pattern (as Babel's format_datetime joins them): "Mar 4,
    2026, 1:06\u202fPM" in en, "2026年3月4日 13:06" in zh_CN. Seconds are left out: the
    page's <time datetime> keeps the exact instant."""
    local = when.astimezone(zone)
    return (
        str(get_datetime_format("medium", locale=locale))  # "{1}, {0}": date, then time
        .replace("'", "")
        .replace("{0}", format_time(local, "short", tzinfo=zone, locale=locale))
        .replace("{1}", format_date(local.date(), "medium", locale=locale))
    )


def is_utc(zone: ZoneInfo, locale: str) -> bool:
    """UTC itself (under any of its names: UTC, Etc/UTC, Zulu...), not merely a zone at +00:00
    (Europe/London in winter is GMT, and not in summer)."""
    noon = datetime(2000, 1, 1, 12, tzinfo=UTC).astimezone(zone)
    return noon.utcoffset() == timedelta(0) and get_timezone_name(noon, "short", locale=locale) == "UTC"


def zone_at(when: datetime, zone: ZoneInfo, locale: str) -> tuple[str, str | None]:
    """What the clock of `zone` is called at `when`, and its offset from UTC (CLDR's words,
    by Babel): ("China Standard Time", "GMT+08:00"), ("中国标准时间", "GMT+08:00"),
    ("Eastern Daylight Time", "GMT-04:00"); ("UTC", None) for UTC, and ("GMT+05:30", None)
    for a zone CLDR has no name for (the offset is then its name)."""
    local = when.astimezone(zone)
    if is_utc(zone, locale):
        return "UTC", None
    name = get_timezone_name(local, "long", locale=locale)
    offset = get_timezone_gmt(local, "long", locale=locale)
    return name, None if name == offset else offset


def zone_title(zone: ZoneInfo, locale: str) -> tuple[str, str | None]:
    """What a page says its times are in: UTC by its name ("Coordinated Universal Time",
    "UTC"); a zone that keeps one clock all year as its times say it ("China Standard Time",
    "GMT+08:00"); one with summer time by its place ("United States (New York) Time"),
    or else its generic name ("Central European Time"), which hold in both seasons."""
    if is_utc(zone, locale):
        noon = datetime(2000, 1, 1, 12, tzinfo=UTC).astimezone(zone)
        return get_timezone_name(noon, "long", locale=locale), "UTC"
    year = datetime.now(UTC).year
    winter = zone_at(datetime(year, 1, 15, tzinfo=UTC), zone, locale)
    summer = zone_at(datetime(year, 7, 15, tzinfo=UTC), zone, locale)
    if winter == summer:
        return winter
    if get_global("zone_territories").get(zone.key, "ZZ") != "ZZ":  # ZZ: in no country
        return get_timezone_location(zone, locale=locale), None
    return get_timezone_name(zone, "long", locale=locale), None  # the generic name: "Central European Time"
