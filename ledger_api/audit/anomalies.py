"""Anomaly reports: patterns a regulator should look at, each with the records that show
it and their chain references. Thresholds are parameters of the request (with defaults
from the settings), because what counts as unusual differs between charities.

- `missing_evidence`: a disbursement with no evidence document after `evidence_days`.
- `recipient_concentration`: a campaign paying more than `recipient_share` of its
  disbursed total to one recipient.
- `refund_after_allocation`: a donation refunded after part of it had already been
  allocated to a disbursement.
- `not_finalized`: a transaction the service signed that is still unmined after
  `pending_minutes`, one that failed on chain, one that was mined but is no longer in the
  chain (dropped by a reorg), or mirrored records still not final after `pending_minutes`.
- `large_disbursement`: a disbursement above `large_share` of its campaign's receipts.
- `grant_unrecorded`: a grant to another campaign on the ledger that the receiving charity
  has not recorded in full `grant_days` after it was paid (listed under the receiving
  campaign, and in the paying campaign's scope too: both charities should look).
- `fast_approval`: a proposal whose last needed approval (the threshold-th) came within
  `fast_approval_minutes` of its proposal, by block time: a rubber stamp, or approvers
  who are not independent of the proposer.
- `approver_is_recipient`: an approval by an approver who is the payout's recipient. The
  rule: the approver's account is the account of the recipient organisation the proposal
  names (its recipientOrgId, from the input the service kept, and that organisation's
  latest RecipientRegistered/RecipientAccountChanged account), or the free-text recipient
  contains the approver's address, or the charity's label for the approver (its name or
  role, `approver_accounts.label`) case-insensitively equals the recipient or, when the
  label is at least 4 characters, appears in it. A label like "Board chair" rarely matches
  a payee; a person's name does.
- `unconfirmed_receipt`: a disbursement naming a registered recipient organisation that
  the organisation has not confirmed (or confirmed only in part) `receipt_days` after it
  was recorded.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Select, and_, func, select, tuple_

from ledger_api.audit.schemas import AnomalyReport
from ledger_api.audit.scope import Scope
from ledger_api.core import ids
from ledger_api.core.formats import major_units
from ledger_api.core.models import ApproverAccount, ChainTransaction, ProposalInput
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror
from ledger_api.mirror.proofs import ChainView, block_info, chain_view, iso, proof

KINDS = (
    "missing_evidence",
    "recipient_concentration",
    "refund_after_allocation",
    "not_finalized",
    "large_disbursement",
    "grant_unrecorded",
    "fast_approval",
    "approver_is_recipient",
    "unconfirmed_receipt",
)
C, D, B, A, R, G = im.Campaign, im.Donation, im.Disbursement, im.Allocation, im.Refund, im.Grant


@dataclass(frozen=True)
class Thresholds:
    evidence_days: int = 30
    recipient_share: float = 0.5
    large_share: float = 0.25
    pending_minutes: int = 30
    grant_days: int = 14
    fast_approval_minutes: int = 10
    receipt_days: int = 30


def _campaigns(mirror: Mirror, scope: Scope) -> Select[Any]:
    query = select(C.campaign_id).where(C.deployment_id == mirror.deployment_id)
    if scope.campaign_id is not None:
        return query.where(C.campaign_id == scope.campaign_id)
    if scope.charity_id is not None:
        return query.where(C.charity_id == scope.charity_id)
    return query


def anomalies(mirror: Mirror, scope: Scope, limits: Thresholds, limit: int) -> AnomalyReport:
    now = int(time.time())
    found: list[dict[str, Any]] = []
    with mirror.engine.connect() as connection:
        view = chain_view(mirror, connection)
        names: dict[str, str] = {}
        currencies: dict[str, str] = {}
        for row in connection.execute(
            select(C.campaign_id, C.charity_id, C.currency).where(C.deployment_id == mirror.deployment_id)
        ):
            names[row.campaign_id], currencies[row.campaign_id] = row.charity_id, row.currency

        def money(campaign: str, amount: int) -> str:
            """An amount as the texts give it: "80.00 CNY" (the fields keep minor units)."""
            currency = currencies.get(campaign, "")
            return f"{major_units(amount, currency)} {currency}".rstrip()

        campaigns = _campaigns(mirror, scope)
        found += _missing_evidence(mirror, connection, campaigns, now - limits.evidence_days * 86400, money)
        found += _concentration(mirror, connection, campaigns, limits.recipient_share, money)
        found += _refund_after_allocation(mirror, connection, campaigns, money)
        found += _large(mirror, connection, campaigns, limits.large_share, money)
        found += _unconfirmed(mirror, connection, campaigns, now - limits.receipt_days * 86400, money)
        found += _not_finalized(mirror, connection, scope, view, now - limits.pending_minutes * 60)
        found += _grant_unrecorded(mirror, connection, campaigns, now - limits.grant_days * 86400, money)
        found += _fast_approval(mirror, connection, campaigns, limits.fast_approval_minutes, money)
        found += _approver_is_recipient(mirror, connection, campaigns, money)
        blocks = block_info(mirror, connection, {f["_row"].block_number for f in found if "_row" in f})
    found.sort(key=lambda f: (f["_order"], f["kind"]))
    items = []
    for f in found[:limit]:
        row = f.pop("_row", None)
        f.pop("_order")
        campaign = f.get("campaign_id")
        if campaign is not None:
            f["charity_id"] = ids.from_bytes32(names[campaign]) if campaign in names else None
            f["campaign_id"] = ids.from_bytes32(campaign)
            if "amount" in f:
                f["currency"] = currencies.get(campaign, "")
        if row is not None:
            f["proof"] = proof(view, blocks, row)
        items.append(f)
    counts: dict[str, int] = defaultdict(int)
    for f in found:
        counts[f["kind"]] += 1
    return AnomalyReport.model_validate(
        {
            "scope": scope.describe(),
            "thresholds": limits.__dict__,
            "checked_at": {"block_number": view.indexed_block, "finalized_block": view.finalized_block},
            "counts": {kind: counts.get(kind, 0) for kind in KINDS},
            "items": items,
            "truncated": len(found) > limit,
        }
    )


def _timed(statement: Any, model: Any) -> Select[Any]:
    return statement.join(
        im.Block, and_(im.Block.deployment_id == model.deployment_id, im.Block.number == model.block_number)
    )


Money = Callable[[str, int], str]
P, V = im.Proposal, im.ProposalVote


def _fast_approval(
    mirror: Mirror, connection: Connection, campaigns: Select[Any], minutes: int, money: Money
) -> list[dict[str, Any]]:
    proposed = {
        r.disbursement_id: r
        for r in connection.execute(
            _timed(select(P, im.Block.timestamp), P).where(
                P.deployment_id == mirror.deployment_id,
                P.campaign_id.in_(campaigns),
                P.approvals >= P.threshold,
            )
        )
    }
    if not proposed:
        return []
    approvals: dict[str, list[Any]] = defaultdict(list)
    for vote in connection.execute(
        _timed(select(V, im.Block.timestamp), V)
        .where(
            V.deployment_id == mirror.deployment_id,
            V.vote == "approve",
            V.disbursement_id.in_(sorted(proposed)),
        )
        .order_by(V.block_number, V.log_index)
    ):
        approvals[vote.disbursement_id].append(vote)
    found = []
    for key, p in proposed.items():
        votes = approvals.get(key, [])
        if len(votes) < p.threshold:
            continue
        last = votes[p.threshold - 1]
        took = last.timestamp - p.timestamp
        if took <= minutes * 60:
            found.append(
                {
                    "kind": "fast_approval",
                    "campaign_id": p.campaign_id,
                    "record": {"kind": "proposal", "id": ids.from_bytes32(key)},
                    "detail": f"proposal of {money(p.campaign_id, p.amount)} to {p.recipient!r} had its "
                    f"{p.threshold} approvals {took // 60} min {took % 60} s after it was proposed "
                    f"(by {', '.join(v.voter for v in votes[: p.threshold])})",
                    "amount": p.amount,
                    "_row": last,
                    "_order": (last.block_number, last.log_index),
                }
            )
    return found


def _recipient_accounts(mirror: Mirror, connection: Connection) -> dict[str, str]:
    """Each registered recipient organisation's current account, from the trail."""
    accounts: dict[str, str] = {}
    for raw in connection.execute(
        select(im.Event.args)
        .where(
            im.Event.deployment_id == mirror.deployment_id,
            im.Event.name.in_(["RecipientRegistered", "RecipientAccountChanged"]),
        )
        .order_by(im.Event.block_number, im.Event.log_index)
    ).scalars():
        args = orjson.loads(raw)
        account = args.get("account")
        if account:
            accounts[args["recipientId"]] = str(account)
    return accounts


