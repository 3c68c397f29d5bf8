"""Following a donation through grants to other campaigns on the ledger, hop by hop.

Hop 1 is the donation's own disbursements. When one of them is a grant to another
campaign on the ledger, the receiving charity recorded it as one or more donations there
(grant_donations); their allocations are hop 2's disbursements, and so on, to `depth`.

The donor's share of everything is in whole minor units, by largest remainder
(core/shares.py), so it always adds up exactly:
- of a donation the donor holds `s` of, each onward allocation takes its proportion of
  `s`, and the part neither allocated (not spent yet, or refunded) keeps the rest;
- of a grant the donor holds `p` of, each donation recording it takes its proportion of
  `p`, and the part the receiver has not recorded yet keeps the rest.
So at every hop: entered = sum of the disbursements' shares + unspent, and the next hop's
entered = the grants' shares - not recorded.

A disbursement is followed once (a visited set) and never past `depth` (at most
MAX_DEPTH), so a grant cycle (A -> B -> A) cannot loop. Read from the mirror only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from ledger_api.core import ids
from ledger_api.core.answers import Named
from ledger_api.core.shares import largest_remainder
from ledger_api.donations.schemas import ApprovalVote, HopDisbursement, HopDonation, PayoutApproval, TraceHop
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror
from ledger_api.mirror.proofs import ChainView, block_info, proof

MAX_DEPTH = 5


@dataclass
class _Hop:
    donations: dict[str, int] = field(default_factory=dict)  # donation hex -> the donor's share
    not_recorded: int = 0


def _split(amount: int, parts: list[int], whole: int) -> tuple[list[int], int]:
    """`amount` in proportion to `parts` of `whole` (the rest of `whole` a last part):
    the shares of `parts`, and what the rest keeps."""
    rest = whole - sum(parts)
    if amount == 0 or whole <= 0:
        return [0] * len(parts), amount
    shares = largest_remainder(amount, [*parts, max(rest, 0)])
    return shares[:-1], shares[-1]


def hops(mirror: Mirror, connection: Connection, view: ChainView, root: Any, depth: int) -> list[TraceHop]:
    """The hops of the donation `root` (a mirrored donation row), 1..depth."""
    dep = mirror.deployment_id
    D, A, B, C, CH, G, GD = (
        im.Donation,
        im.Allocation,
        im.Disbursement,
        im.Campaign,
        im.Charity,
        im.Grant,
        im.GrantDonation,
    )
    names: dict[str, tuple[Named, Named]] = {}

    def named(campaign_hex: str) -> tuple[Named, Named]:
        if campaign_hex not in names:
            row = connection.execute(
                select(C.name, C.charity_id, CH.name.label("charity_name"))
                .join(CH, (CH.deployment_id == C.deployment_id) & (CH.charity_id == C.charity_id))
                .where(C.deployment_id == dep, C.campaign_id == campaign_hex)
            ).one()
            names[campaign_hex] = (
                Named(id=ids.from_bytes32(campaign_hex), name=row.name),
                Named(id=ids.from_bytes32(row.charity_id), name=row.charity_name),
            )
        return names[campaign_hex]

    visited: set[str] = set()
    frontier = _Hop(donations={root.donation_id: int(root.amount)})
    out: list[TraceHop] = []
    rows_for_proofs: list[tuple[HopDisbursement, Any]] = []
    for level in range(1, depth + 1):
        if not frontier.donations:
            break
        donation_rows = {
            r.donation_id: r
            for r in connection.execute(
                select(D.donation_id, D.campaign_id, D.amount, GD.source_disbursement_id)
                .outerjoin(GD, (GD.deployment_id == D.deployment_id) & (GD.donation_id == D.donation_id))
                .where(D.deployment_id == dep, D.donation_id.in_(sorted(frontier.donations)))
            )
        }
        allocations: dict[str, list[Any]] = {}
        for a in connection.execute(
            select(A.donation_id, A.disbursement_id, A.amount)
            .where(A.deployment_id == dep, A.donation_id.in_(sorted(frontier.donations)))
            .order_by(A.block_number, A.log_index)
        ):
            allocations.setdefault(a.donation_id, []).append(a)
        reached: dict[str, int] = {}
        unspent = 0
        donations = []
        for donation_hex, share in frontier.donations.items():
            d = donation_rows[donation_hex]
            campaign, charity = named(d.campaign_id)
            donations.append(
                HopDonation(
                    id=ids.from_bytes32(donation_hex),
                    campaign=campaign,
                    charity=charity,
                    amount=d.amount,
                    donor_share=share,
                    source_disbursement_id=ids.from_bytes32(d.source_disbursement_id)
                    if d.source_disbursement_id
                    else None,
                )
            )
            onward = [a for a in allocations.get(donation_hex, []) if a.disbursement_id not in visited]
            shares, rest = _split(share, [a.amount for a in onward], int(d.amount))
            unspent += rest
            for a, part in zip(onward, shares, strict=True):
                reached[a.disbursement_id] = reached.get(a.disbursement_id, 0) + part
        visited |= set(reached)
        rows = {
            r.disbursement_id: r
            for r in connection.execute(
                select(B, G.recipient_campaign_id)
                .outerjoin(G, (G.deployment_id == B.deployment_id) & (G.disbursement_id == B.disbursement_id))
                .where(B.deployment_id == dep, B.disbursement_id.in_(sorted(reached)))
                .order_by(B.block_number, B.log_index)
            )
        }
        disbursements = []
        following = _Hop()
        for disbursement_hex, row in rows.items():
            share = reached[disbursement_hex]
            campaign, charity = named(row.campaign_id)
            item = HopDisbursement(
                id=ids.from_bytes32(disbursement_hex),
                campaign=campaign,
                charity=charity,
                amount=row.amount,
                recipient=row.recipient,
                purpose=row.purpose,
                donor_share=share,
                recipient_campaign=named(row.recipient_campaign_id)[0] if row.recipient_campaign_id else None,
                proof=None,
            )
            disbursements.append(item)
            rows_for_proofs.append((item, row))
            if row.recipient_campaign_id is None:
                continue
            linked = connection.execute(
                select(GD.donation_id, GD.amount)
                .where(GD.deployment_id == dep, GD.source_disbursement_id == disbursement_hex)
                .order_by(GD.block_number, GD.log_index)
            ).all()
            parts, rest = _split(share, [g.amount for g in linked], int(row.amount))
            following.not_recorded += rest
            for g, part in zip(linked, parts, strict=True):
                following.donations[g.donation_id] = following.donations.get(g.donation_id, 0) + part
        out.append(
            TraceHop(
                depth=level,
                entered=sum(frontier.donations.values()),
                not_recorded=frontier.not_recorded,
                donations=donations,
                disbursements=disbursements,
                unspent=unspent,
            )
        )
        frontier = following
    blocks = block_info(mirror, connection, {row.block_number for _, row in rows_for_proofs})
    for item, row in rows_for_proofs:
        item.proof = proof(view, blocks, row)
    return out


def approvals_of(
    mirror: Mirror, connection: Connection, view: ChainView, disbursement_hexes: list[str]
) -> dict[str, PayoutApproval]:
    """Who proposed and approved each of these disbursements that was paid out under an
    approval rule (an executed proposal), from the mirror's proposals and votes."""
    if not disbursement_hexes:
        return {}
    P, V = im.Proposal, im.ProposalVote
    dep = mirror.deployment_id
    proposals = connection.execute(
        select(P).where(
            P.deployment_id == dep, P.disbursement_id.in_(disbursement_hexes), P.state == "executed"
        )
    ).all()
    if not proposals:
        return {}
    votes = connection.execute(
        select(V)
        .where(
            V.deployment_id == dep,
            V.disbursement_id.in_([p.disbursement_id for p in proposals]),
            V.vote == "approve",
        )
        .order_by(V.block_number, V.log_index)
    ).all()
    blocks = block_info(mirror, connection, {r.block_number for r in (*proposals, *votes)})
    by_proposal: dict[str, list[ApprovalVote]] = {}
    for v in votes:
        voted = proof(view, blocks, v)
        by_proposal.setdefault(v.disbursement_id, []).append(
            ApprovalVote(account=v.voter, at=voted.recorded_at, proof=voted)
        )
    out = {}
    for p in proposals:
        proposed = proof(view, blocks, p)
        out[p.disbursement_id] = PayoutApproval(
            proposer=p.proposer,
            proposed_at=proposed.recorded_at,
            rule_version=p.rule_version,
            threshold=p.threshold,
            approvals=by_proposal.get(p.disbursement_id, []),
            proof=proposed,
        )
    return out
