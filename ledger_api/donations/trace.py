"""The donor's trace: one donation, where every part of it went, and the proof of each
step. Read from the SQL mirror only; nothing here is personal (the donor reference is
never stored, and the donor commitment is not shown: ownership is checked separately)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, select

from ledger_api.core import documents, ids
from ledger_api.core.answers import MirrorPosition, Named, Proof
from ledger_api.core.errors import NotFound
from ledger_api.core.hexes import hex0x, text_of, unhex
from ledger_api.core.reference import commitment
from ledger_api.donations.hops import approvals_of, hops
from ledger_api.donations.schemas import (
    DonationTrace,
    TraceAllocation,
    TraceDisbursement,
    TraceRefund,
)
from ledger_api.evidence.reads import Related, copy_link, related, withdrawal
from ledger_api.evidence.schemas import EvidenceView
from ledger_api.mirror import attribution
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror
from ledger_api.mirror.proofs import ChainView, block_info, chain_view, proof
from ledger_api.recipients.reads import receipt_views


def channel_name(hex_value: str) -> str:
    return text_of(hex_value)


def evidence_of(
    mirror: Mirror, connection: Connection, disbursement_hexes: list[str]
) -> dict[str, list[Any]]:
    if not disbursement_hexes:
        return {}
    E = im.Evidence
    rows = connection.execute(
        select(E.disbursement_id, E.document_hash, E.block_number, E.tx_hash, E.log_index)
        .where(E.deployment_id == mirror.deployment_id, E.disbursement_id.in_(disbursement_hexes))
        .order_by(E.block_number, E.log_index)
    ).all()
    out: dict[str, list[Any]] = {}
    for row in rows:
        out.setdefault(row.disbursement_id, []).append(row)
    return out


def evidence_view(
    mirror: Mirror, view: ChainView, blocks: dict[int, tuple[str, int]], row: Any, rel: Related
) -> EvidenceView:
    """An anchored document as the public sees it: a link to it when it may be read, its
    name and type when it is public, its redacted copies or its original, its withdrawal."""
    sha = row.document_hash[2:]
    described = rel.files.get(sha)
    withdrawn = [
        w for w in rel.withdrawn.get(row.document_hash, []) if w.disbursement_id == row.disbursement_id
    ]
    restricted = described is not None and described.visibility == documents.RESTRICTED
    stored = (
        not withdrawn
        and not restricted
        and documents.public_path(mirror.settings.evidence_path, sha).is_file()
    )
    original = rel.original.get(row.document_hash)
    return EvidenceView(
        sha256=sha,
        document=f"/v1/evidence/{sha}" if stored else None,
        visibility=described.visibility if described is not None else None,
        name=described.filename if described is not None and not restricted else None,
        media_type=described.media_type if described is not None else None,
        redacted_copy_of=copy_link(view, blocks, original) if original is not None else None,
        redacted_copies=[copy_link(view, blocks, link) for link in rel.copies.get(row.document_hash, [])],
        withdrawn=withdrawal(view, blocks, withdrawn[0]) if withdrawn else None,
        proof=proof(view, blocks, row),
    )


def trace(mirror: Mirror, donation_id: str, depth: int = 0) -> DonationTrace:
    """The donation's trace; with depth 1..5, also its money followed through grants to
    other campaigns on the ledger, hop by hop (donations/hops.py)."""
    donation_hex = ids.to_hex(donation_id, "donation")
    D, C, A, B, R, CH = im.Donation, im.Campaign, im.Allocation, im.Disbursement, im.Refund, im.Charity
    dep = mirror.deployment_id
    with mirror.engine.connect() as connection:
        # The donation with its campaign, its charity and who signed it, in one round trip.
        row = connection.execute(
            select(
                D,
                C.name.label("campaign_name"),
                C.currency,
                C.charity_id,
                CH.name.label("charity_name"),
                im.Operator.held_by_charity.label("operator_held"),
            )
            .join(C, (C.deployment_id == D.deployment_id) & (C.campaign_id == D.campaign_id))
            .join(CH, (CH.deployment_id == C.deployment_id) & (CH.charity_id == C.charity_id))
            .outerjoin(im.Operator, attribution.operator_of(D, C.charity_id))
            .where(D.deployment_id == dep, D.donation_id == donation_hex)
        ).one_or_none()
        if row is None:
            raise NotFound("donation not found (or not mirrored yet)")
        donation = row
        campaign = SimpleNamespace(campaign_id=row.campaign_id, name=row.campaign_name, currency=row.currency)
        charity = SimpleNamespace(charity_id=row.charity_id, name=row.charity_name)
        allocations = connection.execute(
            select(
                A.amount,
                A.block_number,
                A.tx_hash,
                A.log_index,
                B.disbursement_id,
                B.amount.label("disbursement_amount"),
                B.recipient,
                B.purpose,
                B.block_number.label("d_block"),
                B.tx_hash.label("d_tx"),
                B.log_index.label("d_log"),
            )
            .join(B, (B.deployment_id == A.deployment_id) & (B.disbursement_id == A.disbursement_id))
            .where(A.deployment_id == dep, A.donation_id == donation_hex)
            .order_by(A.block_number, A.log_index)
        ).all()
        refunds = connection.execute(
            select(R)
            .where(R.deployment_id == dep, R.donation_id == donation_hex)
            .order_by(R.block_number, R.log_index)
        ).all()
        evidence = evidence_of(mirror, connection, [a.disbursement_id for a in allocations])
        rel = related(mirror, connection, {e.document_hash for rows in evidence.values() for e in rows})
        numbers = {
            donation.block_number,
            *(a.block_number for a in allocations),
            *(a.d_block for a in allocations),
        }
        numbers |= {r.block_number for r in refunds} | {
            e.block_number for rows in evidence.values() for e in rows
        }
        numbers |= rel.blocks()
        view = chain_view(mirror, connection)
        blocks = block_info(mirror, connection, numbers)
        signer = attribution.held_by(row.operator_held) if row.operator_held is not None else None
        own_approvals = approvals_of(mirror, connection, view, [a.disbursement_id for a in allocations])
        followed = hops(mirror, connection, view, donation, depth) if depth > 0 else None
        if followed:
            # Each onward payment with what the donor needs to judge it: its evidence, who
            # approved it, what its recipient confirmed.
            onward = [ids.to_hex(d.id, "disbursement") for hop in followed for d in hop.disbursements]
            hop_evidence = evidence_of(mirror, connection, onward)
            hop_rel = related(
                mirror, connection, {e.document_hash for rows in hop_evidence.values() for e in rows}
            )
            hop_blocks = block_info(
                mirror, connection, {e.block_number for rows in hop_evidence.values() for e in rows}
            )
            hop_receipts = receipt_views(mirror, connection, onward)
            hop_approvals = approvals_of(mirror, connection, view, onward)
            for hop in followed:
                for d in hop.disbursements:
                    key = ids.to_hex(d.id, "disbursement")
                    d.evidence = [
                        evidence_view(mirror, view, hop_blocks, e, hop_rel) for e in hop_evidence.get(key, [])
                    ]
                    d.receipt = hop_receipts.get(key)
                    d.approval = hop_approvals.get(key)
        receipts = receipt_views(mirror, connection, [a.disbursement_id for a in allocations])

    def disbursement_proof(a: Any) -> Proof:
        return proof(view, blocks, SimpleNamespace(block_number=a.d_block, tx_hash=a.d_tx, log_index=a.d_log))

    remaining = donation.amount - donation.allocated - donation.refunded
    return DonationTrace(
        id=ids.from_bytes32(donation.donation_id),
        amount=donation.amount,
        currency=campaign.currency,
        channel=channel_name(donation.channel),
        campaign=Named(id=ids.from_bytes32(campaign.campaign_id), name=campaign.name),
        charity=Named(id=ids.from_bytes32(charity.charity_id), name=charity.name),
        proof=proof(view, blocks, donation),
        signed_by=signer,
        allocated=donation.allocated,
        refunded=donation.refunded,
        remaining=remaining,
        allocations=[
            TraceAllocation(
                amount=a.amount,
                proof=proof(view, blocks, a),
                disbursement=TraceDisbursement(
                    id=ids.from_bytes32(a.disbursement_id),
                    amount=a.disbursement_amount,
                    recipient=a.recipient,
                    purpose=a.purpose,
                    proof=disbursement_proof(a),
                    evidence=[
                        evidence_view(mirror, view, blocks, e, rel)
                        for e in evidence.get(a.disbursement_id, [])
                    ],
                    receipt=receipts.get(a.disbursement_id),
                    approval=own_approvals.get(a.disbursement_id),
                ),
            )
            for a in allocations
        ],
        refunds=[
            TraceRefund(
                id=ids.from_bytes32(r.refund_id),
                amount=r.amount,
                reason=r.reason,
                proof=proof(view, blocks, r),
            )
            for r in refunds
        ],
        **({"hops": followed} if followed is not None else {}),
        mirror=MirrorPosition(indexed_block=view.indexed_block, finalized_block=view.finalized_block),
    )


def owns(mirror: Mirror, donation_id: str, receipt_secret: str, donor_reference: str) -> bool:
    """Whether keccak256(secret || reference), the reference normalised as when it was
    recorded (core.reference), is the donation's on-chain commitment."""
    donation_hex = ids.to_hex(donation_id, "donation")
    with mirror.engine.connect() as connection:
        onchain = connection.execute(
            select(im.Donation.donor_commitment).where(
                im.Donation.deployment_id == mirror.deployment_id, im.Donation.donation_id == donation_hex
            )
        ).scalar_one_or_none()
    if onchain is None:
        raise NotFound("donation not found (or not mirrored yet)")
    return hex0x(commitment(unhex(receipt_secret), donor_reference)) == onchain
