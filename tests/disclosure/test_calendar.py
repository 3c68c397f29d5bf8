"""The calendar's arithmetic, by hand-counted examples: calendar months, the rule set's
zone, each period needing its own disclosure, and what "as of" leaves out."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from ledger_api.disclosure import calendar, rules

RULES = rules.load("cn-mca-81")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def ts(day: str, hour: int = 10) -> int:
    return int(datetime.fromisoformat(day).replace(hour=hour, tzinfo=SHANGHAI).timestamp())


def report(n: int, day: str, kind: str = "report:periodic", hour: int = 10) -> calendar.Record:
    return calendar.Record(kind, f"RP-{n}", ts(day, hour), "0x")


def campaign(
    records: list[calendar.Record], ends: str | None = "2027-08-05", **kw: object
) -> calendar.Campaign:
    return calendar.Campaign(
        id="CP-1",
        charity_id="CH-1",
        name="c",
        currency="CNY",
        created_at=ts("2027-01-05"),
        ends_at=ts(ends, 23) if ends else None,
        closed_at=None,
        remaining=kw.get("remaining", 100),  # type: ignore[arg-type]
        records=tuple(records),
    )


def periodic(c: calendar.Campaign, as_of: str) -> list[tuple[str, str, str | None]]:
    return [
        (str(d.due_on), d.status, d.record.id if d.record else None)
        for d in calendar.obligations(RULES, c, date.fromisoformat(as_of))
        if d.rule.id == "periodic-report"
    ]


def test_months_are_calendar_months_clamped_to_the_month_end() -> None:
    assert calendar.add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert calendar.add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert calendar.add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert calendar.add_months(date(2027, 10, 5), 3) == date(2028, 1, 5)


def test_a_report_late_at_night_in_beijing_is_on_time_in_beijing() -> None:
    # 23:30 on 5 April in Shanghai is 15:30 UTC the same day: on time.
    on_time = campaign([report(1, "2027-04-05", hour=23)])
    assert periodic(on_time, "2027-04-06")[0][:2] == ("2027-04-05", "met")
    # 00:30 on 6 April in Shanghai is still 5 April in UTC: late here, whatever UTC says.
    late = campaign([report(1, "2027-04-06", hour=0)])
    assert periodic(late, "2027-04-06")[0][:2] == ("2027-04-05", "met_late")


def test_each_period_needs_a_disclosure_of_its_own() -> None:
    two_in_one = campaign([report(1, "2027-02-01"), report(2, "2027-03-01")])
    assert periodic(two_in_one, "2027-07-06") == [
        ("2027-04-05", "met", "RP-1"),
        ("2027-07-05", "overdue", None),
    ]
    one_late = campaign([report(1, "2027-04-10")])
    assert periodic(one_late, "2027-07-06") == [
        ("2027-04-05", "met_late", "RP-1"),
        ("2027-07-05", "overdue", None),
    ]
    both = campaign([report(1, "2027-04-10"), report(2, "2027-06-01", "report:final")])
    assert periodic(both, "2027-07-06") == [
        ("2027-04-05", "met_late", "RP-1"),
        ("2027-07-05", "met", "RP-2"),
    ]


def test_short_campaigns_have_no_periodic_obligation_and_open_ended_ones_do() -> None:
    assert periodic(campaign([], ends="2027-07-05"), "2027-12-31") == []  # exactly six months
    assert periodic(campaign([], ends="2027-07-06"), "2027-12-31") == [
        ("2027-04-05", "overdue", None),
        ("2027-07-05", "overdue", None),
    ]
    # With no end date: every period due by the date asked, and the next one.
    assert periodic(campaign([], ends=None), "2027-04-04") == [("2027-04-05", "due", None)]
    assert periodic(campaign([], ends=None), "2027-04-05") == [
        ("2027-04-05", "due", None),
        ("2027-07-05", "due", None),
    ]


def test_remaining_funds_are_due_only_when_funds_remain() -> None:
    def rules_of(c: calendar.Campaign) -> set[str]:
        return {d.rule.id for d in calendar.obligations(RULES, c, date(2028, 1, 1))}

    assert "remaining-funds" in rules_of(campaign([], remaining=1))
    assert "remaining-funds" not in rules_of(campaign([], remaining=0))


@given(
    st.lists(st.integers(min_value=1, max_value=400), max_size=6, unique=True),
    st.integers(min_value=0, max_value=500),
)
def test_statuses_agree_with_their_dates(days: list[int], as_of_day: int) -> None:
    """Whatever the reports: met means by the due date, met_late after it, overdue means
    nothing yet and past due, due means not yet past due; no report meets two periods."""
    start = date(2027, 1, 5)
    records = [
        calendar.Record("report:periodic", f"RP-{d}", ts(str(date.fromordinal(start.toordinal() + d))), "0x")
        for d in days
    ]
    as_of = date.fromordinal(start.toordinal() + as_of_day)
    found = [d for d in calendar.obligations(RULES, campaign(records, ends="2028-01-05"), as_of)]
    used = [d.record.id for d in found if d.record is not None]
    assert len(used) == len(set(used))
    for due in found:
        if due.due_on is None:
            continue
        if due.status == "met":
            assert due.met_on is not None and due.met_on <= due.due_on
        elif due.status == "met_late":
            assert (
                due.met_on is not None
                and due.met_on > due.due_on
                and due.days_late == (due.met_on - due.due_on).days
            )
        elif due.status == "overdue":
            assert due.record is None and as_of > due.due_on
        else:
            assert due.record is None and as_of <= due.due_on
