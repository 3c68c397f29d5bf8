"""Proposals as the mirror holds them, with their status derived at read time.

The mirror stores what the chain stores (pending, rejected, executed). Two statuses are
derived here: `approved` (pending with approvals >= threshold: it can be executed) and
`expired` (pending past `expires_at` by the time of the latest indexed block: the chain's
clock, not this server's; it can never be approved or paid)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from ledger_api.approvals.schemas import Proposal, Vote
from ledger_api.core import ids
from ledger_api.core.models import ApproverAccount
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror
from ledger_api.mirror.proofs import iso

MAX_LISTED = 200


def chain_time(mirror: Mirror) -> int:
    """The timestamp of the latest block the mirror indexed (0 before any)."""
    with mirror.engine.connect() as connection:
        latest = connection.execute(
            select(func.max(im.Block.timestamp)).where(im.Block.deployment_id == mirror.deployment_id)
        ).scalar_one_or_none()
    return int(latest or 0)


def status_of(state: str, approvals: int, threshold: int, expires_at: int, now: int) -> str:
    if state != "pending":
        return state
    if now > expires_at:
        return "expired"
    return "approved" if approvals >= threshold else "pending"


def _query(mirror: Mirror) -> Any:
    P, R = im.Proposal, im.ApprovalRule
    return (
        select(*im.table(P).c, R.approver_count, R.charity_id)
        .join(
            R,
            (R.deployment_id == P.deployment_id)
            & (R.campaign_id == P.campaign_id)
            & (R.version == P.rule_version),
        )
        .where(P.deployment_id == mirror.deployment_id)
    )


def proposals(
    mirror: Mirror,
    *,
    campaign_hex: str | None = None,
    charity_hex: str | None = None,
    disbursement_hex: str | None = None,
    waiting_for: str | None = None,
    labels_for: Callable[[str], bool] = lambda charity_hex: False,
) -> list[Proposal]:
    """Proposals, newest first; `waiting_for` an approver account: those it may approve
    now (pending, not expired, named by their rule, not its own, not approved by it yet).
    Votes carry the charity's label for their approver where `labels_for(charity)`: the
    labels are the charity's, not public."""
    P, A, V = im.Proposal, im.ApprovalRuleApprover, im.ProposalVote
    query = _query(mirror)
    if campaign_hex is not None:
        query = query.where(P.campaign_id == campaign_hex)
    if disbursement_hex is not None:
        query = query.where(P.disbursement_id == disbursement_hex)
    if charity_hex is not None:
        query = query.where(im.ApprovalRule.charity_id == charity_hex)
    now = chain_time(mirror)
    if waiting_for is not None:
        named = select(A.campaign_id).where(
            A.deployment_id == P.deployment_id,
            A.campaign_id == P.campaign_id,
            A.version == P.rule_version,
            A.approver == waiting_for,
        )
        voted = select(V.voter).where(
            V.deployment_id == P.deployment_id, V.disbursement_id == P.disbursement_id, V.voter == waiting_for
        )
        query = query.where(
            P.state == "pending",
            P.expires_at >= now,
            P.proposer != waiting_for,
            named.exists(),
            ~voted.exists(),
        )
    query = query.order_by(P.block_number.desc(), P.log_index.desc()).limit(MAX_LISTED)
    with mirror.engine.connect() as connection:
        rows = connection.execute(query).all()
        keys = [row.disbursement_id for row in rows]
        votes: dict[str, list[Any]] = {}
        if keys:
            for vote in connection.execute(
                select(im.table(V))
                .where(V.deployment_id == mirror.deployment_id, V.disbursement_id.in_(keys))
                .order_by(V.block_number, V.log_index)
            ):
                votes.setdefault(vote.disbursement_id, []).append(vote)
        blocks = {row.block_number for row in rows} | {v.block_number for vs in votes.values() for v in vs}
        times = (
            dict(
                connection.execute(
                    select(im.Block.number, im.Block.timestamp).where(
                        im.Block.deployment_id == mirror.deployment_id, im.Block.number.in_(sorted(blocks))
                    )
                ).all()
            )
            if blocks
            else {}
        )
        named_by: dict[str, str] = {}
        labelled = {row.charity_id for row in rows if labels_for(row.charity_id)}
        if labelled:
            named_by = {
                account: label
                for account, label in connection.execute(
                    select(ApproverAccount.account, ApproverAccount.label).where(
                        ApproverAccount.deployment_id == mirror.deployment_id,
                        ApproverAccount.charity_id.in_(sorted(labelled)),
                    )
                )
            }
    answers = []
    for row in rows:
        p = row
        answers.append(
            Proposal(
                id=ids.from_bytes32(p.disbursement_id),
                campaign_id=ids.from_bytes32(p.campaign_id),
                amount=p.amount,
                recipient=p.recipient,
                purpose=p.purpose,
                proposer=p.proposer,
                proposed_at=iso(times.get(p.block_number)),
                rule_version=p.rule_version,
                threshold=p.threshold,
                approvers=row.approver_count,
                approvals=p.approvals,
                status=status_of(p.state, p.approvals, p.threshold, p.expires_at, now),  # type: ignore[arg-type]
                expires_at=iso(p.expires_at) or "",
                votes=[
                    Vote(
                        voter=v.voter,
                        label=named_by.get(v.voter),
                        vote=v.vote,
                        reason=v.reason,
                        at=iso(times.get(v.block_number)),
                        tx_hash=v.tx_hash,
                        block_number=v.block_number,
                    )
                    for v in votes.get(p.disbursement_id, [])
                ],
                executor=p.executor,
                executed_tx=p.executed_tx,
                tx_hash=p.tx_hash,
            )
        )
    return answers
