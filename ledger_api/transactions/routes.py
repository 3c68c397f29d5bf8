"""The state of a submitted write."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from ledger_api.core.errors import AUTH_ERRORS, READ_ERRORS, ChainUnavailable, NotFound, problems
from ledger_api.core.security import CurrentPrincipal, SignerPrincipal
from ledger_api.transactions import relay
from ledger_api.transactions.schemas import (
    RELAY_BODY,
    RelayAnswer,
    RelayRequest,
    Transaction,
    write_responses,
)
from ledger_api.transactions.service import WaitParam, WriterDep, answer

router = APIRouter(prefix="/v1/transactions", tags=["transactions"])


@router.get(
    "/{transaction_id}",
    response_model_exclude_unset=True,
    responses=problems(*AUTH_ERRORS, *READ_ERRORS, ChainUnavailable),
)
def get_transaction(
    transaction_id: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")],
    writes: WriterDep,
    principal: CurrentPrincipal,
) -> Transaction:
    """queued (signed, not yet sent), sent, mined or failed, with the tx hash, block and
    the decoded revert reason."""
    found = writes.writer.find(transaction_id)
    if found is None:
        raise NotFound("transaction not found")
    state, charity_hex = found
    # A charity's transaction, for keys that may read that charity; one of no charity (a
    # registration), for admin and unlimited auditor keys.
    approver = principal.role == "approver" and principal.charity_id == charity_hex  # its approvals
    readable = (
        principal.can_read(charity_hex) or approver
        if charity_hex
        else principal.role == "admin" or (principal.role == "auditor" and principal.charities is None)
    )
    if not readable:
        raise NotFound("transaction not found")
    view = writes.transaction_view(state)
    return Transaction.model_validate(
        {**view, "records": state.records, "nonce": state.nonce, "signer": state.signer}
    )


relay_router = APIRouter(prefix="/v1/relay", tags=["relay"])


@relay_router.post(
    "",
    status_code=201,
    max_body_size=RELAY_BODY,
    response_model=RelayAnswer,
    responses=write_responses(RelayAnswer),
)
def relay_signed_calls(
    body: RelayRequest, writes: WriterDep, principal: SignerPrincipal, wait: WaitParam = True
) -> JSONResponse:
    """Relay calls a self-custody charity signed with its own key (from a write asked with
    `?mode=prepare`): each signature is checked off-chain (it must be the named operator's,
    of a charity this API key writes for; the platform's or another charity's key is a 403),
    its deadline and nonce too (expired: 422; already used or in flight: 409), then
    `execute` is simulated (a would-be revert is a 409 naming the contract's error) and sent
    from the platform's relayer account, which pays the gas. Answers as every write does:
    201 once mined and mirrored."""
    calls = [(c.message.model_dump(), c.signature) for c in body.signed_calls]
    checked, states = relay.relay(writes, principal, calls, wait)
    body_out: dict[str, Any] = {
        "records": [c.step.records for c in checked],
        "transactions": [writes.transaction_view(s) for s in states],
    }
    executions = relay.execute_approved(writes, checked, states, wait)
    if executions:
        body_out["executions"] = [writes.transaction_view(e) for e in executions]
    return answer(body_out, [*states, *executions], wait)
