"""Charities: registered by an admin; each gets its own operator account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from ledger_api.charities import reads, service
from ledger_api.charities.schemas import Charity, CharityCreate, CharityRegistered, CharitySummary
from ledger_api.core.errors import READ_ERRORS, InvalidRequest, problems
from ledger_api.core.pages import CursorParam, Limit, Page
from ledger_api.core.schemas import CharityId
from ledger_api.core.security import AdminPrincipal
from ledger_api.mirror.gateway import MirrorDep
from ledger_api.transactions.schemas import write_responses
from ledger_api.transactions.service import WritesDep, answer

router = APIRouter(prefix="/v1/charities", tags=["charities"])


@router.post(
    "", status_code=201, response_model=CharityRegistered, responses=write_responses(CharityRegistered)
)
def register_charity(body: CharityCreate, writes: WritesDep, _: AdminPrincipal) -> JSONResponse:
    """Register a charity on chain, create its operator account in the keystore, grant
    it the operator role and (on development chains) fund it with gas."""
    created, states = service.register(writes, body.name, body.metadata_hash)
    return answer(created, states, True)


@router.get("", response_model_exclude_unset=True, responses=problems(InvalidRequest))
def list_charities(mirror: MirrorDep, limit: Limit = 50, cursor: CursorParam = None) -> Page[CharitySummary]:
    """Charities in the order they were registered, with totals per currency (public)."""
    return reads.list_charities(mirror, limit, cursor)


@router.get("/{charity_id}", response_model_exclude_unset=True, responses=problems(*READ_ERRORS))
def get_charity(
    charity_id: Annotated[CharityId, Path(description="The charity's ID (CH-...)")], mirror: MirrorDep
) -> Charity:
    """A charity, its operator accounts, campaigns and totals per currency (public)."""
    return reads.get_charity(mirror, charity_id)
