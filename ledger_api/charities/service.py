"""Registering charities: each gets its own operator account in the keystore, granted the
operator role on chain by the service account (the registrar)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from ledger_api.chain.abi import encode
from ledger_api.chain.writer import TxState
from ledger_api.core import ids
from ledger_api.core.hexes import bytes32_or_zero, hex0x
from ledger_api.core.models import CharityAccount
from ledger_api.transactions.service import Step, Writes


def register(writes: Writes, name: str, metadata_hash: str | None) -> tuple[dict[str, Any], list[TxState]]:
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
        "transactions": [writes.transaction_view(s) for s in (first, second)],
    }
    return body, [first, second]
