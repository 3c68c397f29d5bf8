"""The donor's trace: one donation, where every part of it went, and the proof of each
step. Read from the SQL mirror only; nothing here is personal (the donor reference is
never stored, and the donor commitment is not shown: ownership is checked separately)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, select

from ledger_api.core import documents, ids
from ledger_api.core.answers import MirrorPosition, Named, Proof
from ledger_api.core.errors import NotFound
from ledger_api.core.hexes import hex0x, text_of, unhex
from ledger_api.core.models import EvidenceFile
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
from ledger_api.mirror.proofs import (
    ChainView,
    block_info,
    block_join,
    blocks_of,
    origin_columns,
    position,
    proof,
)
from ledger_api.recipients.reads import receipt_views

# A select of any columns (the builders below read more than Select[Any] says).
Statement = Select[*tuple[Any, ...]]


def channel_name(hex_value: str) -> str:
    return text_of(hex_value)


@dataclass
class Anchored:
    """The documents anchored on some disbursements, read in one query with their blocks
    and the descriptions this service stores of them."""

    rows: dict[str, list[Any]] = field(default_factory=dict)  # disbursement (0x) -> anchors, chain order
    blocks: dict[int, tuple[str, int]] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)  # bare SHA-256 -> description

    def hashes(self) -> set[str]:
        return {e.document_hash for rows in self.rows.values() for e in rows}


def _anchors_statement() -> Statement:
    E, F = im.Evidence, EvidenceFile.__table__
    block, on_block = block_join(E.deployment_id, E.block_number)
    return (
        select(
            E.disbursement_id,
            E.document_hash,
            *origin_columns(E, block),
            F.c.sha256,
            F.c.visibility,
            F.c.filename,
            F.c.media_type,
        )
        .outerjoin(block, on_block)
        .outerjoin(
            F, (F.c.deployment_id == E.deployment_id) & (F.c.sha256 == func.substr(E.document_hash, 3))
        )
        .where(
            E.deployment_id == bindparam("deployment"),
            E.disbursement_id.in_(bindparam("disbursements", expanding=True)),
        )
        .order_by(E.block_number, E.log_index)
    )


def evidence_of(mirror: Mirror, connection: Connection, disbursement_hexes: list[str]) -> Anchored:
    out = Anchored()
    if not disbursement_hexes:
        return out
    rows = connection.execute(
        _ANCHORS, {"deployment": mirror.deployment_id, "disbursements": disbursement_hexes}
    ).all()
    for row in rows:
        out.rows.setdefault(row.disbursement_id, []).append(row)
        if row.sha256 is not None:
            out.files[row.sha256] = row
    out.blocks = blocks_of(rows)
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
    other campaigns on the ledger, hop by hop (donations/hops.py).

    Round trips are what a trace costs (the service waits on each), so every query reads
    its records' blocks with them, and a query is skipped when the rows already read say
    it would find nothing: a donation with nothing allocated (most of them, until the
    charity pays out) or refunded costs one query."""
    donation_hex = ids.to_hex(donation_id, "donation")
    dep = mirror.deployment_id
    with mirror.engine.connect() as connection:
        row = connection.execute(_DONATION, {"deployment": dep, "donation": donation_hex}).one_or_none()
        if row is None:
            raise NotFound("donation not found (or not mirrored yet)")
        donation = row
        campaign = SimpleNamespace(campaign_id=row.campaign_id, name=row.campaign_name, currency=row.currency)
        charity = SimpleNamespace(charity_id=row.charity_id, name=row.charity_name)
        view = position(mirror, row.indexed_block, row.finalized_block)
        blocks = blocks_of([row])
        # Allocation and refund amounts are positive (the contract refuses zero), so the
        # donation's totals say whether there are any.
        keys = {"deployment": dep, "donation": donation_hex}
        allocations = connection.execute(_ALLOCATIONS, keys).all() if donation.allocated > 0 else []
        refunds = connection.execute(_REFUNDS, keys).all() if donation.refunded > 0 else []
        blocks |= blocks_of(allocations)
        blocks |= blocks_of(allocations, "d_block", "d_block_hash", "d_block_time")
        blocks |= blocks_of(refunds)
        evidenced = [a.disbursement_id for a in allocations if a.evidence_count]
        anchored = evidence_of(mirror, connection, evidenced)
        evidence = anchored.rows
        rel = related(mirror, connection, anchored.hashes(), described=anchored.files)
        blocks |= anchored.blocks
        blocks |= block_info(mirror, connection, rel.blocks() - blocks.keys())
        signer = attribution.held_by(row.operator_held) if row.operator_held is not None else None
        own_approvals = approvals_of(
            mirror, connection, view, [a.disbursement_id for a in allocations if a.proposed is not None]
        )
        followed = hops(mirror, connection, view, donation, depth) if depth > 0 else None
        if followed:
            # Each onward payment with what the donor needs to judge it: its evidence, who
            # approved it, what its recipient confirmed.
            onward = [ids.to_hex(d.id, "disbursement") for hop in followed for d in hop.disbursements]
            hop_anchored = evidence_of(mirror, connection, onward)
            hop_rel = related(mirror, connection, hop_anchored.hashes(), described=hop_anchored.files)
            hop_blocks = hop_anchored.blocks | block_info(
                mirror, connection, hop_rel.blocks() - hop_anchored.blocks.keys()
            )
            hop_receipts = receipt_views(mirror, connection, onward, view)
            hop_approvals = approvals_of(mirror, connection, view, onward)
            for hop in followed:
                for d in hop.disbursements:
                    key = ids.to_hex(d.id, "disbursement")
                    d.evidence = [
                        evidence_view(mirror, view, hop_blocks, e, hop_rel)
                        for e in hop_anchored.rows.get(key, [])
                    ]
                    d.receipt = hop_receipts.get(key)
                    d.approval = hop_approvals.get(key)
        named = [a.disbursement_id for a in allocations if a.named_recipient is not None]
        receipts = receipt_views(mirror, connection, named, view) if named else {}

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


