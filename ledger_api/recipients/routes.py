"""Recipient organisations: registered by the registrar (an admin key) with their public
identifier and their own key; anyone reads them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from ledger_api.core.errors import READ_ERRORS, InvalidRequest, problems
from ledger_api.core.pages import CursorParam, Limit, Page
from ledger_api.core.schemas import RecipientId
from ledger_api.core.security import AdminPrincipal
from ledger_api.mirror.gateway import MirrorDep
from ledger_api.recipients import reads, service
from ledger_api.recipients.schemas import Recipient, RecipientCreate, RecipientRegistered
from ledger_api.transactions import relay
from ledger_api.transactions.schemas import RELAY_BODY, RelayAnswer, SignedCallSubmission, write_responses
from ledger_api.transactions.service import WaitParam, WriterDep, WritesDep, answer

router = APIRouter(prefix="/v1/recipients", tags=["recipients"])

RecipientPath = Annotated[RecipientId, Path(description="The recipient organisation's ID (RO-...)")]


@router.post(
    "", status_code=201, response_model=RecipientRegistered, responses=write_responses(RecipientRegistered)
)
def register_recipient(body: RecipientCreate, writes: WritesDep, _: AdminPrincipal) -> JSONResponse:
    """Register a recipient organisation on chain (the registrar): its public identifier (a
    Unified Social Credit Code is checked against its check character; a person's resident ID
    number is refused, 422 `personal-id-number`), its name, and its own account, with which it
    confirms receipt of the disbursements that name it. The platform keeps no key for it."""
    created, states = service.register(writes, body.identifier, body.name, body.account)
    return answer(created, states, True)


@router.get("", response_model_exclude_unset=True, responses=problems(InvalidRequest))
def list_recipients(mirror: MirrorDep, limit: Limit = 50, cursor: CursorParam = None) -> Page[Recipient]:
    """Recipient organisations in the order they were registered (public)."""
    return reads.list_recipients(mirror, limit, cursor)


@router.get("/{recipient_id}", response_model_exclude_unset=True, responses=problems(*READ_ERRORS))
def get_recipient(recipient_id: RecipientPath, mirror: MirrorDep) -> Recipient:
    """A recipient organisation, its account and how many disbursements name it (public)."""
    return reads.get_recipient(mirror, recipient_id)


@router.post(
    "/signed-calls",
    status_code=201,
    max_body_size=RELAY_BODY,
    response_model=RelayAnswer,
    responses=write_responses(RelayAnswer),
)
def relay_recipient_call(
    body: SignedCallSubmission, writes: WriterDep, wait: WaitParam = True
) -> JSONResponse:
    """Relay a call a recipient organisation signed with its own key (EIP-712 SignedCall,
    as `ledger recipient confirm` makes it): `confirmReceipt` (receipt of a disbursement
    that names it, in part or in full) or `setRecipientAccount` (moving to a new key). No
    API key: the signature is the authority. It must recover to the named account, the
    current account of a registered recipient organisation (403 otherwise, saying whose key
    it is); its deadline and nonce are checked (expired: 422; used: 409); `execute` is
    simulated (a would-be revert, such as `NotRecipient` or `ConfirmationExceedsDisbursement`
    with what is available and what was asked, is a 409) and sent from the platform's relayer
    account, which pays the gas. Answers as every write: 201 once mined and mirrored."""
    checked, states = relay.relay_recipient_call(writes, body.message.model_dump(), body.signature, wait)
    return answer(
        {"records": [checked.step.records], "transactions": [writes.transaction_view(s) for s in states]},
        states,
        wait,
    )
