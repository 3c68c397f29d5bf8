"""Charities the service registered, and the operator account each signs with."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from web3.types import Wei

from ledger_api.app import Runtime
from ledger_api.chain.writer import TxState
from ledger_api.core import ids, writes
from ledger_api.core.errors import NotFound
from ledger_api.core.hexes import hex0x, unhex
from ledger_api.core.models import CharityAccount
from ledger_api.core.security import Principal, require_charity

ZERO = b"\0" * 32


_OPERATORS: dict[tuple[int | None, str], str] = {}  # a charity's operator never changes


def find_charity(runtime: Runtime, charity_hex: str) -> str:
    """The operator account of a charity this service registered; 404 otherwise."""
    cached = _OPERATORS.get((runtime.deployment_id, charity_hex))
    if cached is not None:
        return cached
    with runtime.engine.connect() as connection:
        operator = connection.execute(
            select(CharityAccount.operator).where(
                CharityAccount.deployment_id == runtime.deployment_id,
                CharityAccount.charity_id == charity_hex,
            )
        ).scalar_one_or_none()
    if operator is None:
        raise NotFound("charity not found")
    _OPERATORS[(runtime.deployment_id, charity_hex)] = str(operator)
    return str(operator)


def operator_for(runtime: Runtime, principal: Principal, charity_hex: str, what: str = "charity") -> str:
    """The signer for a write on `charity_hex` by `principal`: the charity's own operator.
    Another charity's key is told the record does not exist."""
    require_charity(principal, charity_hex, what)
    try:
        return find_charity(runtime, charity_hex)
    except NotFound:
        raise NotFound(f"{what} not found") from None


def fund_on_dev_chain(runtime: Runtime, address: str) -> None:
    """Development chains: give a new operator account gas money from the node's account."""
    if runtime.faucet is None:
        return
    tx = runtime.w3.eth.send_transaction({"from": runtime.faucet, "to": address, "value": Wei(10**19)})
    runtime.w3.eth.wait_for_transaction_receipt(tx)


def register(runtime: Runtime, name: str, metadata_hash: str | None) -> tuple[dict[str, Any], list[TxState]]:
    assert runtime.keystore is not None and runtime.service_account is not None
    charity_id = ids.new("charity")
    charity_bytes = ids.to_bytes32(charity_id)
    fn = runtime.contract.functions
    service = runtime.service_account
    metadata = unhex(metadata_hash) if metadata_hash else ZERO
    register_call = fn.registerCharity(charity_bytes, name, metadata)
    gas = writes.simulate(runtime, service, register_call)  # rejected here: no account is made
    operator = runtime.keystore.create(label=f"operator:{charity_id}")
    records = {"kind": "charity", "ids": [charity_id]}
    first = writes.settle(
        runtime,
        [writes.send(runtime, service, register_call, gas, hex0x(charity_bytes), records)],
        True,
    )[0]
    second = writes.write(
        runtime, service, fn.addOperator(charity_bytes, operator), hex0x(charity_bytes), records, True
    )
    with runtime.engine.begin() as connection:
        connection.execute(
            insert(CharityAccount).values(
                deployment_id=runtime.deployment_id, charity_id=hex0x(charity_bytes), operator=operator
            )
        )
    fund_on_dev_chain(runtime, operator)
    body = {
        "id": charity_id,
        "chain_id_hex": hex0x(charity_bytes),
        "name": name,
        "operator": operator,
        "transactions": [writes.transaction_view(runtime, s) for s in (first, second)],
    }
    return body, [first, second]
