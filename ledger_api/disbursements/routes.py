"""Disbursements: what the charity paid out, from which donations, with evidence."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Path, UploadFile
from fastapi.responses import JSONResponse

from ledger_api.core import writes
from ledger_api.core.deps import RuntimeDep, WaitParam, WriteRuntimeDep
from ledger_api.core.schemas import DisbursementId
from ledger_api.core.security import WriterPrincipal
from ledger_api.disbursements import service
from ledger_api.disbursements.reads import funding
from ledger_api.disbursements.schemas import DisbursementCreate

router = APIRouter(prefix="/v1/disbursements", tags=["disbursements"])
DisbursementPath = Annotated[DisbursementId, Path(description="The disbursement's ID (DB-...)")]


@router.post("", status_code=201)
def record_disbursement(
    body: DisbursementCreate, runtime: WriteRuntimeDep, principal: WriterPrincipal, wait: WaitParam = True
) -> JSONResponse:
    """Record a disbursement. Without `allocations`, the service allocates it first in,
    first out over the campaign's donations that still have a balance."""
    created, state = service.record(runtime, principal, body, wait)
    return writes.answer(created, [state], wait)


@router.post("/{disbursement_id}/evidence", status_code=201)
def upload_evidence(
    disbursement_id: DisbursementPath,
    runtime: WriteRuntimeDep,
    principal: WriterPrincipal,
    files: Annotated[
        list[UploadFile], File(description="One to ten documents (invoices, receipts, photos).")
    ],
    wait: WaitParam = True,
) -> JSONResponse:
    """Store documents by their SHA-256 and anchor each hash to the disbursement on chain."""
    created, states = service.anchor(runtime, principal, disbursement_id, files, wait)
    return writes.answer(created, states, wait)


@router.get("/{disbursement_id}")
def get_disbursement(disbursement_id: DisbursementPath, runtime: RuntimeDep) -> JSONResponse:
    """A disbursement (public), with the donations that funded it and its evidence."""
    return JSONResponse(funding(runtime, disbursement_id))
