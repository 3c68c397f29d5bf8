"""The one way a route writes to the chain: simulate, submit, and (unless the caller
asked not to) wait for the receipt and then for the mirror; and how a transaction is
shown in answers.

Read-your-writes: a write answers 201 only once its transactions are mined AND the SQL
mirror has indexed their blocks, so every public read (the trace, the evidence document,
the campaign's totals) shows the record the moment the writer has its answer. The
in-process indexer is nudged to look at once; an indexer in another process is waited for
(up to LEDGER_WRITE_TIMEOUT). A write mined but not mirrored in that time answers 202 with
`"mirrored": false` (GET /v1/transactions/{id} follows it)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy import select
from web3.contract.contract import ContractFunction

from indexer import models as im
from ledger_api.app import Runtime
from ledger_api.chain.abi import Call
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
    blocks = [s.block_number for s in done if s.block_number is not None]
    if blocks:
        mirrored = await_mirror(runtime, max(blocks), runtime.settings.write_timeout)
        done = [replace(s, mirrored=mirrored) for s in done]
    return done


def mirrored_block(runtime: Runtime) -> int | None:
    with runtime.engine.connect() as connection:
        return connection.execute(
            select(im.Cursor.block_number).where(im.Cursor.deployment_id == runtime.deployment_id)
        ).scalar_one_or_none()


def await_mirror(runtime: Runtime, block_number: int, timeout: float) -> bool:
    """Whether the mirror indexed `block_number` within `timeout` seconds."""
    if runtime.indexer is not None:
        runtime.indexer.indexer.nudge()
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        indexed = mirrored_block(runtime)
        if indexed is not None and indexed >= block_number:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(0.05, delay * 2)


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
    """201 once mined and mirrored (public reads show it), 202 when the caller did not wait
    or the mirror has not caught up yet (then the body says `"mirrored": false`)."""
    mined = wait and all(s.status == "mined" for s in states)
    mirrored = all(s.mirrored is not False for s in states)
    if mined and not mirrored:
        body = {**body, "mirrored": False}
    return JSONResponse(body, status_code=201 if mined and mirrored else 202)