def _approver_is_recipient(
    mirror: Mirror, connection: Connection, campaigns: Select[Any], money: Money
) -> list[dict[str, Any]]:
    rows = connection.execute(
        select(V, P.campaign_id, P.recipient, P.amount, ProposalInput.input)
        .join(P, (P.deployment_id == V.deployment_id) & (P.disbursement_id == V.disbursement_id))
        .outerjoin(
            ProposalInput,
            (ProposalInput.deployment_id == V.deployment_id)
            & (ProposalInput.disbursement_id == V.disbursement_id),
        )
        .where(V.deployment_id == mirror.deployment_id, V.vote == "approve", P.campaign_id.in_(campaigns))
    ).all()
    if not rows:
        return []
    labels = dict(
        connection.execute(
            select(ApproverAccount.account, ApproverAccount.label).where(
                ApproverAccount.deployment_id == mirror.deployment_id
            )
        ).all()
    )
    organisations = _recipient_accounts(mirror, connection)
    found = []
    for r in rows:
        recipient = r.recipient.casefold()
        label = labels.get(r.voter, "").strip().casefold()
        organisation = orjson.loads(r.input).get("recipientOrgId") if r.input else None
        why = None
        if organisation and organisations.get(organisation, "").lower() == r.voter.lower():
            why = "the approver's account is the recipient organisation's account"
        elif r.voter.lower() in recipient:
            why = "the recipient names the approver's account"
        elif label and (label == recipient or (len(label) >= 4 and label in recipient)):
            why = f"the charity's name for the approver ({labels[r.voter]!r}) matches the recipient"
        if why is not None:
            found.append(
                {
                    "kind": "approver_is_recipient",
                    "campaign_id": r.campaign_id,
                    "record": {"kind": "proposal", "id": ids.from_bytes32(r.disbursement_id)},
                    "detail": f"{r.voter} approved a payout of {money(r.campaign_id, r.amount)} to "
                    f"{r.recipient!r}: {why}",
                    "amount": r.amount,
                    "_row": r,
                    "_order": (r.block_number, r.log_index),
                }
            )
    return found


