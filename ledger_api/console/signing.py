"""Self-custody in the console: a charity that holds its own operator key signs each
record itself; the platform only relays it.

1. A form of such a charity calls its service in `prepare` mode (`Writes.prepare`, as
   `?mode=prepare` does for the API): the record is authorised and simulated as the
   charity's operator, and answered as the EIP-712 `SignedCall`(s) to sign; nothing is
   stored or sent.
2. The sign page shows each one's typed data with two ways to sign it: the browser's
   wallet (`static/console-sign.js`, the one script of the console, allowed by this
   page's own CSP only: it asks `window.ethereum` for `eth_signTypedData_v4`, puts the
   signature in the form and sends it), or, without a wallet, the one-line
   `ledger sign --keystore ...` command that signs it offline, and a field to paste the
   signature into.
3. The form posts the messages and signatures to `/console/relay`, which calls
   `transactions.relay.relay` (the checks of POST /v1/relay: the signer, the deadline, the
   nonce, a simulation of `execute`) and answers like the record's own form would: a
   donation's receipt (its secret carried in the form, never stored, checked against the
   commitment before it is printed), else the page the record belongs to.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from ledger_api.chain import signed_calls
from ledger_api.chain.writer import TxState
from ledger_api.console import explain
from ledger_api.console.sessions import Staff
from ledger_api.console.web import ConsoleRoute, Posted, PostingSigner, page, writes_of
from ledger_api.core.errors import Problem
from ledger_api.core.hexes import unhex
from ledger_api.disbursements.reads import funding
from ledger_api.donations.trace import owns
from ledger_api.mirror.gateway import current_mirror
from ledger_api.pages.i18n import reader_for
from ledger_api.pages.routes import SECRET, Typed, reading, receipt_page
from ledger_api.transactions import relay
from ledger_api.transactions.schemas import SignedCallMessage

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)
MAX_CALLS = 10  # ten evidence documents at once are ten signed calls
SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")
NEXT = re.compile(r"^/console(/[A-Za-z0-9-]+){0,3}$")
DONATION = re.compile(r"^DN-[0-9A-Z-]{19}$")
DISBURSEMENT = re.compile(r"^DB-[0-9A-Z-]{19}$")
# The sign page runs one script, its own, from this site: nothing inline, nothing else.
SIGNING_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
KEY_FILE = "charity-key.json"
APPROVER_KEY_FILE = "approver-key.json"


def prepared(states: list[TxState]) -> bool:
    return any(state.prepared is not None for state in states)


def _call(message: dict[str, Any]) -> signed_calls.SignedCall:
    return signed_calls.SignedCall(
        message["operator"], unhex(message["data"]), unhex(message["nonce"]), int(message["deadline"])
    )


def sign_page(
    request: Request,
    staff: Staff,
    messages: list[dict[str, Any]],
    next_path: str,
    receipt: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
    slip: dict[str, str] | None = None,
) -> HTMLResponse:
    """The page where the charity signs `messages` (SignedCall messages), then relays them."""
    writes = writes_of(request)
    chain_id, contract = writes.deployment.chain_id, writes.deployment.address
    key_file = APPROVER_KEY_FILE if staff.principal.role == "approver" else KEY_FILE
    calls = []
    for message in messages:
        call = _call(message)
        typed = signed_calls.typed_data(call, chain_id, contract)
        compact = json.dumps(typed, separators=(",", ":"))
        calls.append(
            {
                "typed": compact,
                "message": json.dumps(typed["message"], separators=(",", ":")),
                "digest": "0x" + signed_calls.digest(call, chain_id, contract).hex(),
                "operator": call.operator,
                "function": relay.records_of(call.data)[0],
                "command": f"ledger sign --keystore {key_file} {shlex.quote(compact)}",
            }
        )
    response = page(
        request,
        staff,
        "sign.html",
        status,
        lang_base="/console",
        calls=calls,
        next_path=next_path,
        receipt=receipt,
        slip=slip,
        error=error,
    )
    response.headers["Content-Security-Policy"] = SIGNING_CSP
    return response


def sign_states(
    request: Request,
    staff: Staff,
    states: list[TxState],
    next_path: str,
    receipt: dict[str, str] | None = None,
    slip: dict[str, str] | None = None,
) -> HTMLResponse:
    messages = [state.prepared["typed_data"]["message"] for state in states if state.prepared is not None]
    return sign_page(request, staff, messages, next_path, receipt, slip=slip)


@router.post("/relay", name="console_relay")
def relay_signed(request: Request, staff: PostingSigner, data: Posted) -> Response:
    """The signed calls of a sign page (a charity's records, or an approver's vote),
    relayed as POST /v1/relay relays them, an approval that completes its proposal paying it."""
    reader = reader_for(request)
    next_path = str(data.get("next") or "/console")
    if not NEXT.fullmatch(next_path):
        next_path = "/console"
    messages: list[dict[str, Any]] = []
    signatures: list[str] = []
    for i in range(MAX_CALLS):
        text = data.get(f"message_{i}")
        if not isinstance(text, str):
            break
        try:
            message = SignedCallMessage.model_validate_json(text[:4096]).model_dump()
        except ValidationError:
            return RedirectResponse(next_path, status_code=303)  # not a page of ours: start again
        messages.append(message)
        signature = data.get(f"signature_{i}")
        signatures.append(signature.strip() if isinstance(signature, str) else "")
    receipt = _receipt_fields(data)
    slip = _slip_fields(data)
    if not messages:
        return RedirectResponse(next_path, status_code=303)
    if not all(SIGNATURE.fullmatch(s) for s in signatures):
        error = reader.t("console.sign.bad_signature")
        return sign_page(request, staff, messages, next_path, receipt, error, 422, slip)
    try:
        writes = writes_of(request)
        checked, states = relay.relay(
            writes, staff.principal, list(zip(messages, signatures, strict=True)), True
        )
        relay.execute_approved(writes, checked, states, True)
    except Problem as problem:
        error = problem.detail if problem.status in (403, 422) else explain.sentence(reader, problem, None)
        return sign_page(request, staff, messages, next_path, receipt, error, problem.status, slip)
    if receipt is not None:
        mirror = current_mirror(request)
        if owns(mirror, receipt["id"], receipt["secret"], receipt["reference"]):
            given = Typed(receipt["secret"], receipt["reference"], None, None)
            return receipt_page(request, mirror, receipt["id"], given, back=next_path)
    if slip is not None and next_path == f"/console/disbursements/{slip['id']}":
        return slip_page(request, staff, slip["id"], slip["secret"])
    return RedirectResponse(next_path, status_code=303)


def slip_page(request: Request, staff: Staff, disbursement_id: str, secret: str) -> HTMLResponse:
    """The printable slip for a private recipient: the disbursement and the secret to hand
    over (carried by the form, never stored); never the person's details."""
    with reading("disbursement", disbursement_id):
        b = funding(current_mirror(request), disbursement_id)
    return page(
        request, staff, "slip.html", 200, lang_base=f"/console/disbursements/{b.id}", b=b, secret=secret
    )


def _slip_fields(data: Any) -> dict[str, str] | None:
    """A private recipient's slip to print after relaying (carried by the form, never stored)."""
    disbursement, secret = (data.get(n) for n in ("slip_id", "slip_secret"))
    if not isinstance(disbursement, str) or not isinstance(secret, str):
        return None
    if not DISBURSEMENT.fullmatch(disbursement) or not SECRET.fullmatch(secret):
        return None
    return {"id": disbursement, "secret": secret}


def _receipt_fields(data: Any) -> dict[str, str] | None:
    """The donation receipt to print after relaying (carried by the form, never stored)."""
    donation, secret, reference = (data.get(n) for n in ("receipt_id", "receipt_secret", "receipt_reference"))
    if not all(isinstance(v, str) for v in (donation, secret, reference)):
        return None
    if not DONATION.fullmatch(donation) or not SECRET.fullmatch(secret) or not 0 < len(reference) <= 400:
        return None
    return {"id": donation, "secret": secret, "reference": reference}
