"""The compliance calendar: each obligation of a campaign under a rule set, its due date,
its status as of a date, and the record that met it. Pure: it takes the facts the mirror
holds (times are block times, Unix seconds) and computes; `reads` gathers the facts.

Dates are counted in the rule set's time zone: a record made at 23:30 in Beijing on the
due date is on time there, whatever UTC says. A month is a calendar month (31 January plus
one month is 28 or 29 February). As of a date means at the end of that day: records after
it are not seen, so the same question always gets the same answer.

- `every` (periodic): period k ends `k * months` after the campaign's start, and is due
  then. It is met by the first report (periodic or final) published after the previous
  period's due date (for the first, after the start) that has not met an earlier period:
  on time if published by its due date, late otherwise. So each period needs a disclosure
  of its own (two reports in one quarter do not cover the next, one late report does not
  cover two), which is how "at least every three months" is checked. Listed: every
  period due by the date asked, and the next one. Periods that would fall due after the
  campaign's end are left to the after-end obligations. It applies to a campaign longer
  than the rule's threshold, or with no end date yet.
- `after_end`: due `months` after the end: the end date if one is set, else the day it
  was closed; none while a campaign has neither. With `only_if_funds_remain`, only when the
  campaign held funds at its end (or now, before it).
- Statuses: met (on or before the due date), met_late (after it), overdue (not met and the
  due date has passed), due (not met, not yet past due).
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from ledger_api.disclosure.rules import Obligation, RuleSet

Status = Literal["met", "met_late", "due", "overdue"]
STATUSES: tuple[Status, ...] = ("overdue", "due", "met_late", "met")


@dataclass(frozen=True)
class Record:
    """A record that may meet an obligation: a report, a disposal or a correction."""

    kind: str  # "report:periodic" | "report:final" | "disposal" | "correction"
    id: str  # readable ID
    at: int  # block time
    tx_hash: str


@dataclass(frozen=True)
class Campaign:
    """What the calendar needs to know of a campaign."""

    id: str
    charity_id: str
    name: str
    currency: str
    created_at: int
    ends_at: int | None
    closed_at: int | None
    remaining: int  # undisbursed, unrefunded funds at the end (or as of the date, before it)
    records: Sequence[Record] = field(default_factory=tuple)


@dataclass(frozen=True)
class Due:
    """One obligation of one campaign."""

    rule: Obligation
    due_on: date | None
    status: Status
    record: Record | None
    met_on: date | None
    days_late: int | None  # met_late: days after the due date; overdue: days past it so far


def add_months(day: date, months: int) -> date:
    """The same day `months` calendar months later, or that month's last day."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, _calendar.monthrange(year, month)[1]))


# The contract takes any non-zero uint64 as an end date: a date past 2199 (or a timestamp
# Python cannot convert) reads as the last day of 2199, so no record can break the calendar.
LAST_SECOND = 7_258_118_399  # 2199-12-31T23:59:59Z


def local_date(timestamp: int, zone: ZoneInfo) -> date:
    clamped = min(max(timestamp, 0), LAST_SECOND)
    return datetime.fromtimestamp(clamped, UTC).astimezone(zone).date()


def end_of(day: date, zone: ZoneInfo) -> int:
    """The last second of `day` in `zone`, in Unix time: what "as of" a date sees."""
    following = datetime.combine(day + timedelta(days=1), time(0), zone)
    return int(following.timestamp()) - 1


def end_date(campaign: Campaign, zone: ZoneInfo) -> date | None:
    if campaign.ends_at is not None:
        return local_date(campaign.ends_at, zone)
    if campaign.closed_at is not None:
        return local_date(campaign.closed_at, zone)
    return None


def _status(
    due_on: date, record: Record | None, met_on: date | None, as_of: date
) -> tuple[Status, int | None]:
    if record is not None and met_on is not None:
        return ("met", None) if met_on <= due_on else ("met_late", (met_on - due_on).days)
    return ("overdue", (as_of - due_on).days) if as_of > due_on else ("due", None)


def _matching(records: Iterable[Record], kinds: Sequence[str]) -> list[Record]:
    return sorted((r for r in records if r.kind in kinds), key=lambda r: (r.at, r.id))


def _every(rule: Obligation, campaign: Campaign, zone: ZoneInfo, as_of: date) -> list[Due]:
    assert rule.months is not None
    start = local_date(campaign.created_at, zone)
    end = end_date(campaign, zone)
    if end is not None and end <= add_months(start, rule.applies_if_longer_than_months):
        return []
    found: list[Due] = []
    disclosures = _matching(campaign.records, rule.satisfied_by)
    used: set[str] = set()
    previous_due: date | None = None  # the first period runs from the start itself
    for k in range(1, 12 * 200 // rule.months + 1):
        due_on = add_months(start, rule.months * k)
        if end is not None and due_on > end:
            break
        record = next(
            (
                r
                for r in disclosures
                if r.id not in used and (previous_due is None or local_date(r.at, zone) > previous_due)
            ),
            None,
        )
        if record is not None:
            used.add(record.id)
        met_on = local_date(record.at, zone) if record is not None else None
        status, days = _status(due_on, record, met_on, as_of)
        found.append(Due(rule, due_on, status, record, met_on, days))
        if due_on > as_of:  # the next one to come; later periods are not listed yet
            break
        previous_due = due_on
    return found


def _after_end(rule: Obligation, campaign: Campaign, zone: ZoneInfo, as_of: date) -> list[Due]:
    assert rule.months is not None
    end = end_date(campaign, zone)
    if end is None or (rule.only_if_funds_remain and campaign.remaining <= 0):
        return []
    due_on = add_months(end, rule.months)
    record = next(iter(_matching(campaign.records, rule.satisfied_by)), None)
    met_on = local_date(record.at, zone) if record is not None else None
    status, days = _status(due_on, record, met_on, as_of)
    return [Due(rule, due_on, status, record, met_on, days)]


def _enforced(rule: Obligation, campaign: Campaign, zone: ZoneInfo, as_of: date) -> list[Due]:
    return [
        Due(rule, None, "met", record, local_date(record.at, zone), None)
        for record in _matching(campaign.records, rule.satisfied_by)
    ]


_KINDS = {"every": _every, "after_end": _after_end, "enforced": _enforced}


def obligations(ruleset: RuleSet, campaign: Campaign, as_of: date) -> list[Due]:
    """Every obligation of `campaign` under `ruleset`, as of the end of `as_of` (the
    caller passes only records made by then)."""
    zone = ruleset.zone
    return [due for rule in ruleset.obligations for due in _KINDS[rule.type](rule, campaign, zone, as_of)]
