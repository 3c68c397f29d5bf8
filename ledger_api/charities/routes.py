"""Charities: registered by an admin; each gets its own operator account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from ledger_api.charities import reads, service
from ledger_api.charities.schemas import (
    ADDRESS,
    Charity,
    CharityCreate,
    CharityRegistered,
    CharitySummary,
    OperatorChange,
    OperatorChanged,
)
from ledger_api.core.errors import READ_ERRORS, InvalidRequest, problems
from ledger_api.core.pages import CursorParam, Limit, Page
from ledger_api.core.schemas import CharityId
from ledger_api.core.security import AdminPrincipal, WriterPrincipal
from ledger_api.mirror.gateway import MirrorDep, PublicMirrorDep, primary_if_missing
from ledger_api.transactions.schemas import write_responses
from ledger_api.transactions.service import WaitParam, WritesDep, answer

router = APIRouter(prefix="/v1/charities", tags=["charities"])


@router.post(
    "", status_code=201, response_model=CharityRegistered, responses=write_responses(CharityRegistered)
)
def register_charity(body: CharityCreate, writes: WritesDep, _: AdminPrincipal) -> JSONResponse:
    """Register a charity on chain. custody=platform (the default): create its operator
    account in the keystore, grant it the operator role and (on development chains) fund
    it with gas. custody=self: the charity's own `operator` account is its first operator,
    marked on chain as held by the charity; no key is made or stored, and its records are
    written only by calls it signs (`?mode=prepare`, then POST /v1/relay)."""
    created, states = service.register(writes, body.name, body.metadata_hash, body.operator)
    return answer(created, states, True)


CharityPath = Annotated[CharityId, Path(description="The charity's ID (CH-...)")]


@router.post(
    "/{charity_id}/operators",
    status_code=201,
    response_model=OperatorChanged,
    responses=write_responses(OperatorChanged),
)
def add_operator(
    charity_id: CharityPath,
    body: OperatorChange,
    writes: WritesDep,
    principal: WriterPrincipal,
    wait: WaitParam = True,
) -> JSONResponse:
    """Add an operator account. Platform custody: an admin's request, signed by the
    registrar. Self-custody: only the charity itself, by a call an existing operator
    signs (charity key, `?mode=prepare`, then POST /v1/relay); the platform's attempt is
    a 409 naming the contract's `SelfCustodyCharity`. Every change is a public event on
    the charity's page."""
    created, state = service.change_operator(writes, principal, charity_id, body.account, True, wait)
    return answer(created, [state], wait)


@router.delete(
    "/{charity_id}/operators/{account}",
    status_code=201,
    response_model=OperatorChanged,
    responses=write_responses(OperatorChanged),
)
def remove_operator(
    charity_id: CharityPath,
    account: Annotated[str, Path(pattern=ADDRESS, description="The operator account to remove.")],
    writes: WritesDep,
    principal: WriterPrincipal,
    wait: WaitParam = True,
) -> JSONResponse:
    """Remove an operator account, under the same rules as adding one (a self-custody
    charity's last operator cannot be removed: `LastOperator`)."""
    created, state = service.change_operator(writes, principal, charity_id, account, False, wait)
    return answer(created, [state], wait)


@router.get("", response_model_exclude_unset=True, responses=problems(InvalidRequest))
def list_charities(mirror: MirrorDep, limit: Limit = 50, cursor: CursorParam = None) -> Page[CharitySummary]:
    """Charities in the order they were registered, with totals per currency (public)."""
    return reads.list_charities(mirror, limit, cursor)


@router.get("/{charity_id}", response_model_exclude_unset=True, responses=problems(*READ_ERRORS))
@primary_if_missing
def get_charity(
    charity_id: Annotated[CharityId, Path(description="The charity's ID (CH-...)")], mirror: PublicMirrorDep
) -> Charity:
    """A charity, its operator accounts, campaigns and totals per currency (public)."""
    return reads.get_charity(mirror, charity_id)
