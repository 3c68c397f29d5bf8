"""Disbursements: what the charity paid out, from which donations, with evidence."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ledger_api.core import documents
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
    EvidenceWithdrawal,
    EvidenceWithdrawn,
    RecipientProof,
    RecipientProofResult,
    RedactedCopyLinked,
)
from ledger_api.mirror.gateway import MirrorDep, PublicMirrorDep, primary_if_missing
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
                        },
                        "visibility": {
                            "type": "string",
                            "enum": list(documents.VISIBILITIES),
                            "default": "public",
                            "description": "`restricted`: the documents name people (beneficiaries, ID"
                            " numbers): sealed at rest, served only to the charity and its auditors;"
                            " the hash is anchored all the same.",
                        },
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
        visibility = form.get("visibility", "public")
        if visibility not in documents.VISIBILITIES:
            raise InvalidRequest("`visibility` is `public` or `restricted`")
        created, states = await run_in_threadpool(
            service.anchor,
            writes,
            target,
            [u for u in uploads if isinstance(u, UploadFile)],
            wait,
            str(visibility),
        )
    finally:
        await form.close()
    return answer(created, states, wait)


@router.get("/{disbursement_id}", response_model_exclude_unset=True, responses=problems(*READ_ERRORS))
@primary_if_missing
def get_disbursement(disbursement_id: DisbursementPath, mirror: PublicMirrorDep) -> Disbursement:
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


Sha256Path = Annotated[
    str, Path(pattern=r"^[0-9a-f]{64}$", description="The document's SHA-256, lower-case hex")
]


@router.post(
    "/{disbursement_id}/evidence/{sha256}/withdrawal",
    status_code=201,
    response_model=EvidenceWithdrawn,
    responses=write_responses(EvidenceWithdrawn),
)
def withdraw_evidence(
    disbursement_id: DisbursementPath,
    sha256: Sha256Path,
    body: EvidenceWithdrawal,
    writes: WritesDep,
    principal: WriterPrincipal,
    wait: WaitParam = True,
) -> JSONResponse:
    """Withdraw a document (personal data published by mistake, a PIPL erasure request):
    its bytes are deleted here and the withdrawal, with its reason, is recorded on chain.
    The anchor stays: the public still sees that a document existed and when. The reason
    is public: write why, not who."""
    target = service.evidence_target(writes, principal, disbursement_id)
    created, states = service.withdraw(writes, target, sha256, body.reason, wait)
    return answer(created, states, wait)


@router.post(
    "/{disbursement_id}/evidence/{sha256}/redacted-copy",
    status_code=201,
    max_body_size=service.MAX_DOCUMENT + 1024 * 1024,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
    response_model=RedactedCopyLinked,
    responses=write_responses(RedactedCopyLinked),
)
async def upload_redacted_copy(
    disbursement_id: DisbursementPath,
    sha256: Sha256Path,
    request: Request,
    writes: WritesDep,
    principal: WriterPrincipal,
    wait: WaitParam = True,
) -> JSONResponse:
    """Publish a redacted copy of a document anchored on the disbursement (names and ID
    numbers blacked out): the copy is public, and its link to the original is recorded on
    chain, so anyone sees the copy and an auditor can confirm it belongs to the original."""
    target = await run_in_threadpool(service.evidence_target, writes, principal, disbursement_id)
    try:
        form = await request.form(max_files=1, max_fields=1)
    except HTTPException as exc:
        raise InvalidRequest(f"upload the copy as the multipart field `file` ({exc.detail})") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("upload the copy as the multipart file field `file`")
        created, states = await run_in_threadpool(service.link_copy, writes, target, sha256, upload, wait)
    finally:
        await form.close()
    return answer(created, states, wait)
