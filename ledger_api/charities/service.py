"""Registering charities, in one of two custodies fixed on chain at registration:

- platform: the charity gets its own operator account in the keystore, granted the
  operator role on chain by the service account (the registrar);
- self: the charity names its own operator account (`registerSelfCustodyCharity`); the
  service stores no key for it, and its operator changes need its own signature."""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import insert

from ledger_api.chain.abi import encode
from ledger_api.chain.writer import TxState
from ledger_api.core import ids
from ledger_api.core.hexes import bytes32_or_zero, hex0x
from ledger_api.core.models import CharityAccount
from ledger_api.core.security import Principal
from ledger_api.transactions.service import Step, Writes


def register(
    writes: Writes, name: str, metadata_hash: str | None, own_operator: str | None = None
) -> tuple[dict[str, Any], list[TxState]]:
    if own_operator is not None:
        return register_self_custody(writes, name, metadata_hash, to_checksum_address(own_operator))
    charity_id = ids.new("charity")
    charity_bytes = ids.to_bytes32(charity_id)
    charity_hex = hex0x(charity_bytes)
    service = writes.service_account
    metadata = bytes32_or_zero(metadata_hash)
    records = {"kind": "charity", "ids": [charity_id]}
    register_call = encode("registerCharity", charity_bytes, name, metadata)
    gas = writes.simulate(service, register_call)  # rejected here: no account is made
    operator = writes.keystore.create(label=f"operator:{charity_id}")
    (first,) = writes.submit(service, charity_hex, [Step(register_call, records, gas)], True)
    (second,) = writes.submit(
        service, charity_hex, [Step(encode("addOperator", charity_bytes, operator), records)], True
    )
    with writes.engine.begin() as connection:
        connection.execute(
            insert(CharityAccount).values(
                deployment_id=writes.deployment_id, charity_id=charity_hex, operator=operator
            )
        )
    writes.fund_on_dev_chain(operator)
    body = {
        "id": charity_id,
        "chain_id_hex": charity_hex,
        "name": name,
        "operator": operator,
        "custody": "platform",
        "transactions": [writes.transaction_view(s) for s in (first, second)],
    }
    return body, [first, second]


def register_self_custody(
    writes: Writes, name: str, metadata_hash: str | None, operator: str
) -> tuple[dict[str, Any], list[TxState]]:
    """One transaction: the charity and its first operator, its own key, which the
    contract marks held by the charity (OperatorAdded.heldByCharity)."""
    charity_id = ids.new("charity")
    charity_bytes = ids.to_bytes32(charity_id)
    charity_hex = hex0x(charity_bytes)
    call = encode("registerSelfCustodyCharity", charity_bytes, name, bytes32_or_zero(metadata_hash), operator)
    (state,) = writes.submit(
        writes.service_account, charity_hex, [Step(call, {"kind": "charity", "ids": [charity_id]})], True
    )
    # The relayer pays its gas; but eth-tester refuses even an eth_call (the simulation of a
    # prepared write) from an account without balance, so development chains fund it.
    writes.fund_on_dev_chain(operator)
    body = {
        "id": charity_id,
        "chain_id_hex": charity_hex,
        "name": name,
        "operator": operator,
        "custody": "self",
        "transactions": [writes.transaction_view(state)],
    }
    return body, [state]


def change_operator(
    writes: Writes, principal: Principal, charity_id: str, account: str, add: bool, wait: bool
) -> tuple[dict[str, Any], TxState]:
    """Add or remove an operator. Platform custody: the registrar signs (an admin's
    request). Self-custody: only an existing operator of the charity, by a signed call
    (a charity key's request with mode=prepare); the registrar's attempt is simulated
    and refused by the contract (409 SelfCustodyCharity): nothing is sent."""
    charity_bytes = ids.to_bytes32(charity_id, "charity")
    charity_hex = hex0x(charity_bytes)
    account = to_checksum_address(account)
    call = encode("addOperator" if add else "removeOperator", charity_bytes, account)
    change = "added" if add else "removed"
    step = Step(call, {"kind": f"operator-{change}", "ids": [charity_id, account]})
    if principal.role == "admin":
        writes.known_charity(charity_hex)
        (state,) = writes.submit(writes.service_account, charity_hex, [step], wait)
    else:
        (state,) = writes.write(principal, charity_hex, "charity", [step], wait)
    body = {
        "charity_id": charity_id,
        "account": account,
        "change": change,
        "transaction": writes.transaction_view(state),
    }
    return body, state