def _missing_evidence(
    mirror: Mirror, connection: Connection, campaigns: Select[Any], before: int, money: Money
) -> list[dict[str, Any]]:
    rows = connection.execute(
        _timed(select(B, im.Block.timestamp), B).where(
            B.deployment_id == mirror.deployment_id,
            B.campaign_id.in_(campaigns),
            B.evidence_count == 0,
            im.Block.timestamp <= before,
        )
    ).all()
    return [
        {
            "kind": "missing_evidence",
            "campaign_id": r.campaign_id,
            "record": {"kind": "disbursement", "id": ids.from_bytes32(r.disbursement_id)},
            "detail": f"disbursement of {money(r.campaign_id, r.amount)} to {r.recipient!r} has no "
            f"evidence document {(int(time.time()) - r.timestamp) // 86400} days after it was recorded",
            "amount": r.amount,
            "_row": r,
            "_order": (r.block_number, r.log_index),
        }
        for r in rows
    ]


def _grant_unrecorded(
    mirror: Mirror, connection: Connection, campaigns: Select[Any], before: int, money: Money
) -> list[dict[str, Any]]:
    rows = connection.execute(
        _timed(
            select(
                B.disbursement_id,
                B.campaign_id.label("paying_campaign"),
                B.amount,
                B.block_number,
                B.tx_hash,
                B.log_index,
                G.recipient_campaign_id,
                G.received,
                im.Block.timestamp,
            ).join(G, (G.deployment_id == B.deployment_id) & (G.disbursement_id == B.disbursement_id)),
            B,
        ).where(
            B.deployment_id == mirror.deployment_id,
            B.campaign_id.in_(campaigns) | G.recipient_campaign_id.in_(campaigns),
            G.received < B.amount,
            im.Block.timestamp <= before,
        )
    ).all()
    return [
        {
            "kind": "grant_unrecorded",
            "campaign_id": r.recipient_campaign_id,
            "record": {"kind": "disbursement", "id": ids.from_bytes32(r.disbursement_id)},
            "detail": f"grant of {money(r.paying_campaign, r.amount)} from campaign "
            f"{ids.from_bytes32(r.paying_campaign)}: the receiving charity has recorded "
            f"{money(r.paying_campaign, r.received)} of it {(int(time.time()) - r.timestamp) // 86400} days "
            "after it was paid",
            "amount": r.amount - r.received,
            "_row": r,
            "_order": (r.block_number, r.log_index),
        }
        for r in rows
    ]