def _donation_statement() -> Statement:
    """The donation with its block, campaign, charity, who signed it and the mirror's
    position, in one round trip."""
    D, C, CH = im.Donation, im.Campaign, im.Charity
    block, on_block = block_join(D.deployment_id, D.block_number)
    return (
        select(
            D,
            C.name.label("campaign_name"),
            C.currency,
            C.charity_id,
            CH.name.label("charity_name"),
            im.Operator.held_by_charity.label("operator_held"),
            block.hash.label("block_hash"),
            block.timestamp.label("block_time"),
            im.Cursor.block_number.label("indexed_block"),
            im.Cursor.finalized_block.label("finalized_block"),
        )
        .join(C, (C.deployment_id == D.deployment_id) & (C.campaign_id == D.campaign_id))
        .join(CH, (CH.deployment_id == C.deployment_id) & (CH.charity_id == C.charity_id))
        .outerjoin(im.Operator, attribution.operator_of(D, C.charity_id))
        .outerjoin(block, on_block)
        .outerjoin(im.Cursor, im.Cursor.deployment_id == D.deployment_id)
        .where(D.deployment_id == bindparam("deployment"), D.donation_id == bindparam("donation"))
    )


def _allocations_statement() -> Statement:
    """The donation's allocations with the disbursement each funded, both their blocks, and
    whether that disbursement has evidence, a registered recipient or an executed approval
    (so the trace asks for those only when there are some)."""
    A, B = im.Allocation, im.Disbursement
    NR, P = im.DisbursementRecipient, im.Proposal
    allocation_block, on_allocation_block = block_join(A.deployment_id, A.block_number)
    disbursement_block, on_disbursement_block = block_join(B.deployment_id, B.block_number)
    return (
        select(
            A.amount,
            *origin_columns(A, allocation_block),
            B.disbursement_id,
            B.amount.label("disbursement_amount"),
            B.recipient,
            B.purpose,
            B.block_number.label("d_block"),
            B.tx_hash.label("d_tx"),
            B.log_index.label("d_log"),
            B.evidence_count,
            disbursement_block.hash.label("d_block_hash"),
            disbursement_block.timestamp.label("d_block_time"),
            NR.recipient_id.label("named_recipient"),
            P.disbursement_id.label("proposed"),
        )
        .join(B, (B.deployment_id == A.deployment_id) & (B.disbursement_id == A.disbursement_id))
        .outerjoin(allocation_block, on_allocation_block)
        .outerjoin(disbursement_block, on_disbursement_block)
        .outerjoin(NR, (NR.deployment_id == B.deployment_id) & (NR.disbursement_id == B.disbursement_id))
        .outerjoin(
            P,
            (P.deployment_id == B.deployment_id)
            & (P.disbursement_id == B.disbursement_id)
            & (P.state == "executed"),
        )
        .where(A.deployment_id == bindparam("deployment"), A.donation_id == bindparam("donation"))
        .order_by(A.block_number, A.log_index)
    )


def _refunds_statement() -> Statement:
    R = im.Refund
    block, on_block = block_join(R.deployment_id, R.block_number)
    return (
        select(R, block.hash.label("block_hash"), block.timestamp.label("block_time"))
        .outerjoin(block, on_block)
        .where(R.deployment_id == bindparam("deployment"), R.donation_id == bindparam("donation"))
        .order_by(R.block_number, R.log_index)
    )


# Built once: constructing a statement with its aliases, and its cache key, cost more CPU
# than the database spends answering it (a py-spy profile of the trace lookups).
_DONATION = _donation_statement()
_ALLOCATIONS = _allocations_statement()
_REFUNDS = _refunds_statement()
_ANCHORS = _anchors_statement()


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
