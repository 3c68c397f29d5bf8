"""The state of a submitted write."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ledger_api.core.errors import AUTH_ERRORS, READ_ERRORS, ChainUnavailable, NotFound, problems
from ledger_api.core.security import CurrentPrincipal
from ledger_api.transactions.schemas import Transaction
from ledger_api.transactions.service import WritesDep

router = APIRouter(prefix="/v1/transactions", tags=["transactions"])


@router.get(
    "/{transaction_id}",
    response_model_exclude_unset=True,
    responses=problems(*AUTH_ERRORS, *READ_ERRORS, ChainUnavailable),
)
def get_transaction(
    transaction_id: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")],
    writes: WritesDep,
    principal: CurrentPrincipal,
) -> Transaction:
    """queued (signed, not yet sent), sent, mined or failed, with the tx hash, block and
    the decoded revert reason."""
    found = writes.writer.find(transaction_id)
    if found is None:
        raise NotFound("transaction not found")
    state, charity_hex = found
    if principal.role == "charity" and principal.charity_id != charity_hex:
        raise NotFound("transaction not found")
    view = writes.transaction_view(state)
    return Transaction.model_validate(
        {**view, "records": state.records, "nonce": state.nonce, "signer": state.signer}
    )
