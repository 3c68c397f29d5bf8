"""Disbursements: what the charity paid out, from which donations, with evidence."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ledger_api.core.errors import BODY_ERRORS, READ_ERRORS, InvalidRequest, problems
from ledger_api.core.schemas import DisbursementId
from ledger_api.core.security import WriterPrincipal
from ledger_api.disbursements import service
from ledger_api.disbursements.reads import funding, recipient_matches
from ledger_api.disbursements.schemas import (
    Disbursement,
    DisbursementCreate,
    DisbursementRecorded,
    EvidenceAnchored,
    RecipientProof,
    RecipientProofResult,
)
from ledger_api.mirror.gateway import MirrorDep
from ledger_api.transactions.schemas import write_responses
from ledger_api.transactions.service import WaitParam, WritesDep, answer

router = APIRouter(prefix="/v1/disbursements", tags=["disbursements"])
DisbursementPath = Annotated[DisbursementId, Path(description="The disbursement's ID (DB-...)")]


@router.post(
    "", status_code=201, response_model=DisbursementRecorded, responses=write_responses(DisbursementRecorded)
)
def record_disbursement(
    body: DisbursementCreate, writes: WritesDep, principal: WriterPrincipal, wait: WaitParam = True
) -> JSONResponse:
    """Record a disbursement. Without `allocations`, the service allocates it first in,
    first out over the campaign's donations that still have a balance. To a private
    person: `recipient_person: {"reference": "<name and ID number>"}` instead of
    `recipient`; only `private:0x<keccak256(secret || reference)>` goes on chain, the
    answer's `recipient_secret` is for the person, and the details are kept nowhere."""
    created, state = service.record(writes, principal, body, wait)
    return answer(created, [state], wait)


# The body is not a parameter: FastAPI would read (and spool to disk) a multipart body
# before it checks the key. The route reads it itself, once the key and the disbursement
# have been checked; this documents it for OpenAPI.
EVIDENCE_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "minItems": 1,
                            "maxItems": service.MAX_DOCUMENTS,
                            "description": "One to ten documents (invoices, receipts, photos), "
                            f"each at most {service.MAX_DOCUMENT // (1024 * 1024)} MB.",
                        }
                    },
                }
            }
        },
    }
}


@router.post(
    "/{disbursement_id}/evidence",
    status_code=201,
    max_body_size=service.EVIDENCE_BODY,
    openapi_extra=EVIDENCE_FORM,
    response_model=EvidenceAnchored,
    responses=write_responses(EvidenceAnchored),
)
async def upload_evidence(
    disbursement_id: DisbursementPath,
    request: Request,
    writes: WritesDep,
    principal: WriterPrincipal,
    wait: WaitParam = True,
) -> JSONResponse:
    """Store documents by their SHA-256 and anchor each hash to the disbursement on chain.
    Every document is checked, and every anchor simulated, before any is stored or sent."""
    target = await run_in_threadpool(service.evidence_target, writes, principal, disbursement_id)
    try:
        form = await request.form(max_files=service.MAX_DOCUMENTS, max_fields=service.MAX_DOCUMENTS)
    except HTTPException as exc:  # Starlette's answer to a malformed or too large form
        raise InvalidRequest(
            f"upload 1 to {service.MAX_DOCUMENTS} documents as multipart field `files` ({exc.detail})"
        ) from None
    try:
        uploads = [item for name, item in form.multi_items() if name == "files"]
        if not all(isinstance(item, UploadFile) for item in uploads):
            raise InvalidRequest("`files` must be file parts (multipart/form-data with filenames)")
        created, states = await run_in_threadpool(
            service.anchor, writes, target, [u for u in uploads if isinstance(u, UploadFile)], wait
        )
    finally:
        await form.close()
    return answer(created, states, wait)


@router.get("/{disbursement_id}", response_model_exclude_unset=True, responses=problems(*READ_ERRORS))
def get_disbursement(disbursement_id: DisbursementPath, mirror: MirrorDep) -> Disbursement:
    """A disbursement (public), with the donations that funded it and its evidence."""
    return funding(mirror, disbursement_id)


@router.post("/{disbursement_id}/recipient-proof", responses=problems(*READ_ERRORS, *BODY_ERRORS))
def check_recipient(
    disbursement_id: DisbursementPath, body: RecipientProof, mirror: MirrorDep
) -> RecipientProofResult:
    """Whether the details and secret a private recipient holds match the disbursement's
    on-chain commitment (public; neither is stored or logged). The details are normalised
    as when the disbursement was recorded, as a donor reference is."""
    return RecipientProofResult(
        id=disbursement_id, matches=recipient_matches(mirror, disbursement_id, body.reference, body.secret)
    )
