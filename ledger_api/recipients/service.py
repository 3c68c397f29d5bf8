"""Registering recipient organisations (the registrar, that is an admin key).

The identifier is checked before anything is simulated (`core/identifiers.py`): a
mistyped Unified Social Credit Code or a person's ID number would be on chain for ever.
The organisation's account is its own key: the platform makes none and stores none, and
only that key can move it (`setRecipientAccount`), so nobody confirms in its name."""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

from ledger_api.chain.abi import encode
from ledger_api.chain.writer import TxState
from ledger_api.core import ids
from ledger_api.core.errors import InvalidRequest
from ledger_api.core.hexes import hex0x
from ledger_api.core.identifiers import IdentifierError, check
from ledger_api.transactions.service import Step, Writes


class PersonalIdentifier(InvalidRequest):
    kind, title = "personal-id-number", "A person's ID number is not an organisation's identifier"


class InvalidIdentifier(InvalidRequest):
    kind, title = "invalid-uscc", "Not a valid Unified Social Credit Code"


def checked_identifier(identifier: str) -> str:
    try:
        return check(identifier)
    except IdentifierError as error:
        kind = PersonalIdentifier if error.code == "personal-id-number" else InvalidIdentifier
        raise kind(str(error)) from None


def register(
    writes: Writes, identifier: str, name: str, account: str
) -> tuple[dict[str, Any], list[TxState]]:
    identifier = checked_identifier(identifier)
    account = to_checksum_address(account)
    if int(account, 16) == 0:
        raise InvalidRequest("the account cannot be the zero address")
    recipient_id = ids.new("recipient")
    recipient_bytes = ids.to_bytes32(recipient_id)
    call = encode("registerRecipient", recipient_bytes, identifier, name, account)
    records = {"kind": "recipient", "ids": [recipient_id]}
    gas = writes.simulate(writes.service_account, call)
    (state,) = writes.submit(writes.service_account, None, [Step(call, records, gas)], True)
    body = {
        "id": recipient_id,
        "chain_id_hex": hex0x(recipient_bytes),
        "identifier": identifier,
        "name": name,
        "account": account,
        "transactions": [writes.transaction_view(state)],
    }
    return body, [state]
