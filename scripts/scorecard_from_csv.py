"""Recompute every transparency scorecard from a CSV export alone, with no code of the service.

    ledger export --format csv --key AUDITOR_KEY -o ledger.csv
    python scripts/scorecard_from_csv.py ledger.csv --rules ledger_api/disclosure/rulesets/cn-mca-81.json \
        --as-of 2027-03-01

prints {"campaigns": {id: scorecard}, "charities": {id: scorecard}} as JSON: the same figures
as GET /v1/campaigns/{id}/scorecard and /v1/charities/{id}/scorecard (without their
definitions and links), from the export's rows (one per event, with its block time) and the
published disclosure rule set. Standard library only: read it, and disagree with us in code.
"""

from __future__ import annotations

import argparse
import calendar
import csv
import json
import sys
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

DAY = 86_400
LAST_SECOND = 7_258_118_399  # the contract's MAX_TIMESTAMP, 2199-12-31T23:59:59Z


# ------------------------------------------------------------------ exact arithmetic


def tenths(numerator: int, denominator: int) -> str:
    """numerator / denominator to one decimal, half to even."""
    q, r = divmod(numerator * 10, denominator)
    if 2 * r > denominator or (2 * r == denominator and q % 2 == 1):
        q += 1
    return f"{q // 10}.{q % 10}"


def percent(part: int, whole: int) -> str | None:
    return tenths(part * 100, whole) if whole else None


