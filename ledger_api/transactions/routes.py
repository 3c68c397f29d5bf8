"""The state of a submitted write."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from ledger_api.core.errors import NotFound
from ledger_api.core.security import CurrentPrincipal
from ledger_api.transactions.service import WritesDep

router = APIRouter(prefix="/v1/transactions", tags=["transactions"])


@router.get("/{transaction_id}")
def get_transaction(
    transaction_id: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")],
    writes: WritesDep,
    principal: CurrentPrincipal,
) -> JSONResponse:
    """queued (signed, not yet sent), sent, mined or failed, with the tx hash, block and
    the decoded revert reason."""
    found = writes.writer.find(transaction_id)
    if found is None:
        raise NotFound("transaction not found")
    state, charity_hex = found
    if principal.role == "charity" and principal.charity_id != charity_hex:
        raise NotFound("transaction not found")
    view = writes.transaction_view(state)
    view["status"] = "queued" if state.status == "signed" else state.status
    view["records"] = state.records
    view["nonce"] = state.nonce
    view["signer"] = state.signer
    return JSONResponse(view)
