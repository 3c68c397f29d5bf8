"""A scorecard from the mirror's tables (never from the events: the CSV export is the
events, and the figures must come out the same both ways).

What counts: every record in the mirror, final or not, as the CSV export lists them.
Money is per currency (a charity's campaigns may differ); everything else counts records."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, and_, select

from ledger_api.core import ids
from ledger_api.core.errors import NotFound
from ledger_api.disclosure import answers as disclosure_answers
from ledger_api.disclosure import reads as disclosure_reads
from ledger_api.disclosure.rules import RuleSet
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror
from ledger_api.scorecards.figures import days, nearest_rank, percent

DEFINITIONS = {
    "money": "Per currency, in minor units: received is every donation recorded (grants received"
    " included); refunded, every refund; allocated, every disbursement (each is allocated in full to"
    " the donations that paid for it); unspent = received - refunded - allocated.",
    "evidence": "A disbursement is backed when at least one document anchored to it (a redacted copy"
    " included) has not been withdrawn; the share is the backed amount over the disbursed amount, the"
    " percentage rounded half to even to one decimal.",
    "days_to_evidence": "For each disbursement with evidence: its first document's block time minus"
    " the disbursement's, in whole seconds; median and 90th percentile by nearest rank (the value at"
    " rank ceil(p x n / 100) of the sorted list), shown in days to one decimal, half to even.",
    "corrections": "Corrections of the scope's records (for a campaign: of it, its donations, refunds,"
    " disbursements, reports and disposals), each with the reason the ledger requires.",
    "approvals": "Shown when a campaign is under an approval rule or has proposals: proposals made,"
    " executed (paid after their approvals) and rejected, beside every disbursement.",
    "recipients": "Shown when disbursements name a registered recipient organisation: what was paid"
    " to named recipients and what they confirmed with their own keys (never more than each payout).",
    "disclosure": "The deployment's disclosure rule set as of the date: obligations due by then, by"
    " status (met on time, met late, overdue, due that day); on time = met / (met + met late + overdue).",
}


@dataclass(frozen=True)
class Scope:
    kind: str  # "campaign" | "charity"
    readable: str
    hex: str


def _at(model: Any) -> Any:
    B = im.Block
    return and_(B.deployment_id == model.deployment_id, B.number == model.block_number)


def scorecard(mirror: Mirror, ruleset: RuleSet, scope: Scope, as_of: date) -> dict[str, Any]:
    with mirror.engine.connect() as connection:
        return _scorecard(mirror, connection, ruleset, scope, as_of)


def _scorecard(
    mirror: Mirror, connection: Connection, ruleset: RuleSet, scope: Scope, as_of: date
) -> dict[str, Any]:
    dep = mirror.deployment_id
    C, D, R, B = im.Campaign, im.Donation, im.Refund, im.Disbursement
    E, W = im.Evidence, im.EvidenceWithdrawal
    where = C.campaign_id == scope.hex if scope.kind == "campaign" else C.charity_id == scope.hex
    campaigns = {
        row.campaign_id: row for row in connection.execute(select(C).where(C.deployment_id == dep, where))
    }
    if scope.kind == "campaign" and not campaigns:
        raise NotFound("campaign not found")
    if (
        scope.kind == "charity"
        and not connection.execute(
            select(im.Charity.charity_id).where(
                im.Charity.deployment_id == dep, im.Charity.charity_id == scope.hex
            )
        ).first()
    ):
        raise NotFound("charity not found")
    keys = sorted(campaigns)
    currency = {key: row.currency for key, row in campaigns.items()}
    money: dict[str, dict[str, int]] = defaultdict(lambda: {"received": 0, "refunded": 0, "allocated": 0})
    for cur in sorted(set(currency.values())):
        money[cur]  # every currency of the scope is listed, even with nothing recorded
    for model, field in ((D, "received"), (R, "refunded")):
        for campaign, amount in connection.execute(
            select(model.campaign_id, model.amount).where(
                model.deployment_id == dep, model.campaign_id.in_(keys)
            )
        ):
            money[currency[campaign]][field] += amount
    paid = connection.execute(
        select(B.disbursement_id, B.campaign_id, B.amount, im.Block.timestamp)
        .join(im.Block, _at(B))
        .where(B.deployment_id == dep, B.campaign_id.in_(keys))
    ).all()
    for row in paid:
        money[currency[row.campaign_id]]["allocated"] += row.amount
    disbursement_keys = [row.disbursement_id for row in paid]
    anchored: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for anchor in connection.execute(
        select(E.disbursement_id, E.document_hash, im.Block.timestamp)
        .join(im.Block, _at(E))
        .where(E.deployment_id == dep, E.disbursement_id.in_(disbursement_keys))
    ):
        anchored[anchor.disbursement_id].append((anchor.timestamp, anchor.document_hash))
    withdrawn = {
        (row.disbursement_id, row.document_hash)
        for row in connection.execute(
            select(W.disbursement_id, W.document_hash).where(
                W.deployment_id == dep, W.disbursement_id.in_(disbursement_keys)
            )
        )
    }
    backed: dict[str, dict[str, int]] = defaultdict(lambda: {"disbursed": 0, "backed": 0})
    delays = []
    for row in paid:
        documents = anchored.get(row.disbursement_id, [])
        cur = currency[row.campaign_id]
        backed[cur]["disbursed"] += row.amount
        if any((row.disbursement_id, h) not in withdrawn for _, h in documents):
            backed[cur]["backed"] += row.amount
        if documents:
            delays.append(max(min(t for t, _ in documents) - row.timestamp, 0))
    with_evidence = sum(1 for row in paid if anchored.get(row.disbursement_id))
    card: dict[str, Any] = {
        f"{scope.kind}_id": scope.readable,
        "as_of": as_of,
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
        "corrections": _corrections(connection, dep, scope, keys),
        "approvals": _approvals(connection, dep, keys, len(paid)),
        "recipients": _recipients(connection, dep, paid, currency),
        "disclosure": _disclosure(mirror, connection, ruleset, scope, as_of),
        "definitions": DEFINITIONS,
        "links": _links(scope),
    }
    return card


def _corrections(connection: Connection, dep: Any, scope: Scope, keys: list[str]) -> dict[str, Any]:
    X = im.Correction
    charities = select(im.Campaign.charity_id).where(
        im.Campaign.deployment_id == dep, im.Campaign.campaign_id.in_(keys)
    )
    rows = connection.execute(
        select(X).where(
            X.deployment_id == dep,
            X.charity_id == scope.hex if scope.kind == "charity" else X.charity_id.in_(charities),
        )
    ).all()
    if scope.kind == "campaign":
        owned = set(keys)
        for model, column in (
            (im.Donation, im.Donation.donation_id),
            (im.Refund, im.Refund.refund_id),
            (im.Disbursement, im.Disbursement.disbursement_id),
            (im.Report, im.Report.report_id),
            (im.Disposal, im.Disposal.disposal_id),
        ):
            wanted = sorted({r.original_id for r in rows})
            owned |= set(
                connection.execute(
                    select(column).where(
                        model.deployment_id == dep, model.campaign_id.in_(keys), column.in_(wanted)
                    )
                ).scalars()
            )
        rows = [r for r in rows if r.original_id in owned]
    rows = sorted(rows, key=lambda r: (r.block_number, r.log_index))
    return {
        "count": len(rows),
        "items": [
            {
                "id": ids.from_bytes32(r.correction_id),
                "original_kind": ids.RECORD_KINDS[r.original_kind],
                "original_id": ids.from_bytes32(r.original_id),
                "reason": r.reason,
            }
            for r in rows
        ],
    }


def _approvals(
    connection: Connection, dep: Any, keys: list[str], disbursements: int
) -> dict[str, Any] | None:
    P, V, A = im.Proposal, im.ProposalVote, im.ApprovalRule
    proposals = connection.execute(
        select(P.disbursement_id, P.executed_block).where(P.deployment_id == dep, P.campaign_id.in_(keys))
    ).all()
    ruled = connection.execute(
        select(A.campaign_id).where(A.deployment_id == dep, A.campaign_id.in_(keys))
    ).first()
    if not proposals and ruled is None:
        return None
    rejected = {
        row.disbursement_id
        for row in connection.execute(
            select(V.disbursement_id).where(
                V.deployment_id == dep,
                V.vote == "reject",
                V.disbursement_id.in_([p.disbursement_id for p in proposals]),
            )
        )
    }
    return {
        "proposals": len(proposals),
        "executed": sum(1 for p in proposals if p.executed_block is not None),
        "rejected": len(rejected),
        "disbursements": disbursements,
    }


def _recipients(
    connection: Connection, dep: Any, paid: Sequence[Any], currency: dict[str, str]
) -> dict[str, Any] | None:
    N, K = im.DisbursementRecipient, im.ReceiptConfirmation
    amounts = {row.disbursement_id: row for row in paid}
    named = [
        key
        for (key,) in connection.execute(
            select(N.disbursement_id).where(N.deployment_id == dep, N.disbursement_id.in_(sorted(amounts)))
        )
    ]
    if not named:
        return None
    confirmed: dict[str, int] = defaultdict(int)
    for key, amount in connection.execute(
        select(K.disbursement_id, K.amount).where(K.deployment_id == dep, K.disbursement_id.in_(named))
    ):
        confirmed[key] += amount
    by: dict[str, dict[str, int]] = defaultdict(lambda: {"paid_to_named": 0, "confirmed": 0})
    for key in named:
        row = amounts[key]
        cur = currency[row.campaign_id]
        by[cur]["paid_to_named"] += row.amount
        by[cur]["confirmed"] += min(confirmed[key], row.amount)
    return {
        "disbursements": len(named),
        "confirmed_in_full": sum(1 for key in named if confirmed[key] >= amounts[key].amount),
        "by_currency": [{"currency": cur, **b} for cur, b in sorted(by.items())],
    }


def _disclosure(
    mirror: Mirror, connection: Connection, ruleset: RuleSet, scope: Scope, as_of: date
) -> dict[str, Any]:
    charity = scope.hex if scope.kind == "charity" else None
    campaign = scope.hex if scope.kind == "campaign" else None
    counts = {"met": 0, "met_late": 0, "overdue": 0, "due": 0}
    for facts, extra in disclosure_reads.campaigns(mirror, connection, ruleset, as_of, charity, campaign):
        for obligation in disclosure_answers.campaign_answer(ruleset, facts, extra, as_of)["obligations"]:
            if obligation["due_on"] is not None and obligation["due_on"] <= as_of:
                counts[obligation["status"]] += 1
    judged = counts["met"] + counts["met_late"] + counts["overdue"]
    return {
        "rules": f"{ruleset.id}@{ruleset.version}",
        **counts,
        "on_time_percent": percent(counts["met"], judged),
    }


def _links(scope: Scope) -> dict[str, str]:
    if scope.kind == "campaign":
        base = f"/v1/campaigns/{scope.readable}"
        return {
            "money": f"{base}/flows",
            "evidence": f"{base}/disbursements",
            "days_to_evidence": f"{base}/disbursements",
            "corrections": f"/v1/audit/trail?campaign_id={scope.readable}",
            "approvals": f"{base}/proposals",
            "recipients": f"{base}/disbursements",
            "disclosure": f"{base}/disclosures",
            "records": f"/v1/audit/export?format=csv&campaign_id={scope.readable}",
        }
    base = f"/v1/charities/{scope.readable}"
    return {
        "money": base,
        "evidence": f"/v1/campaigns?charity_id={scope.readable}",
        "days_to_evidence": f"/v1/campaigns?charity_id={scope.readable}",
        "corrections": f"/v1/audit/trail?charity_id={scope.readable}",
        "approvals": f"/v1/campaigns?charity_id={scope.readable}",
        "recipients": f"/v1/campaigns?charity_id={scope.readable}",
        "disclosure": f"/v1/audit/disclosure?charity_id={scope.readable}",
        "records": f"/v1/audit/export?format=csv&charity_id={scope.readable}",
    }