def nearest_rank(values: list[int], share: int) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(-(-share * len(ordered) // 100), 1) - 1]


def days(seconds: int | None) -> str | None:
    return None if seconds is None else tenths(seconds, DAY)


# ------------------------------------------------------------------ dates


def add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def local(ts: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(min(max(ts, 0), LAST_SECOND), UTC).astimezone(zone).date()


def day_end(day: date, zone: ZoneInfo) -> int:
    return int(datetime.combine(day + timedelta(days=1), time(0), zone).timestamp()) - 1


# ------------------------------------------------------------------ the export


def read(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            data = json.loads(row["data"])
            at = int(datetime.fromisoformat(row["recorded_at"]).timestamp())
            rows.append({"kind": row["kind"], "at": at, "data": data})
    return rows


class Ledger:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.campaigns: dict[str, dict[str, Any]] = {}
        self.owner: dict[str, str] = {}  # record id -> campaign
        for r in rows:
            d = r["data"]
            if r["kind"] == "campaign_created":
                self.campaigns[d["campaign_id"]] = {
                    "charity": d["charity_id"],
                    "currency": d["currency"],
                    "at": r["at"],
                }
        for r in rows:
            d, kind = r["data"], r["kind"]
            key = {
                "donation_recorded": "donation_id",
                "donation_refunded": "refund_id",
                "disbursement_recorded": "disbursement_id",
                "report_published": "report_id",
                "remaining_funds_disposed": "disposal_id",
            }.get(kind)
            if key:
                self.owner[d[key]] = d["campaign_id"]

    def of(self, kind: str, campaigns: set[str], until: int | None = None) -> list[dict[str, Any]]:
        """Rows of `kind` about these campaigns (by the record's own campaign)."""
        found = []
        for r in self.rows:
            if r["kind"] != kind or (until is not None and r["at"] > until):
                continue
            d = r["data"]
            campaign = d.get("campaign_id") or self.owner.get(d.get("disbursement_id", ""))
            if campaign in campaigns:
                found.append(r)
        return found


# ------------------------------------------------------------------ the scorecard


def scorecard(
    ledger: Ledger, campaigns: set[str], charity: str | None, rules: dict[str, Any], as_of: date
) -> dict[str, Any]:
    currency = {c: ledger.campaigns[c]["currency"] for c in campaigns}
    money: dict[str, dict[str, int]] = {
        cur: {"received": 0, "refunded": 0, "allocated": 0} for cur in set(currency.values())
    }
    for kind, field in (
        ("donation_recorded", "received"),
        ("donation_refunded", "refunded"),
        ("disbursement_recorded", "allocated"),
    ):
        for r in ledger.of(kind, campaigns):
            money[currency[r["data"]["campaign_id"]]][field] += r["data"]["amount"]
    paid = ledger.of("disbursement_recorded", campaigns)
    anchors: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in ledger.of("evidence_anchored", campaigns):
        anchors[r["data"]["disbursement_id"]].append((r["at"], r["data"]["document_hash"]))
    withdrawn = {
        (r["data"]["disbursement_id"], r["data"]["document_hash"])
        for r in ledger.of("evidence_withdrawn", campaigns)
    }
    backed: dict[str, dict[str, int]] = defaultdict(lambda: {"disbursed": 0, "backed": 0})
    delays = []
    for r in paid:
        d = r["data"]
        cur, documents = currency[d["campaign_id"]], anchors.get(d["disbursement_id"], [])
        backed[cur]["disbursed"] += d["amount"]
        if any((d["disbursement_id"], h) not in withdrawn for _, h in documents):
            backed[cur]["backed"] += d["amount"]
        if documents:
            delays.append(max(min(t for t, _ in documents) - r["at"], 0))
    with_evidence = sum(1 for r in paid if anchors.get(r["data"]["disbursement_id"]))
    card = {
        "as_of": as_of.isoformat(),
        "money": [
            {"currency": cur, **m, "unspent": m["received"] - m["refunded"] - m["allocated"]}
            for cur, m in sorted(money.items())
        ],
        "evidence": {
            "by_currency": [
                {"currency": cur, **b, "percent": percent(b["backed"], b["disbursed"])}
                for cur, b in sorted(backed.items())
            ],
            "disbursements": len(paid),
            "with_evidence": with_evidence,
            "without_evidence": len(paid) - with_evidence,
            "days_to_evidence": {
                "count": len(delays),
                "median": days(nearest_rank(delays, 50)),
                "p90": days(nearest_rank(delays, 90)),
            },
        },
        "corrections": corrections(ledger, campaigns, charity),
        "approvals": approvals(ledger, campaigns, len(paid)),
        "recipients": recipients(ledger, campaigns, paid, currency),
        "disclosure": disclosure(ledger, campaigns, rules, as_of),
    }
    return card


def corrections(ledger: Ledger, campaigns: set[str], charity: str | None) -> dict[str, Any]:
    found = []
    for r in ledger.rows:
        d = r["data"]
        if r["kind"] != "correction_recorded":
            continue
        if (charity is not None and d["charity_id"] == charity) or (
            charity is None
            and (d["original_id"] in campaigns or ledger.owner.get(d["original_id"]) in campaigns)
        ):
            found.append(d)
    items = [
        {
            "id": d["correction_id"],
            "original_kind": d["original_kind"],
            "original_id": d["original_id"],
            "reason": d["reason"],
        }
        for d in found
    ]
    return {"count": len(items), "items": items}


def approvals(ledger: Ledger, campaigns: set[str], disbursements: int) -> dict[str, Any] | None:
    proposed = {r["data"]["disbursement_id"] for r in ledger.of("disbursement_proposed", campaigns)}
    ruled = ledger.of("approval_rule_set", campaigns)
    if not proposed and not ruled:
        return None
    executed = {
        r["data"]["disbursement_id"] for r in ledger.rows if r["kind"] == "proposal_executed"
    } & proposed
    rejected = {
        r["data"]["disbursement_id"] for r in ledger.rows if r["kind"] == "disbursement_rejected"
    } & proposed
    return {
        "proposals": len(proposed),
        "executed": len(executed),
        "rejected": len(rejected),
        "disbursements": disbursements,
    }


def recipients(
    ledger: Ledger, campaigns: set[str], paid: list[dict[str, Any]], currency: dict[str, str]
) -> dict[str, Any] | None:
    amounts = {r["data"]["disbursement_id"]: r["data"] for r in paid}
    named = [
        r["data"]["disbursement_id"]
        for r in ledger.rows
        if r["kind"] == "recipient_named" and r["data"]["disbursement_id"] in amounts
    ]
    if not named:
        return None
    confirmed: dict[str, int] = defaultdict(int)
    for r in ledger.rows:
        if r["kind"] == "receipt_confirmed" and r["data"]["disbursement_id"] in named:
            confirmed[r["data"]["disbursement_id"]] += r["data"]["amount"]
    by: dict[str, dict[str, int]] = defaultdict(lambda: {"paid_to_named": 0, "confirmed": 0})
    for key in named:
        d = amounts[key]
        by[currency[d["campaign_id"]]]["paid_to_named"] += d["amount"]
        by[currency[d["campaign_id"]]]["confirmed"] += min(confirmed[key], d["amount"])
    return {
        "disbursements": len(named),
        "confirmed_in_full": sum(1 for key in named if confirmed[key] >= amounts[key]["amount"]),
        "by_currency": [{"currency": cur, **b} for cur, b in sorted(by.items())],
    }


def disclosure(ledger: Ledger, campaigns: set[str], rules: dict[str, Any], as_of: date) -> dict[str, Any]:
    """The rule set's obligations due by `as_of`, by status: the calendar, recomputed."""
    zone = ZoneInfo(rules["timezone"])
    cutoff = day_end(as_of, zone)
    counts = {"met": 0, "met_late": 0, "overdue": 0, "due": 0}
    for campaign in sorted(campaigns):
        facts = ledger.campaigns[campaign]
        if facts["at"] > cutoff:
            continue
        one = {campaign}
        ends = [r["data"]["ends_at"] for r in ledger.of("campaign_end_set", one, cutoff)]
        closed = [r["at"] for r in ledger.of("campaign_closed", one, cutoff)]
        end_time = ends[-1] if ends else (closed[0] if closed else None)
        end = local(end_time, zone) if end_time is not None else None
        money_cutoff = min(cutoff, day_end(end, zone)) if end is not None else cutoff
        remaining = sum(r["data"]["amount"] for r in ledger.of("donation_recorded", one, money_cutoff))
        remaining -= sum(r["data"]["amount"] for r in ledger.of("donation_refunded", one, money_cutoff))
        remaining -= sum(r["data"]["amount"] for r in ledger.of("disbursement_recorded", one, money_cutoff))
        records = [
            (f"report:{('periodic', 'final')[r['data']['kind']]}", r["data"]["report_id"], r["at"])
            for r in ledger.of("report_published", one, cutoff)
        ] + [
            ("disposal", r["data"]["disposal_id"], r["at"])
            for r in ledger.of("remaining_funds_disposed", one, cutoff)
        ]
        records.sort(key=lambda x: (x[2], x[1]))
        start = local(facts["at"], zone)
        for rule in rules["obligations"]:
            matching = [x for x in records if x[0] in rule["satisfied_by"]]
            dues: list[tuple[date, tuple[str, str, int] | None]] = []
            if rule["type"] == "every":
                if end is not None and end <= add_months(start, rule.get("applies_if_longer_than_months", 0)):
                    continue
                used: set[str] = set()
                previous: date | None = None
                for k in range(1, 12 * 200 // rule["months"] + 1):
                    due = add_months(start, rule["months"] * k)
                    if end is not None and due > end:
                        break
                    record = next(
                        (
                            x
                            for x in matching
                            if x[1] not in used and (previous is None or local(x[2], zone) > previous)
                        ),
                        None,
                    )
                    if record is not None:
                        used.add(record[1])
                    dues.append((due, record))
                    if due > as_of:
                        break
                    previous = due
            elif rule["type"] == "after_end":
                if end is None or (rule.get("only_if_funds_remain") and remaining <= 0):
                    continue
                dues.append((add_months(end, rule["months"]), matching[0] if matching else None))
            for due, record in dues:
                if due > as_of:
                    continue
                if record is not None:
                    counts["met" if local(record[2], zone) <= due else "met_late"] += 1
                else:
                    counts["overdue" if as_of > due else "due"] += 1
    judged = counts["met"] + counts["met_late"] + counts["overdue"]
    return {
        "rules": f"{rules['id']}@{rules['version']}",
        **counts,
        "on_time_percent": percent(counts["met"], judged),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("csv", type=Path, help="a CSV export (ledger export --format csv)")
    parser.add_argument("--rules", type=Path, required=True, help="the disclosure rule set (JSON)")
    parser.add_argument("--as-of", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    args = parser.parse_args(argv)
    ledger = Ledger(read(args.csv))
    rules = json.loads(args.rules.read_text(encoding="utf-8"))
    charities: dict[str, set[str]] = defaultdict(set)
    for campaign, facts in ledger.campaigns.items():
        charities[facts["charity"]].add(campaign)
    out = {
        "campaigns": {
            c: {"campaign_id": c, **scorecard(ledger, {c}, None, rules, args.as_of)}
            for c in sorted(ledger.campaigns)
        },
        "charities": {
            ch: {"charity_id": ch, **scorecard(ledger, cs, ch, rules, args.as_of)}
            for ch, cs in sorted(charities.items())
        },
    }
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
