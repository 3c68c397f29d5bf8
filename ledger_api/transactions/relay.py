"""The relay: records a self-custody charity signed with its own key, sent by the platform.

A charity that holds its operator key asks for a write with `?mode=prepare` and gets the
EIP-712 SignedCall(s) to sign (`Writes.prepare`). POST /v1/relay takes them back, signed,
and for each one, before anything is sent:

1. the call is one of the charity-record functions the contract's `execute` allows;
2. the signature is recovered off-chain over OUR domain (chain id, this ledger): it must
   be the named operator's. A signature by the platform's own keys (the registrar, a
   platform-held operator) or by another charity's operator is refused naming whose it
   is (403); anything else is a 422 (an ERC-1271 contract wallet cannot be recovered:
   its check is left to the contract's `SignatureChecker`, in step 5's simulation);
3. the operator is an active operator of a self-custody charity that the caller's API key
   may write for (the key authenticates the submitter; the signature is the authority);
4. the deadline has not passed (and is at most a day away), the nonce is not used on
   chain nor in flight in the outbox: a replay is a 409 and nothing is sent;
5. `execute(call, signature)` is simulated from the relayer account (the registrar, which
   pays the gas): a would-be revert is a 409 naming the contract's error.

Then the calls go through the one pipeline (`Writes.submit`: outbox, nonce, send, settle,
read-your-writes), signed by the relayer. The outbox row records what the call records
and who signed it (`signed_by`, `relay_nonce`).

Two requests carrying the same signed call at once: within one process the second is
refused here (in flight); across processes both could be sent, and the contract refuses
the second (NonceAlreadyUsed): the record is still written exactly once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from eth_utils.abi import collapse_if_tuple
from sqlalchemy import select

from ledger_api.chain import signed_calls
from ledger_api.chain.abi import Call, encode, load_artifact
from ledger_api.chain.writer import TxState
from ledger_api.core import ids
from ledger_api.core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from ledger_api.core.hexes import hex0x, unhex
from ledger_api.core.models import ChainTransaction
from ledger_api.core.security import Principal
from ledger_api.mirror import tables as im
from ledger_api.transactions import proposals
from ledger_api.transactions.service import NothingToSign, Step, Writes

ALLOWED = signed_calls.SIGNABLE_FUNCTIONS  # what the contract lets a SignedCall call
# Signed by an approver's own key: approvers are not operators (the contract checks they
# are named by the proposal's rule).
APPROVER_FUNCTIONS = ("approveDisbursement", "rejectDisbursement")
MAX_DEADLINE_AHEAD = 86_400  # a signed call valid longer than a day is refused

KINDS = {
    "createCampaign": "campaign",
    "closeCampaign": "campaign-closed",
    "setCampaignEnd": "campaign-end",
    "publishReport": "report",
    "recordDisposal": "disposal",
    "recordDonation": "donation",
    "recordDonations": "donation",
    "refundDonation": "refund",
    "recordDisbursement": "disbursement",
    "disburse": "disbursement",
    "recordGrantDonation": "donation",
    "setApprovalRule": "approval-rule",
    "proposeDisbursement": "proposal",
    "approveDisbursement": "proposal-approved",
    "rejectDisbursement": "proposal-rejected",
    "executeDisbursement": "disbursement",
    "anchorEvidence": "evidence",
    "linkRedactedCopy": "evidence-redacted-copy",
    "withdrawEvidence": "evidence-withdrawn",
    "recordCorrection": "correction",
    "addOperator": "operator-added",
    "removeOperator": "operator-removed",
    "confirmReceipt": "receipt-confirmation",
    "setRecipientAccount": "recipient-account-changed",
}
# What a recipient organisation signs with its own key (`check_recipient_call`).
RECIPIENT_FUNCTIONS = ("confirmReceipt", "setRecipientAccount")


class WrongSigner(Forbidden):
    kind, title = "wrong-signer", "Not signed by the charity's own operator key"


class InvalidSignedCall(InvalidRequest):
    kind, title = "invalid-signed-call", "The signed call is not valid"


class SignatureExpired(InvalidRequest):
    kind, title = "signature-expired", "The signed call's deadline has passed"


class NonceUsed(Conflict):
    kind, title = "nonce-used", "This signed call was already submitted"


@cache
def _functions() -> dict[bytes, tuple[str, tuple[str, ...]]]:
    table = {}
    for item in load_artifact()["abi"]:
        if item.get("type") == "function" and item["name"] in ALLOWED:
            inputs = tuple(collapse_if_tuple(i) for i in item["inputs"])
            selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(inputs)})")
            table[selector] = (item["name"], inputs)
    return table


def records_of(data: bytes) -> tuple[str, dict[str, Any]]:
    """The function a call's data names and what it records ({"kind", "ids"}); 422 for a
    function a SignedCall may not call or data that does not decode."""
    name, _, records = decoded(data)
    return name, records


def decoded(data: bytes) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """The function, its decoded arguments and what it records."""
    found = _functions().get(data[:4])
    if found is None:
        raise InvalidSignedCall(
            f"a signed call may only call the charity-record functions ({', '.join(ALLOWED)})",
            error={"name": "SignedCallNotAllowed", "args": {"selector": hex0x(data[:4])}},
        )
    name, inputs = found
    try:
        args = abi_decode(list(inputs), data[4:])
    except Exception:
        raise InvalidSignedCall(f"the signed call's data does not decode as {name}") from None
    if name in ("recordDonation", "recordGrantDonation", "disburse"):
        record_ids = [args[0][0]]
    elif name == "recordDonations":
        record_ids = [donation[0] for donation in args[0]]
    elif name in ("anchorEvidence", "withdrawEvidence"):
        record_ids = [args[0], args[1]]
    elif name == "linkRedactedCopy":
        record_ids = [args[0], args[1], args[2]]
    elif name in ("proposeDisbursement", "executeDisbursement"):
        record_ids = [args[0][0]]  # the DisbursementInput's disbursementId
    elif name in ("addOperator", "removeOperator", "setRecipientAccount"):
        accounts = [ids.from_bytes32(args[0]), to_checksum_address(args[1])]
        return name, tuple(args), {"kind": KINDS[name], "ids": accounts}
    elif name == "confirmReceipt":
        record_ids = [args[0], args[1]]
    else:
        record_ids = [args[0]]
    readable = [ids.from_bytes32(r) for r in record_ids]
    if name in ("anchorEvidence", "withdrawEvidence", "linkRedactedCopy"):
        # documents by their SHA-256, as the evidence routes name them
        readable[1:] = [hex0x(r)[2:] for r in record_ids[1:]]
    return name, tuple(args), {"kind": KINDS[name], "ids": readable}


def target_charities(writes: Writes, name: str, args: tuple[Any, ...]) -> tuple[str, set[str]]:
    """What a call writes to, and the charities (0x hex) that own it, read from the chain
    as the ordinary write routes do: (what, charities)."""
    if name in ("createCampaign", "recordCorrection"):
        return "charity", {hex0x(args[1])}
    if name in ("addOperator", "removeOperator"):
        return "charity", {hex0x(args[0])}
    if name in ("recordDonation", "recordGrantDonation", "disburse"):
        campaigns = [args[0][1]]
    elif name == "recordDonations":
        campaigns = list(dict.fromkeys(d[1] for d in args[0]))
    elif name == "recordDisbursement":
        campaigns = [args[1]]
    elif name in ("closeCampaign", "setApprovalRule", "setCampaignEnd"):
        campaigns = [args[0]]
    elif name in ("publishReport", "recordDisposal"):
        campaigns = [args[1]]
    elif name in ("proposeDisbursement", "executeDisbursement"):
        campaigns = [args[0][1]]
    elif name in ("approveDisbursement", "rejectDisbursement"):
        campaigns = [writes.view("proposalOf", args[0], missing="proposal")[0]]
        return "proposal", {writes.charity_of_campaign(ids.from_bytes32(c)) for c in campaigns}
    elif name == "refundDonation":
        campaigns = [writes.view("donationOf", args[1], missing="donation")[0]]
        return "donation", {writes.charity_of_campaign(ids.from_bytes32(c)) for c in campaigns}
    else:  # anchorEvidence, linkRedactedCopy, withdrawEvidence: a disbursement's documents
        campaigns = [writes.view("disbursementOf", args[0], missing="disbursement")[0]]
        return "disbursement", {writes.charity_of_campaign(ids.from_bytes32(c)) for c in campaigns}
    return "campaign", {writes.charity_of_campaign(ids.from_bytes32(c)) for c in campaigns}


@dataclass(frozen=True)
class Checked:
    """A signed call that passed every check: its `execute` call and simulated gas."""

    operator: str
    nonce: bytes
    charity_hex: str
    step: Step
    # (the SignedCall as a tuple, the signature): what `execute` or `executeBatch` takes.
    row: tuple[Any, ...] = ()


_in_flight: set[tuple[str, bytes]] = set()
_in_flight_guard = threading.Lock()


def _platform_accounts(writes: Writes) -> set[str]:
    return {to_checksum_address(a) for a in writes.keystore.addresses()} | {
        to_checksum_address(writes.service_account)
    }


def _charities_of(writes: Writes, account: str) -> list[str]:
    """The charities (0x hex) `account` is an active operator of, from the mirror."""
    with writes.engine.connect() as connection:
        rows = connection.execute(
            select(im.Operator.charity_id).where(
                im.Operator.deployment_id == writes.deployment_id,
                im.Operator.account == account,
                im.Operator.active,
            )
        ).scalars()
        return [str(r) for r in rows]


def _whose(writes: Writes, signer: str) -> str:
    if signer in _platform_accounts(writes):
        return "the platform's key"
    if _charities_of(writes, signer):
        return "another charity's operator key"
    return "a key that is no operator"


def check(
    writes: Writes, principal: Principal, message: dict[str, Any], signature_hex: str, now: float
) -> Checked:
    """Steps 1-5 of the module docstring for one signed call."""
    operator = to_checksum_address(message["operator"])
    data, nonce, deadline = unhex(message["data"]), unhex(message["nonce"]), int(message["deadline"])
    signature = unhex(signature_hex)
    function, args, records = decoded(data)
    if function in RECIPIENT_FUNCTIONS:
        raise InvalidSignedCall(
            "a recipient organisation's call goes to POST /v1/recipients/signed-calls,"
            " not the charities' relay"
        )
    chain_id, contract = writes.deployment.chain_id, writes.deployment.address
    signed = signed_calls.SignedCall(operator, data, nonce, deadline)
    try:
        signer = to_checksum_address(signed_calls.recover(signed, chain_id, contract, signature))
    except Exception:  # not 65 bytes, or no point on the curve
        signer = None
    if signer != operator and not writes.w3.eth.get_code(operator):
        if signer is None:
            raise InvalidSignedCall("the signature does not recover (65 bytes r, s, v are expected)")
        raise WrongSigner(
            f"the call names operator {operator} but was signed by {_whose(writes, signer)} ({signer});"
            " nothing was sent",
            signer=signer,
            operator=operator,
        )
    if function in APPROVER_FUNCTIONS and not _charities_of(writes, operator):
        # An approver with its own key: not an operator of anything, and needs not be.
        charity_hex = _approver_may_submit(writes, principal, operator, function, args)
        return _checked(writes, signed, signature, operator, charity_hex, records, function, now)
    charities = _charities_of(writes, operator)
    if not charities:
        what = "the platform's key" if operator in _platform_accounts(writes) else "this key"
        raise WrongSigner(
            f"{what} ({operator}) is not an operator of any charity; nothing was sent", operator=operator
        )
    mine = [c for c in charities if principal.can_write_for(c)]
    if not mine:
        raise WrongSigner(
            f"{operator} is another charity's operator: your API key may not submit its calls",
            operator=operator,
        )
    own = [c for c in mine if writes.holds_own_key(c)]
    if not own:
        raise NothingToSign(
            "the platform holds this charity's operator key: send the write itself, not a signed call"
        )
    # Another charity's records are "not found", as for every write (the contract would
    # refuse the call anyway: NotCharityOperator).
    what, targets = target_charities(writes, function, args)
    if not targets <= set(own):
        raise NotFound(f"{what} not found")
    return _checked(writes, signed, signature, operator, own[0], records, function, now)


def _approver_may_submit(
    writes: Writes, principal: Principal, signer: str, function: str, args: tuple[Any, ...]
) -> str:
    """The charity of the proposal an approver's own key signed an approval or rejection
    of, once the caller may submit it: the approver's own API key (bound to this account
    and charity) or a key of the charity. Whether the signer is an approver of the
    proposal's rule is the contract's to say (NotApprover, in the simulation)."""
    _, charities = target_charities(writes, function, args)
    (charity_hex,) = charities
    if principal.role == "approver":
        if principal.account is None or principal.account.lower() != signer.lower():
            raise WrongSigner(
                f"your API key is bound to approver {principal.account}, not to {signer}", operator=signer
            )
        if principal.charity_id != charity_hex:
            raise NotFound("proposal not found")
    elif not principal.can_write_for(charity_hex):
        raise NotFound("proposal not found")
    return charity_hex


def _checked(
    writes: Writes,
    signed: signed_calls.SignedCall,
    signature: bytes,
    operator: str,
    charity_hex: str,
    records: dict[str, Any],
    function: str,
    now: float,
) -> Checked:
    """Step 4 and 5: the deadline, the nonce, and `execute` simulated from the relayer."""
    nonce, deadline = signed.nonce, signed.deadline
    if deadline < now:
        raise SignatureExpired(
            f"the signed call expired at {deadline} (now {int(now)}): prepare and sign it again",
            error={"name": "SignatureExpired", "args": {"deadline": deadline, "nowTimestamp": int(now)}},
        )
    if deadline > now + MAX_DEADLINE_AHEAD:
        raise InvalidSignedCall(f"a signed call's deadline may be at most {MAX_DEADLINE_AHEAD} s ahead")
    if writes.view("isNonceUsed", operator, nonce, missing="operator"):
        raise NonceUsed(
            "this signed call (its nonce) was already executed; nothing was sent",
            error={"name": "NonceAlreadyUsed", "args": {"operator": operator, "nonce": hex0x(nonce)}},
        )
    call = encode("execute", signed.as_tuple(), signature)
    gas = writes.simulate(writes.service_account, call)
    records = {**records, "function": function, "signed_by": operator, "relay_nonce": hex0x(nonce)}
    return Checked(operator, nonce, charity_hex, Step(call, records, gas), (signed.as_tuple(), signature))


def _recipient_of(writes: Writes, account: str) -> str | None:
    """The recipient organisation (0x hex) whose current account `account` is, from the mirror."""
    with writes.engine.connect() as connection:
        return connection.execute(
            select(im.Recipient.recipient_id).where(
                im.Recipient.deployment_id == writes.deployment_id, im.Recipient.account == account
            )
        ).scalar()


def check_recipient_call(writes: Writes, message: dict[str, Any], signature_hex: str, now: float) -> Checked:
    """A recipient organisation's own signed call (`confirmReceipt`, `setRecipientAccount`).

    No API key stands behind it: the organisation is not a charity and holds no key of the
    service, and the signature is the only authority the contract accepts anyway. So the
    checks are the signature's: it recovers to the named account, which is the current
    account of a registered recipient organisation (the platform's and charities' keys are
    named and refused); the deadline and nonce as for a charity; then `execute` simulated
    from the relayer. A call that would revert (another organisation's disbursement:
    NotRecipient; more than the disbursement: ConfirmationExceedsDisbursement) is a 409
    and costs nothing, so the gas the relayer pays is bounded by what the organisation's
    own key may truly record."""
    account = to_checksum_address(message["operator"])
    data, nonce, deadline = unhex(message["data"]), unhex(message["nonce"]), int(message["deadline"])
    function, args, records = decoded(data)
    if function not in RECIPIENT_FUNCTIONS:
        raise InvalidSignedCall(
            f"a recipient organisation may relay only {', '.join(RECIPIENT_FUNCTIONS)} here;"
            " a charity's signed calls go to POST /v1/relay"
        )
    signed = signed_calls.SignedCall(account, data, nonce, deadline)
    chain_id, contract = writes.deployment.chain_id, writes.deployment.address
    try:
        signer = to_checksum_address(signed_calls.recover(signed, chain_id, contract, unhex(signature_hex)))
    except Exception:  # not 65 bytes, or no point on the curve
        raise InvalidSignedCall("the signature does not recover (65 bytes r, s, v are expected)") from None
    if signer != account:
        raise WrongSigner(
            f"the call names account {account} but was signed by {signer}; nothing was sent",
            signer=signer,
            operator=account,
        )
    recipient_hex = _recipient_of(writes, account)
    if recipient_hex is None:
        whose = _whose(writes, account)
        raise WrongSigner(
            f"{account} ({whose}) is not the account of a registered recipient organisation;"
            " nothing was sent",
            operator=account,
        )
    if deadline < now:
        raise SignatureExpired(
            f"the signed call expired at {deadline} (now {int(now)}): sign it again",
            error={"name": "SignatureExpired", "args": {"deadline": deadline, "nowTimestamp": int(now)}},
        )
    if deadline > now + MAX_DEADLINE_AHEAD:
        raise InvalidSignedCall(f"a signed call's deadline may be at most {MAX_DEADLINE_AHEAD} s ahead")
    if writes.view("isNonceUsed", account, nonce, missing="operator"):
        raise NonceUsed(
            "this signed call (its nonce) was already executed; nothing was sent",
            error={"name": "NonceAlreadyUsed", "args": {"operator": account, "nonce": hex0x(nonce)}},
        )
    call = encode("execute", signed.as_tuple(), unhex(signature_hex))
    gas = writes.simulate(writes.service_account, call)
    records = {**records, "function": function, "signed_by": account, "relay_nonce": hex0x(nonce)}
    # A confirmation belongs to the charity whose disbursement it confirms (the outbox row
    # and the transaction's readers follow it); a key change to no charity.
    charity_hex = ""
    if function == "confirmReceipt":
        campaign = writes.view("disbursementOf", args[1], missing="disbursement")[0]
        charity_hex = writes.charity_of_campaign(ids.from_bytes32(campaign))
    row = (signed.as_tuple(), unhex(signature_hex))
    return Checked(account, nonce, charity_hex, Step(call, records, gas), row)


def relay_recipient_call(
    writes: Writes, message: dict[str, Any], signature: str, wait: bool
) -> tuple[Checked, list[TxState]]:
    """Check a recipient organisation's signed call, then send it from the relayer."""
    checked = check_recipient_call(writes, message, signature, time.time())
    key = (checked.operator, checked.nonce)
    with _in_flight_guard:
        if key in _in_flight or _in_outbox(writes, checked.nonce):
            raise NonceUsed("this signed call is being sent already; nothing more was sent")
        _in_flight.add(key)
    try:
        states = writes.submit(
            writes.service_account, checked.charity_hex or None, [checked.step], wait=False
        )
    finally:
        with _in_flight_guard:
            _in_flight.discard(key)
    return checked, writes.settle(states, wait)


