"""The one way a route writes to the chain: simulate, submit, and (unless the caller
asked not to) wait for the receipt; and how a transaction is shown in answers."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from web3.contract.contract import ContractFunction

from ledger_api.app import Runtime
from ledger_api.chain.calls import Call
from ledger_api.chain.writer import TxState
from ledger_api.core.errors import ContractRejected


def transaction_view(runtime: Runtime, state: TxState) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": state.id,
        "href": f"/v1/transactions/{state.id}",
        # "signed" is stored but not yet taken by the node: to the caller, queued.
        "status": "queued" if state.status == "signed" else state.status,
        "tx_hash": state.tx_hash,
        "chain_id": runtime.deployment.chain_id,
        "contract": runtime.deployment.address,
        "block_number": state.block_number,
        "block_hash": state.block_hash,
    }
    if state.error:
        view["error"] = state.error
    return view


def simulate(runtime: Runtime, signer: str, call: Call | ContractFunction) -> int:
    assert runtime.writer is not None
    return runtime.writer.simulate(signer, call)


def send(
    runtime: Runtime,
    signer: str,
    call: Call | ContractFunction,
    gas: int,
    charity_id: str | None,
    records: dict[str, Any],
) -> TxState:
    assert runtime.writer is not None
    return runtime.writer.submit(signer, call, gas, charity_id, records)


def settle(runtime: Runtime, states: list[TxState], wait: bool) -> list[TxState]:
    """Wait for every transaction (if asked); a transaction that reverted when mined
    (the chain changed between simulation and mining) is a 409 naming the error."""
    assert runtime.writer is not None
    if not wait:
        return states
    done = [runtime.writer.wait(s.id, runtime.settings.write_timeout) for s in states]
    for state in done:
        if state.status == "failed":
            error = state.error or {"name": "Reverted", "args": {}}
            raise ContractRejected(
                f"the transaction was mined but reverted: {error['name']}",
                error=error,
                transaction=transaction_view(runtime, state),
            )
    return done


def write(
    runtime: Runtime,
    signer: str,
    call: Call | ContractFunction,
    charity_id: str | None,
    records: dict[str, Any],
    wait: bool,
) -> TxState:
    gas = simulate(runtime, signer, call)
    state = send(runtime, signer, call, gas, charity_id, records)
    return settle(runtime, [state], wait)[0]


def answer(body: dict[str, Any], states: list[TxState], wait: bool) -> JSONResponse:
    """201 once mined, 202 when the caller did not wait."""
    mined = wait and all(s.status == "mined" for s in states)
    return JSONResponse(body, status_code=201 if mined else 202)
