"""Donations: recorded by the charity, singly or in batches; refunds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from ledger_api.core.errors import BODY_ERRORS, READ_ERRORS, problems
from ledger_api.core.schemas import DonationId
from ledger_api.core.security import WriterPrincipal
from ledger_api.donations import service
from ledger_api.donations.hops import MAX_DEPTH
from ledger_api.donations.proof import NodeDep, ProofBundle, ProofTooLarge, bundle
from ledger_api.donations.schemas import (
    BATCH_BODY,
    DonationBatch,
    DonationCreate,
    DonationRecorded,
    DonationsRecorded,
    DonationTrace,
    Ownership,
    OwnershipCheck,
    RefundCreate,
    RefundRecorded,
)
from ledger_api.donations.trace import owns, trace
from ledger_api.mirror.gateway import MirrorDep, PublicMirrorDep, primary_if_missing
from ledger_api.transactions.schemas import write_responses
from ledger_api.transactions.service import WaitParam, WritesDep, answer

router = APIRouter(prefix="/v1/donations", tags=["donations"])
DonationPath = Annotated[DonationId, Path(description="The donation's ID (DN-...)")]


@router.post(
    "", status_code=201, response_model=DonationRecorded, responses=write_responses(DonationRecorded)
)
def record_donation(
    body: DonationCreate, writes: WritesDep, principal: WriterPrincipal, wait: WaitParam = True
) -> JSONResponse:
    """Record one donation. The answer carries the donor's receipt secret: give it to the
    donor with the reference (together they prove the donation is theirs); the service
    keeps neither. The reference is normalised before it is hashed (Unicode NFC, any run
    of whitespace one space, none at the ends), as it is whenever it is checked."""
    donations, states = service.record(writes, principal, [body], wait)
    return answer({**donations[0], "transaction": writes.transaction_view(states[0])}, states, wait)


@router.post(
    "/batch",
    status_code=201,
    max_body_size=BATCH_BODY,
    response_model=DonationsRecorded,
    responses=write_responses(DonationsRecorded),
)
def record_donations(
    body: DonationBatch, writes: WritesDep, principal: WriterPrincipal, wait: WaitParam = True
) -> JSONResponse:
    """Record up to 2,000 donations of one charity: 500 per transaction, all simulated
    before any is sent."""
    donations, states = service.record(writes, principal, body.donations, wait)
    return answer(
        {"donations": donations, "transactions": [writes.transaction_view(s) for s in states]},
        states,
        wait,
    )


@router.post(
    "/{donation_id}/refunds",
    status_code=201,
    response_model=RefundRecorded,
    responses=write_responses(RefundRecorded),
)
def refund_donation(
    donation_id: DonationPath,
    body: RefundCreate,
    writes: WritesDep,
    principal: WriterPrincipal,
    wait: WaitParam = True,
) -> JSONResponse:
    created, state = service.refund(writes, principal, donation_id, body.amount, body.reason, wait)
    return answer(created, [state], wait)


@router.get("/{donation_id}", response_model_exclude_unset=True, responses=problems(*READ_ERRORS))
@primary_if_missing
def trace_donation(
    donation_id: DonationPath,
    mirror: PublicMirrorDep,
    depth: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_DEPTH,
            description="Follow the money this many hops through grants to other campaigns on the"
            " ledger (0, the default: the donation's own disbursements only).",
        ),
    ] = 0,
) -> DonationTrace:
    """The donor's trace (public): the donation, every allocation with the disbursement it
    funded and that disbursement's evidence, refunds, what is not spent yet, and for every
    step its chain reference and whether it is final. With `depth`, `hops` follows grants
    on: the donor's share of each onward payment, in whole units that add up at every hop."""
    return trace(mirror, donation_id, depth)


@router.get(
    "/{donation_id}/proof",
    response_model=ProofBundle,
    response_model_exclude_unset=True,
    responses=problems(*READ_ERRORS, ProofTooLarge),
)
def proof_bundle(
    donation_id: DonationPath, mirror: MirrorDep, node: NodeDep, request: Request
) -> ProofBundle:
    """The donation's proof bundle (public): its trace, and for every step the raw log in
    its receipt, the receipt's Merkle proof against the block header's receiptsRoot, and
    the RLP block header (keccak-256 of it is the block hash), with the ABI fragments, the
    contract and the chain id: enough to check the trace offline against one trusted block
    hash per block (`ledger verify DN-... --bundle FILE`). At most 64 blocks."""
    return bundle(mirror, node, donation_id, mirror.settings.public_url or str(request.base_url))


@router.post("/{donation_id}/ownership", responses=problems(*READ_ERRORS, *BODY_ERRORS))
def check_ownership(donation_id: DonationPath, body: OwnershipCheck, mirror: MirrorDep) -> Ownership:
    """Whether a receipt secret and donor reference match the donation's on-chain
    commitment keccak256(secret || reference) (public; neither is stored or logged).
    The reference is normalised as when the donation was recorded: Unicode NFC, any run
    of whitespace one space, none at the ends; case, punctuation and every other character
    count. One of spaces alone, or with a control character, is a 422."""
    return Ownership(
        id=donation_id, matches=owns(mirror, donation_id, body.receipt_secret, body.donor_reference)
    )
