"""What the console lists for one charity, beyond the public reads: its disbursements
that have no evidence yet, and its transactions still pending or failed. Every statement
is scoped to the charity first; another charity's rows are simply not there."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from ledger_api.core import ids
from ledger_api.core.formats import major_units
from ledger_api.core.models import ChainTransaction
from ledger_api.disclosure import answers, calendar, rules
from ledger_api.disclosure import reads as disclosure_reads
from ledger_api.disclosure.rules import RuleSet
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror

LISTED = 100  # rows of each list on the dashboard (the oldest first: they need doing)


@dataclass(frozen=True)
class Unevidenced:
    id: str
    campaign_id: str
    amount: int
    currency: str
    recipient: str
    purpose: str


@dataclass(frozen=True)
class OpenTransaction:
    id: str
    function: str
    status: str  # queued (signed or sent, not mined yet) or failed
    records: list[str]
    error: str | None
    created_at: datetime | None


def without_evidence(mirror: Mirror, charity_hex: str) -> list[Unevidenced]:
    B, C = im.Disbursement, im.Campaign
    with mirror.engine.connect() as connection:
        rows = connection.execute(
            select(B.disbursement_id, B.campaign_id, B.amount, B.recipient, B.purpose, C.currency)
            .join(C, (C.deployment_id == B.deployment_id) & (C.campaign_id == B.campaign_id))
            .where(
                B.deployment_id == mirror.deployment_id, C.charity_id == charity_hex, B.evidence_count == 0
            )
            .order_by(B.block_number, B.log_index)
            .limit(LISTED)
        ).all()
    return [
        Unevidenced(
            ids.from_bytes32(r.disbursement_id),
            ids.from_bytes32(r.campaign_id),
            int(r.amount),
            r.currency,
            r.recipient,
            r.purpose,
        )
        for r in rows
    ]


def open_transactions(mirror: Mirror, charity_hex: str) -> list[OpenTransaction]:
    T = ChainTransaction
    with mirror.engine.connect() as connection:
        rows = connection.execute(
            select(T.id, T.function, T.status, T.records, T.error, T.created_at)
            .where(
                T.chain_id == mirror.deployment.chain_id,
                T.charity_id == charity_hex,
                T.status.in_(("signed", "sent", "failed")),
            )
            .order_by(T.created_at)
            .limit(LISTED)
        ).all()
    found = []
    for r in rows:
        records = json.loads(r.records or "{}").get("ids", [])
        error = json.loads(r.error).get("name") if r.error and r.error.startswith("{") else r.error
        found.append(
            OpenTransaction(
                r.id,
                r.function,
                "failed" if r.status == "failed" else "queued",
                [str(x) for x in records][:5],
                str(error)[:200] if error else None,
                r.created_at,
            )
        )
    return found


@dataclass(frozen=True)
class IncomingGrant:
    """A grant another campaign on the ledger paid to this one, not yet recorded in full."""

    id: str  # the paying disbursement
    from_campaign: str
    from_charity: str
    purpose: str
    amount: int
    received: int  # recorded here so far
    currency: str

    @property
    def remaining(self) -> int:
        return self.amount - self.received

    @property
    def remaining_major(self) -> str:
        """The rest, as the form's amount field takes it ("1234.56")."""
        return major_units(self.remaining, self.currency)


def incoming_grants(mirror: Mirror, campaign_hex: str) -> list[IncomingGrant]:
    """Grants addressed to the campaign (the caller owns it) that its charity has not yet
    recorded in full, oldest first: they need doing."""
    G, B, C, CH = im.Grant, im.Disbursement, im.Campaign, im.Charity
    rows = (
        select(
            G.disbursement_id,
            C.name,
            CH.name.label("charity_name"),
            B.purpose,
            B.amount,
            G.received,
            C.currency,
        )
        .join(B, (B.deployment_id == G.deployment_id) & (B.disbursement_id == G.disbursement_id))
        .join(C, (C.deployment_id == B.deployment_id) & (C.campaign_id == B.campaign_id))
        .join(CH, (CH.deployment_id == C.deployment_id) & (CH.charity_id == C.charity_id))
        .where(
            G.deployment_id == mirror.deployment_id,
            G.recipient_campaign_id == campaign_hex,
            G.received < B.amount,
        )
        .order_by(G.block_number, G.log_index)
        .limit(LISTED)
    )
    with mirror.engine.connect() as connection:
        return [
            IncomingGrant(
                ids.from_bytes32(r.disbursement_id),
                r.name,
                r.charity_name,
                r.purpose,
                r.amount,
                r.received,
                r.currency,
            )
            for r in connection.execute(rows)
        ]