def _unconfirmed(
    mirror: Mirror, connection: Connection, campaigns: Select[Any], before: int, money: Money
) -> list[dict[str, Any]]:
    NR, RO, RC = im.DisbursementRecipient, im.Recipient, im.ReceiptConfirmation
    confirmed = (
        select(func.coalesce(func.sum(RC.amount), 0))
        .where(RC.deployment_id == B.deployment_id, RC.disbursement_id == B.disbursement_id)
        .scalar_subquery()
    )
    rows = connection.execute(
        _timed(select(B, RO.name, RO.identifier, confirmed.label("confirmed"), im.Block.timestamp), B)
        .join(NR, and_(NR.deployment_id == B.deployment_id, NR.disbursement_id == B.disbursement_id))
        .join(RO, and_(RO.deployment_id == NR.deployment_id, RO.recipient_id == NR.recipient_id))
        .where(
            B.deployment_id == mirror.deployment_id,
            B.campaign_id.in_(campaigns),
            im.Block.timestamp <= before,
            confirmed < B.amount,
        )
    ).all()
    found = []
    for r in rows:
        done = int(r.confirmed)  # PostgreSQL sums to a Decimal
        said = (
            "not confirmed by the recipient"
            if not done
            else f"the recipient confirmed only {money(r.campaign_id, done)}"
        )
        found.append(
            {
                "kind": "unconfirmed_receipt",
                "campaign_id": r.campaign_id,
                "record": {"kind": "disbursement", "id": ids.from_bytes32(r.disbursement_id)},
                "detail": f"disbursement of {money(r.campaign_id, r.amount)} to {r.name} ({r.identifier}):"
                f" {said} {(int(time.time()) - r.timestamp) // 86400} days after it was recorded",
                "amount": r.amount - done,
                "_row": r,
                "_order": (r.block_number, r.log_index),
            }
        )
    return found


def _concentration(
    mirror: Mirror, connection: Connection, campaigns: Select[Any], share: float, money: Money
) -> list[dict[str, Any]]:
    per_recipient = connection.execute(
        select(B.campaign_id, B.recipient, func.sum(B.amount), func.count())
        .where(B.deployment_id == mirror.deployment_id, B.campaign_id.in_(campaigns))
        .group_by(B.campaign_id, B.recipient)
    ).all()
    totals: dict[str, int] = defaultdict(int)
    for campaign, _, amount, _ in per_recipient:
        totals[campaign] += int(amount)
    found = []
    for campaign, recipient, amount, count in per_recipient:
        amount = int(amount)
        if totals[campaign] and amount / totals[campaign] > share:
            found.append(
                {
                    "kind": "recipient_concentration",
                    "campaign_id": campaign,
                    "record": {"kind": "recipient", "id": recipient},
                    "detail": f"{amount / totals[campaign]:.1%} of the campaign's disbursed total "
                    f"({money(campaign, amount)} of {money(campaign, totals[campaign])}, "
                    f"{count} disbursements) went to one recipient",
                    "amount": amount,
                    "share": round(amount / totals[campaign], 4),
                    "_order": (-1, 0),
                }
            )
    return found


def _refund_after_allocation(
    mirror: Mirror, connection: Connection, campaigns: Select[Any], money: Money
) -> list[dict[str, Any]]:
    first_allocation = (
        select(A.donation_id, func.min(A.block_number).label("block_number"))
        .where(A.deployment_id == mirror.deployment_id)
        .group_by(A.donation_id)
        .subquery()
    )
    rows = connection.execute(
        select(R, first_allocation.c.block_number.label("allocated_in"))
        .join(first_allocation, first_allocation.c.donation_id == R.donation_id)
        .where(
            R.deployment_id == mirror.deployment_id,
            R.campaign_id.in_(campaigns),
            R.block_number >= first_allocation.c.block_number,
        )
    ).all()
    found = []
    for r in rows:
        # Same block: only a refund logged after the allocation counts.
        if r.block_number == r.allocated_in and not _after_allocation(mirror, connection, r):
            continue
        found.append(
            {
                "kind": "refund_after_allocation",
                "campaign_id": r.campaign_id,
                "record": {"kind": "refund", "id": ids.from_bytes32(r.refund_id)},
                "donation_id": ids.from_bytes32(r.donation_id),
                "detail": f"refund of {money(r.campaign_id, r.amount)} ({r.reason!r}) after the donation "
                f"was already allocated to a disbursement (first in block {r.allocated_in})",
                "amount": r.amount,
                "_row": r,
                "_order": (r.block_number, r.log_index),
            }
        )
    return found


def _after_allocation(mirror: Mirror, connection: Connection, refund: Any) -> bool:
    earlier = connection.execute(
        select(func.count()).where(
            A.deployment_id == mirror.deployment_id,
            A.donation_id == refund.donation_id,
            tuple_(A.block_number, A.log_index) < tuple_(refund.block_number, refund.log_index),
        )
    ).scalar_one()
    return bool(earlier)


