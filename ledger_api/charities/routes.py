"""Charities: registered by an admin; each gets its own operator account."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ledger_api.charities import service
from ledger_api.charities.schemas import CharityCreate
from ledger_api.core.deps import WriteRuntimeDep
from ledger_api.core.security import AdminPrincipal

router = APIRouter(prefix="/v1/charities", tags=["charities"])


@router.post("", status_code=201)
def register_charity(body: CharityCreate, runtime: WriteRuntimeDep, _: AdminPrincipal) -> JSONResponse:
    """Register a charity on chain, create its operator account in the keystore, grant
    it the operator role and (on development chains) fund it with gas."""
    created, _states = service.register(runtime, body.name, body.metadata_hash)
    return JSONResponse(created, status_code=201)
