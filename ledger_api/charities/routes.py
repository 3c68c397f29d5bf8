"""Charities: registered by an admin; each gets its own operator account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from ledger_api.charities import reads, service
from ledger_api.charities.schemas import CharityCreate
from ledger_api.core import writes
from ledger_api.core.deps import RuntimeDep, WriteRuntimeDep
from ledger_api.core.pages import CursorParam, Limit
from ledger_api.core.schemas import CharityId
from ledger_api.core.security import AdminPrincipal

router = APIRouter(prefix="/v1/charities", tags=["charities"])


@router.post("", status_code=201)
def register_charity(body: CharityCreate, runtime: WriteRuntimeDep, _: AdminPrincipal) -> JSONResponse:
    """Register a charity on chain, create its operator account in the keystore, grant
    it the operator role and (on development chains) fund it with gas."""
    created, states = service.register(runtime, body.name, body.metadata_hash)
    return writes.answer(created, states, True)


@router.get("")
def list_charities(runtime: RuntimeDep, limit: Limit = 50, cursor: CursorParam = None) -> JSONResponse:
    """Charities in the order they were registered, with totals per currency (public)."""
    return JSONResponse(reads.list_charities(runtime, limit, cursor))


@router.get("/{charity_id}")
def get_charity(charity_id: Annotated[CharityId, Path()], runtime: RuntimeDep) -> JSONResponse:
    """A charity, its operator accounts, campaigns and totals per currency (public)."""
    return JSONResponse(reads.get_charity(runtime, charity_id))
