"""A disbursement as the public sees it: what was paid, to whom, for what, from which
donations, and the evidence anchored for it; every item with its chain reference."""

from __future__ import annotations

from sqlalchemy import select

from ledger_api.core import ids, reference
from ledger_api.core.answers import Named
from ledger_api.core.errors import InvalidRequest, NotFound
from ledger_api.core.hexes import unhex
from ledger_api.disbursements.schemas import Disbursement, FundingAllocation
from ledger_api.donations.trace import evidence_of, evidence_view
from ledger_api.evidence.reads import related
from ledger_api.mirror import attribution
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror
from ledger_api.mirror.proofs import block_info, chain_view, proof
from ledger_api.recipients.reads import receipt_views


def funding(mirror: Mirror, disbursement_id: str) -> Disbursement:
    disbursement_hex = ids.to_hex(disbursement_id, "disbursement")
    B, A, C = im.Disbursement, im.Allocation, im.Campaign
    dep = mirror.deployment_id
    with mirror.engine.connect() as connection:
        row = connection.execute(
            select(B).where(B.deployment_id == dep, B.disbursement_id == disbursement_hex)
        ).one_or_none()
        if row is None:
            raise NotFound("disbursement not found (or not mirrored yet)")
        campaign = connection.execute(
            select(C.campaign_id, C.name, C.currency, C.charity_id).where(
                C.deployment_id == dep, C.campaign_id == row.campaign_id
            )
        ).one()
        allocations = connection.execute(
            select(A)
            .where(A.deployment_id == dep, A.disbursement_id == disbursement_hex)
            .order_by(A.log_index)
        ).all()
        anchored = evidence_of(mirror, connection, [disbursement_hex])
        evidence = anchored.rows.get(disbursement_hex, [])
        rel = related(mirror, connection, anchored.hashes(), described=anchored.files)
        view = chain_view(mirror, connection)
        numbers = (
            {row.block_number}
            | {a.block_number for a in allocations}
            | {e.block_number for e in evidence}
            | rel.blocks()
        )
        blocks = anchored.blocks | block_info(mirror, connection, numbers - anchored.blocks.keys())
        signer = attribution.one(connection, dep, campaign.charity_id, row.operator)
        receipt = receipt_views(mirror, connection, [disbursement_hex]).get(disbursement_hex)
    return Disbursement(
        id=ids.from_bytes32(row.disbursement_id),
        amount=row.amount,
        currency=campaign.currency,
        recipient=row.recipient,
        purpose=row.purpose,
        campaign=Named(id=ids.from_bytes32(campaign.campaign_id), name=campaign.name),
        charity_id=ids.from_bytes32(campaign.charity_id),
        proof=proof(view, blocks, row),
        signed_by=signer,
        funded_by=[
            FundingAllocation(
                donation_id=ids.from_bytes32(a.donation_id), amount=a.amount, proof=proof(view, blocks, a)
            )
            for a in allocations
        ],
        evidence=[evidence_view(mirror, view, blocks, e, rel) for e in evidence],
        receipt=receipt,
    )


def recipient_matches(mirror: Mirror, disbursement_id: str, details: str, secret: str) -> bool:
    """Whether `private:0x` keccak256(secret || details), the details normalised as when
    the disbursement was recorded, is the disbursement's on-chain recipient; 422 when its
    recipient is public (there is nothing to prove)."""
    disbursement_hex = ids.to_hex(disbursement_id, "disbursement")
    B = im.Disbursement
    with mirror.engine.connect() as connection:
        onchain = connection.execute(
            select(B.recipient).where(
                B.deployment_id == mirror.deployment_id, B.disbursement_id == disbursement_hex
            )
        ).scalar_one_or_none()
    if onchain is None:
        raise NotFound("disbursement not found (or not mirrored yet)")
    if not reference.is_private(onchain):
        raise InvalidRequest("this disbursement's recipient is named in public, not a private person")
    return reference.private_recipient(unhex(secret), details) == onchain