def _large(
    mirror: Mirror, connection: Connection, campaigns: Select[Any], share: float, money: Money
) -> list[dict[str, Any]]:
    rows = connection.execute(
        select(B, C.received)
        .join(C, and_(C.deployment_id == B.deployment_id, C.campaign_id == B.campaign_id))
        .where(B.deployment_id == mirror.deployment_id, B.campaign_id.in_(campaigns))
    ).all()
    return [
        {
            "kind": "large_disbursement",
            "campaign_id": r.campaign_id,
            "record": {"kind": "disbursement", "id": ids.from_bytes32(r.disbursement_id)},
            "detail": f"disbursement of {money(r.campaign_id, r.amount)} to {r.recipient!r} is "
            f"{r.amount / r.received:.1%} of everything the campaign received "
            f"({money(r.campaign_id, r.received)})",
            "amount": r.amount,
            "share": round(r.amount / r.received, 4),
            "_row": r,
            "_order": (r.block_number, r.log_index),
        }
        for r in rows
        if r.received and r.amount / r.received > share
    ]


def _not_finalized(
    mirror: Mirror, connection: Connection, scope: Scope, view: ChainView, before: int
) -> list[dict[str, Any]]:
    T = ChainTransaction
    query = select(T).where(T.chain_id == mirror.deployment.chain_id)
    if scope.charity_id is not None:
        query = query.where(T.charity_id == scope.charity_id)
    cutoff = datetime.fromtimestamp(before, UTC)
    found = []
    for t in connection.execute(
        query.where(
            (T.status == "failed")
            | (T.status.in_(["signed", "sent"]) & (T.created_at < cutoff))
            | ((T.status == "mined") & (T.block_number <= view.finalized_block))
        )
    ).all():
        if t.status == "mined":
            continue  # checked below, against the mirror
        records = orjson.loads(t.records)
        if scope.campaign_id is not None and ids.from_bytes32(scope.campaign_id) not in records.get(
            "ids", []
        ):
            continue
        found.append(
            _transaction_finding(t, records, "failed on chain" if t.status == "failed" else "unmined")
        )
    # Mined transactions at or below the finalized height must have their events in the
    # mirror; one that has none was dropped by a reorg and never mined again.
    mined = connection.execute(
        query.where(
            T.status == "mined",
            T.block_number <= view.finalized_block,
            ~select(im.Event.id)
            .where(im.Event.deployment_id == mirror.deployment_id, im.Event.tx_hash == T.tx_hash)
            .exists(),
        )
    ).all()
    for t in mined:
        records = orjson.loads(t.records)
        if scope.campaign_id is not None and ids.from_bytes32(scope.campaign_id) not in records.get(
            "ids", []
        ):
            continue
        found.append(_transaction_finding(t, records, "mined, then dropped from the chain"))
    stalled = connection.execute(
        scoped_events(mirror, scope)
        .where(im.Event.block_number > view.finalized_block, im.Block.timestamp < before)
        .limit(1000)
    ).all()
    for e in stalled:
        found.append(
            {
                "kind": "not_finalized",
                "campaign_id": e.campaign_id,
                "record": {"kind": "event", "id": f"{e.block_number}:{e.log_index}", "event": e.name},
                "detail": f"recorded at {iso(e.timestamp)} and still not final (finalized height "
                f"{view.finalized_block})",
                "_row": e,
                "_order": (e.block_number, e.log_index),
            }
        )
    return found


def scoped_events(mirror: Mirror, scope: Scope) -> Select[Any]:
    E = im.Event
    query = _timed(
        select(E.block_number, E.log_index, E.tx_hash, E.name, E.campaign_id, im.Block.timestamp), E
    ).where(E.deployment_id == mirror.deployment_id)
    if scope.campaign_id is not None:
        return query.where(E.campaign_id == scope.campaign_id)
    if scope.charity_id is not None:
        return query.where(E.charity_id == scope.charity_id)
    return query


def _transaction_finding(t: Any, records: dict[str, Any], state: str) -> dict[str, Any]:
    created = t.created_at if t.created_at.tzinfo else t.created_at.replace(tzinfo=UTC)
    age = datetime.now(UTC) - created
    return {
        "kind": "not_finalized",
        "campaign_id": None,
        "record": {"kind": records.get("kind"), "ids": records.get("ids", [])},
        "transaction": {"id": t.id, "tx_hash": t.tx_hash, "status": t.status, "function": t.function},
        "detail": f"transaction {state} ({t.error or 'no error recorded'}), signed "
        f"{age // timedelta(minutes=1)} minutes ago",
        "_order": (t.block_number or 2**62, 0),
    }
