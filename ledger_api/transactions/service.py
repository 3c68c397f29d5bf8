"""The write side: the one pipeline every write to the chain goes through, and how a
transaction is shown in answers.

A domain service builds its calls (with the lean encoder, `chain.abi.encode`) and the
records each one makes, then hands them to `Writes.write`, which authorises the caller
for the charity (its own operator signs: another charity's key is told the record does
not exist), simulates every call before any is signed (so a batch is refused whole or
sent whole), puts each in the outbox, sends it and settles it.

Read-your-writes: a write answers 201 only once its transactions are mined AND the SQL
mirror has indexed their blocks, so every public read (the trace, the evidence document,
the campaign's totals) shows the record the moment the writer has its answer. The
in-process indexer is nudged to look at once; an indexer in another process is waited for
(up to LEDGER_WRITE_TIMEOUT). A write mined but not mirrored in that time answers 202 with
`"mirrored": false` (GET /v1/transactions/{id} follows it)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, select
from web3 import Web3
from web3.types import Wei

from ledger_api.chain.abi import Call, contract_error_of, decode_result, encode
from ledger_api.chain.contract import Deployment
from ledger_api.chain.keystore import Keystore
from ledger_api.chain.writer import NODE_ERRORS, ChainWriter, TxState
from ledger_api.core import ids
from ledger_api.core.accounts import operator_of
from ledger_api.core.config import Settings
from ledger_api.core.errors import ChainUnavailable, ContractRejected, NotFound, Problem
from ledger_api.core.hexes import hex0x
from ledger_api.core.security import Principal, require_charity
from ledger_api.mirror import tables as im


@dataclass(frozen=True)
class Step:
    """One transaction of a write: the call, the records it makes (kept with the
    transaction in the outbox) and, when the caller simulated it already, its gas."""

    call: Call
    records: dict[str, Any]
    gas: int | None = None


@dataclass
class Writes:
    """The write gateway: the writer and its outbox, the keystore and service account,
    and the caches of facts that never change (a campaign's charity, a charity's operator)."""

    settings: Settings
    w3: Web3
    deployment: Deployment
    engine: Engine
    deployment_id: int
    writer: ChainWriter
    keystore: Keystore
    service_account: str
    # Development chains fund new operator accounts from this node-held account.
    faucet: str | None = None
    # Asks the in-process indexer to look at the chain now (None: another process indexes).
    nudge_indexer: Callable[[], None] | None = None
    _owners: dict[bytes, str] = field(default_factory=dict, repr=False)  # campaign -> charity
    _operators: dict[str, str] = field(default_factory=dict, repr=False)  # charity -> operator

    # ------------------------------------------------------------ facts from the chain

    def view(self, function: str, *args: Any, missing: str) -> Any:
        """A view function of the contract (one value, or a tuple of several); NotFound
        when it reverts with a not-found error."""
        call = encode(function, *args)
        try:
            data = self.w3.eth.call({"to": self.writer.address, "data": hex0x(call.data)})  # type: ignore[typeddict-item]
        except NODE_ERRORS as exc:
            raise ChainUnavailable(f"the chain node did not answer ({type(exc).__name__})") from None
        except Exception as exc:
            error = contract_error_of(exc)
            if error is not None and error.name.endswith("NotFound"):
                raise NotFound(f"{missing} not found") from None
            raise
        values = decode_result(function, bytes(data))
        return values[0] if len(values) == 1 else values

    def charity_of_campaign(self, campaign_id: str) -> str:
        """The charity (0x hex) that owns a campaign, read from the chain (the mirror may
        lag) once, then remembered: a campaign never changes hands."""
        campaign = ids.to_bytes32(campaign_id, "campaign")
        if campaign not in self._owners:
            view = self.view("campaignOf", campaign, missing="campaign")
            self._owners[campaign] = hex0x(view[0])
        return self._owners[campaign]

    def find_charity(self, charity_hex: str) -> str:
        """The operator account of a charity this service registered; 404 otherwise."""
        cached = self._operators.get(charity_hex)
        if cached is not None:
            return cached
        operator = operator_of(self.engine, self.deployment_id, charity_hex)
        if operator is None:
            raise NotFound("charity not found")
        self._operators[charity_hex] = operator
        return operator

    def operator_for(self, principal: Principal, charity_hex: str, what: str = "charity") -> str:
        """The signer for a write on `charity_hex` by `principal`: the charity's own
        operator. Another charity's key is told the record does not exist."""
        require_charity(principal, charity_hex, what)
        try:
            return self.find_charity(charity_hex)
        except NotFound:
            raise NotFound(f"{what} not found") from None

    def fund_on_dev_chain(self, address: str) -> None:
        """Development chains: give a new operator account gas money from the node's account."""
        if self.faucet is None:
            return
        tx = self.w3.eth.send_transaction({"from": self.faucet, "to": address, "value": Wei(10**19)})
        self.w3.eth.wait_for_transaction_receipt(tx)

    # ------------------------------------------------------------ the pipeline

    def write(
        self, principal: Principal, charity_hex: str, what: str, steps: Sequence[Step], wait: bool
    ) -> list[TxState]:
        """A write on `charity_hex` by `principal`: authorised, then `submit`ted with the
        charity's operator as the signer. `what` names the record in a 404."""
        return self.submit(self.operator_for(principal, charity_hex, what), charity_hex, steps, wait)

    def submit(self, signer: str, charity_hex: str, steps: Sequence[Step], wait: bool) -> list[TxState]:
        """Simulate every step (unless its gas is known), then put each in the outbox and
        send it, then settle them: nothing is signed unless every step would succeed."""
        gases = [step.gas if step.gas is not None else self.simulate(signer, step.call) for step in steps]
        states = [
            self.writer.submit(signer, step.call, gas, charity_hex, step.records)
            for step, gas in zip(steps, gases, strict=True)
        ]
        return self.settle(states, wait)

    def simulate(self, signer: str, call: Call) -> int:
        """The gas to send `call` with; ContractRejected (409) when it would revert."""
        return self.writer.simulate(signer, call)

    def settle(self, states: list[TxState], wait: bool) -> list[TxState]:
        """Wait for every transaction (if asked); a transaction that reverted when mined
        (the chain changed between simulation and mining) is a 409 naming the error."""
        if not wait:
            return states
        done = [self.writer.wait(s.id, self.settings.write_timeout) for s in states]
        for state in done:
            if state.status == "failed":
                error = state.error or {"name": "Reverted", "args": {}}
                raise ContractRejected(
                    f"the transaction was mined but reverted: {error['name']}",
                    error=error,
                    transaction=self.transaction_view(state),
                )
        blocks = [s.block_number for s in done if s.block_number is not None]
        if blocks:
            mirrored = self.await_mirror(max(blocks), self.settings.write_timeout)
            done = [replace(s, mirrored=mirrored) for s in done]
        return done

    def mirrored_block(self) -> int | None:
        with self.engine.connect() as connection:
            return connection.execute(
                select(im.Cursor.block_number).where(im.Cursor.deployment_id == self.deployment_id)
            ).scalar_one_or_none()

    def await_mirror(self, block_number: int, timeout: float) -> bool:
        """Whether the mirror indexed `block_number` within `timeout` seconds."""
        if self.nudge_indexer is not None:
            self.nudge_indexer()
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            indexed = self.mirrored_block()
            if indexed is not None and indexed >= block_number:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(delay)
            delay = min(0.05, delay * 2)

    # ------------------------------------------------------------ answers

    def transaction_view(self, state: TxState) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": state.id,
            "href": f"/v1/transactions/{state.id}",
            # "signed" is stored but not yet taken by the node: to the caller, queued.
            "status": "queued" if state.status == "signed" else state.status,
            "tx_hash": state.tx_hash,
            "chain_id": self.deployment.chain_id,
            "contract": self.deployment.address,
            "block_number": state.block_number,
            "block_hash": state.block_hash,
        }
        if state.error:
            view["error"] = state.error
        return view


def answer(body: dict[str, Any], states: list[TxState], wait: bool) -> JSONResponse:
    """201 once mined and mirrored (public reads show it), 202 when the caller did not wait
    or the mirror has not caught up yet (then the body says `"mirrored": false`)."""
    mined = wait and all(s.status == "mined" for s in states)
    mirrored = all(s.mirrored is not False for s in states)
    if mined and not mirrored:
        body = {**body, "mirrored": False}
    return JSONResponse(body, status_code=201 if mined and mirrored else 202)


class WritesDisabled(Problem):
    status, kind, title = 503, "writes-disabled", "This service does not accept writes"


def current_writes(request: Request) -> Writes:
    writes: Writes | None = request.app.state.writes
    if writes is None:
        raise WritesDisabled("this service runs without a keystore; it serves reads only")
    return writes


WritesDep = Annotated[Writes, Depends(current_writes)]
WaitParam = Annotated[
    bool, Query(description="Answer once the transaction is mined (default); false: 202 at once.")
]