@dataclass(frozen=True)
class RuleInForce:
    """A campaign's approval rule as the mirror holds its newest version."""

    version: int
    threshold: int
    approvers: list[str]  # accounts, as the rule names them
    validity: int  # seconds

    @property
    def validity_hours(self) -> int:
        return self.validity // 3600


def rule_in_force(mirror: Mirror, campaign_hex: str) -> RuleInForce | None:
    """The newest version of the campaign's approval rule; None if it has none (a rule is
    never removed, so None means there never was one)."""
    R, A = im.ApprovalRule, im.ApprovalRuleApprover
    with mirror.engine.connect() as connection:
        row = connection.execute(
            select(R.version, R.threshold, R.validity)
            .where(R.deployment_id == mirror.deployment_id, R.campaign_id == campaign_hex)
            .order_by(R.version.desc())
            .limit(1)
        ).one_or_none()
        if row is None:
            return None
        named = connection.execute(
            select(A.approver)
            .where(
                A.deployment_id == mirror.deployment_id,
                A.campaign_id == campaign_hex,
                A.version == row.version,
            )
            .order_by(A.block_number, A.log_index)
        ).scalars()
        return RuleInForce(int(row.version), int(row.threshold), list(named), int(row.validity))


# ------------------------------------------------------------------ disclosure deadlines

DUE_SOON_DAYS = 30  # the dashboard lists what falls due within this many days


@dataclass(frozen=True)
class Deadline:
    """One disclosure obligation the dashboard lists: overdue, or due within 30 days."""

    campaign_id: str
    campaign: str
    title: str
    due_on: date
    status: str  # overdue | due
    days: int  # overdue: days late so far; due: days left
    action: str  # the anchor of the form that meets it on the campaign's page


def disclosure_rules(mirror: Mirror) -> RuleSet:
    return rules.load(mirror.settings.disclosure_rules)


def today(ruleset: RuleSet) -> date:
    return datetime.now(UTC).astimezone(ruleset.zone).date()


def _action(ruleset: RuleSet, rule_id: str) -> str:
    """Which form meets the rule: a disposal's, or a report's."""
    rule = next((r for r in ruleset.obligations if r.id == rule_id), None)
    return "disposal-heading" if rule is not None and "disposal" in rule.satisfied_by else "report-heading"


def deadlines(mirror: Mirror, charity_hex: str, language: str) -> list[Deadline]:
    """The charity's obligations overdue (most late first), then those due in the next
    30 days (soonest first), as the calendar judges them today."""
    ruleset = disclosure_rules(mirror)
    day = today(ruleset)
    with mirror.engine.connect() as connection:
        found = disclosure_reads.campaigns(mirror, connection, ruleset, day, charity_hex)
    listed = []
    for facts, extra in found:
        shown = answers.campaign_answer(ruleset, facts, extra, day, language)
        for item in shown["obligations"]:
            due_on = item["due_on"]
            if due_on is None or item["status"] not in ("overdue", "due"):
                continue
            left = (due_on - day).days
            if item["status"] == "due" and left > DUE_SOON_DAYS:
                continue
            days = item["days_late"] if item["status"] == "overdue" else left
            listed.append(
                Deadline(
                    facts.id,
                    facts.name,
                    item["title"],
                    due_on,
                    item["status"],
                    days,
                    _action(ruleset, item["rule"]),
                )
            )
    listed.sort(key=lambda d: (d.status != "overdue", d.due_on, d.campaign_id))
    return listed[:LISTED]


def disclosure(mirror: Mirror, campaign_hex: str, language: str) -> dict[str, Any] | None:
    """A campaign's disclosure as the public answer has it (end date, obligations with the
    record that met each, reports, disposals), for its page in the console."""
    ruleset = disclosure_rules(mirror)
    day = today(ruleset)
    with mirror.engine.connect() as connection:
        found = disclosure_reads.campaigns(mirror, connection, ruleset, day, None, campaign_hex)
    if not found:
        return None
    facts, extra = found[0]
    shown = answers.campaign_answer(ruleset, facts, extra, day, language)
    zone = ruleset.zone
    shown["reports"] = [
        {
            **report,
            "period_start": calendar.local_date(report["period_start"], zone),
            # the contract keeps the exclusive end: the report covers up to the day before
            "period_end": calendar.local_date(report["period_end"] - 1, zone),
            "on": calendar.local_date(report["at"], zone),
        }
        for report in extra["reports"]
    ]
    shown["disposals"] = [
        {**disposal, "on": calendar.local_date(disposal["at"], zone)} for disposal in extra["disposals"]
    ]
    shown["rules_title"] = ruleset.title.get(language) or ruleset.title.get("en", ruleset.id)
    return shown