def _in_outbox(writes: Writes, nonce: bytes) -> bool:
    """Whether a relayed call with this nonce is in the outbox, not failed."""
    with writes.engine.connect() as connection:
        found = connection.execute(
            select(ChainTransaction.id)
            .where(
                ChainTransaction.chain_id == writes.deployment.chain_id,
                ChainTransaction.signer == writes.service_account,
                ChainTransaction.status != "failed",
                ChainTransaction.records.contains(hex0x(nonce)),
            )
            .limit(1)
        ).first()
    return found is not None


def relay(
    writes: Writes, principal: Principal, calls: list[tuple[dict[str, Any], str]], wait: bool
) -> tuple[list[Checked], list[TxState]]:
    """Check every signed call (nothing is sent unless all pass), then send them from the
    relayer account through the pipeline."""
    now = time.time()
    checked = [check(writes, principal, message, signature, now) for message, signature in calls]
    keys = [(c.operator, c.nonce) for c in checked]
    if len(set(keys)) != len(keys):
        raise InvalidSignedCall("the same signed call appears twice in this request")
    with _in_flight_guard:
        if any(key in _in_flight for key in keys) or any(_in_outbox(writes, c.nonce) for c in checked):
            raise NonceUsed("this signed call is being sent already; nothing more was sent")
        _in_flight.update(keys)
    try:
        by_charity = checked[0].charity_hex
        if len(checked) == 1 and writes.relay_commit is not None:
            # A lone signed call shares its transaction with others relayed for the same
            # charity meanwhile (one executeBatch), settled within the in-flight guard.
            (one,) = checked
            relayer, group_commit = writes.service_account, writes.relay_commit
            return checked, writes.submit_one(
                group_commit, relayer, by_charity, one.step, one.row, execute_calls, wait
            )
        states = writes.submit(writes.service_account, by_charity, [c.step for c in checked], wait=False)
    finally:
        with _in_flight_guard:
            _in_flight.difference_update(keys)
    return checked, writes.settle(states, wait)


def execute_calls(rows: Sequence[tuple[Any, ...]]) -> Call:
    """The call executing these (signed call, signature) rows: `execute` for one,
    `executeBatch` (contract 2.4.0) for several, all or nothing."""
    if len(rows) == 1:
        return encode("execute", *rows[0])
    return encode("executeBatch", [row[0] for row in rows], [row[1] for row in rows])


def execute_approved(
    writes: Writes, checked: list[Checked], states: list[TxState], wait: bool
) -> list[TxState]:
    """After relaying: an approval signed by an approver's own key may be the last one
    needed, so pay each such proposal now (anyone may execute; the relayer does, from the
    stored input). The API's relay and the console's both call this."""
    approved = [
        c.step.records["ids"][0]
        for c, s in zip(checked, states, strict=True)
        if c.step.records.get("function") == "approveDisbursement" and s.status == "mined"
    ]
    return [e for e in (proposals.execute_if_ready(writes, d, wait) for d in approved) if e is not None]
