"""The write side: the one pipeline every write to the chain goes through, and how a
transaction is shown in answers.

A domain service builds its calls (with the lean encoder, `chain.abi.encode`) and the
records each one makes, then hands them to `Writes.write`, which authorises the caller
for the charity (its own operator signs: another charity's key is told the record does
not exist), simulates every call before any is signed (so a batch is refused whole or
sent whole), puts each in the outbox, sends it and settles it.

Self-custody: a charity that holds its operator key itself (registered with
`registerSelfCustodyCharity`) is never signed for. The same write, asked with
`?mode=prepare`, is authorised, simulated as the charity's operator and answered with the
EIP-712 SignedCall(s) to sign (nothing in the outbox, nothing sent); the signed call comes
back to POST /v1/relay (`transactions/relay.py`), which checks the signature, simulates
`execute` and sends it from the platform's relayer account through this same pipeline
(outbox, nonces, settle, read-your-writes). A plain write for such a charity is a 409
saying so: the platform has no key to sign it with.

Read-your-writes: a write answers 201 only once its transactions are mined AND the SQL
mirror has indexed their blocks, so every public read (the trace, the evidence document,
the campaign's totals) shows the record the moment the writer has its answer. The
in-process indexer is nudged to look at once; an indexer in another process is waited for
(up to LEDGER_WRITE_TIMEOUT). A write mined but not mirrored in that time answers 202 with
`"mirrored": false` (GET /v1/transactions/{id} follows it)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, select
from web3 import Web3
from web3.types import Wei

from ledger_api.chain import signed_calls
from ledger_api.chain.abi import Call, contract_error_of, decode_result, encode
from ledger_api.chain.contract import Deployment
from ledger_api.chain.keystore import Keystore
from ledger_api.chain.writer import NODE_ERRORS, ChainWriter, TxState
from ledger_api.core import ids
from ledger_api.core.accounts import operator_of
from ledger_api.core.config import Settings
from ledger_api.core.errors import (
    ChainUnavailable,
    Conflict,
    ContractRejected,
    InvalidRequest,
    NotFound,
    Problem,
)
from ledger_api.core.hexes import hex0x
from ledger_api.core.security import Principal, require_charity
from ledger_api.mirror import tables as im
from ledger_api.transactions.coalesce import Combine, GroupCommit, Ticket

log = logging.getLogger("ledger_api.writes")


@dataclass(frozen=True)
class Step:
    """One transaction of a write: the call, the records it makes (kept with the
    transaction in the outbox) and, when the caller simulated it already, its gas."""

    call: Call
    records: dict[str, Any]
    gas: int | None = None


# How long a prepared SignedCall stays valid: long enough to sign by hand on a hardware
# wallet, short enough that a leaked signature is soon worthless.
SIGNED_CALL_LIFETIME = 3600

WriteMode = Literal["send", "prepare"]


class SignatureRequired(Conflict):
    """A plain write for a charity that holds its own key: the platform cannot sign it."""

    kind, title = "signature-required", "This charity signs its own records"


class NothingToSign(Conflict):
    kind, title = "nothing-to-sign", "The platform holds this charity's key"


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
    # Waits (block, timeout) for the in-process indexer to commit a block, asking it to
    # look now; False if it did not in time (None: another process indexes).
    wait_indexer: Callable[[int, float], bool] | None = None
    # Single writes of one signer sent together in one transaction (coalesce.py); None:
    # each is its own transaction (LEDGER_COALESCE_MAX=1).
    group_commit: GroupCommit | None = None
    # The relayer's group commit of single signed calls (one executeBatch per charity).
    relay_commit: GroupCommit | None = None
    # Per request (see `writes_for`): "prepare" answers the SignedCall a self-custody
    # charity signs instead of sending; `operator` picks which of its operators signs.
    mode: WriteMode = "send"
    operator: str | None = None
    _owners: dict[bytes, str] = field(default_factory=dict, repr=False)  # campaign -> charity
    _operators: dict[str, str] = field(default_factory=dict, repr=False)  # charity -> operator
    _self_custody: set[str] = field(default_factory=set, repr=False)  # charities with their own key
    _own_signers: set[str] = field(default_factory=set, repr=False)  # their operators (no keys here)

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

    def holds_own_key(self, charity_hex: str) -> bool:
        """Whether the charity is in self-custody (fixed at registration, so remembered
        once true): a charity with a platform-held operator is not; else the chain says."""
        if charity_hex in self._self_custody:
            return True
        if charity_hex in self._operators or operator_of(self.engine, self.deployment_id, charity_hex):
            return False
        try:
            held = bool(self.view("isSelfCustody", bytes.fromhex(charity_hex[2:]), missing="charity"))
        except (NotFound, KeyError):  # KeyError: a v1 contract has no self-custody
            return False
        if held:
            self._self_custody.add(charity_hex)
        return held

    def own_operators(self, charity_hex: str) -> list[str]:
        """A charity's active operator accounts, from the mirror, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(im.Operator.account)
                .where(
                    im.Operator.deployment_id == self.deployment_id,
                    im.Operator.charity_id == charity_hex,
                    im.Operator.active,
                )
                .order_by(im.Operator.block_number, im.Operator.account)
            ).scalars()
            return [str(r) for r in rows]

    def signing_operator(self, charity_hex: str) -> str:
        """Which of a self-custody charity's operators signs a prepared write: the one the
        request names (`operator`), else its first."""
        operators = self.own_operators(charity_hex)
        if self.operator is not None:
            chosen = [a for a in operators if a.lower() == self.operator.lower()]
            if not chosen:
                raise InvalidRequest(f"{self.operator} is not an operator of this charity")
        elif not operators:
            raise Conflict("this charity has no operator in the mirror yet; retry in a moment")
        operator = chosen[0] if self.operator is not None else operators[0]
        self._own_signers.add(operator)
        return operator

    def known_charity(self, charity_hex: str) -> None:
        """NotFound unless this service registered the charity or it holds its own key."""
        if not self.holds_own_key(charity_hex):
            self.find_charity(charity_hex)

    def operator_for(self, principal: Principal, charity_hex: str, what: str = "charity") -> str:
        """The signer for a write on `charity_hex` by `principal`: the charity's own
        operator (for a self-custody charity, the account that will sign the prepared
        call). Another charity's key is told the record does not exist."""
        require_charity(principal, charity_hex, what)
        if self.holds_own_key(charity_hex):
            return self.signing_operator(charity_hex)
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

    def submit(
        self, signer: str, charity_hex: str | None, steps: Sequence[Step], wait: bool
    ) -> list[TxState]:
        """Simulate every step (unless its gas is known), then put each in the outbox and
        send it, then settle them: nothing is signed unless every step would succeed.
        A self-custody charity's operator is never signed for: its steps are `prepare`d."""
        if signer != self.service_account and charity_hex and self.holds_own_key(charity_hex):
            return self.prepare(signer, steps)
        if self.mode == "prepare":
            raise NothingToSign(
                "the platform holds this charity's operator key: send the write without mode=prepare"
            )
        gases = [step.gas if step.gas is not None else self.simulate(signer, step.call) for step in steps]
        states = [
            self.writer.submit(signer, step.call, gas, charity_hex, step.records)
            for step, gas in zip(steps, gases, strict=True)
        ]
        return self.settle(states, wait)

    def write_one(
        self,
        principal: Principal,
        charity_hex: str,
        what: str,
        step: Step,
        row: tuple[Any, ...],
        combine: Combine,
        wait: bool,
    ) -> list[TxState]:
        """A write of one record that may share its transaction with others of the same
        kind and signer arriving together (group commit, coalesce.py): authorised, then
        `submit_one`. Self-custody and prepared writes are never grouped here (the charity
        signs each call; the relay groups the signed calls)."""
        signer = self.operator_for(principal, charity_hex, what)
        if (
            self.group_commit is None
            or self.mode != "send"
            or signer in self._own_signers
            or self.holds_own_key(charity_hex)
        ):
            return self.submit(signer, charity_hex, [step], wait)
        return self.submit_one(self.group_commit, signer, charity_hex, step, row, combine, wait)

    def submit_one(
        self,
        group_commit: GroupCommit,
        signer: str,
        charity_hex: str,
        step: Step,
        row: tuple[Any, ...],
        combine: Combine,
        wait: bool,
    ) -> list[TxState]:
        """Send `step` in `signer`'s next group for the charity, as `combine`'s call of the
        group's rows, and settle it. If the group's transaction reverts when mined,
        nothing of it was recorded: this step is simulated and sent again alone."""
        ticket = Ticket(row=row, ids=list(step.records.get("ids", [])), records=step.records)
        group_commit.join(signer, charity_hex, str(step.records["kind"]), combine, ticket)
        group = ticket.submitted()
        assert group.state is not None
        if not wait:
            group.release()  # nobody settles it here: the next group need not wait for it
            return [group.state]
        try:
            return group.settle(lambda states: self.settle(states, wait))
        except ContractRejected as rejected:
            if group.size == 1:
                raise
            log.info("a group of %d writes reverted when mined (%s); each goes alone", group.size, rejected)
            return self.submit(signer, charity_hex, [replace(step, gas=None)], wait)

    def prepare(self, operator: str, steps: Sequence[Step]) -> list[TxState]:
        """The SignedCall of each step for `operator` to sign, each simulated as that
        operator first (a would-be revert is a 409 naming the error, nothing prepared).
        Each has a fresh random nonce (unordered: 50 in flight need no order) and a
        deadline SIGNED_CALL_LIFETIME from now. Nothing is stored or sent."""
        if self.mode != "prepare":
            raise SignatureRequired(
                "this charity holds its own operator key, so the platform cannot sign its records:"
                " ask again with ?mode=prepare, sign the answer's typed data with the charity's key"
                " (`ledger donate ... --keystore`), and submit it to POST /v1/relay",
                operator=operator,
            )
        for step in steps:
            if step.gas is None:
                self.writer.check(operator, step.call)
        deadline = int(time.time()) + SIGNED_CALL_LIFETIME
        chain_id, contract = self.deployment.chain_id, self.deployment.address
        states = []
        for step in steps:
            call = signed_calls.SignedCall(operator, step.call.data, signed_calls.new_nonce(), deadline)
            prepared = {
                "function": step.call.fn_name,
                "records": step.records,
                "typed_data": signed_calls.typed_data(call, chain_id, contract),
                "digest": hex0x(signed_calls.digest(call, chain_id, contract)),
            }
            states.append(
                TxState(
                    id="",
                    tx_hash="",
                    signer=operator,
                    nonce=0,
                    status="prepared",
                    records=step.records,
                    block_number=None,
                    block_hash=None,
                    error=None,
                    prepared=prepared,
                )
            )
        return states

    def simulate(self, signer: str, call: Call) -> int:
        """The gas to send `call` with; ContractRejected (409) when it would revert. A
        self-custody charity's operator only checks the call (it has no gas money and
        sends nothing: the relayer's `execute` is estimated when it is submitted): 0."""
        if signer in self._own_signers:
            self.writer.check(signer, call)
            return 0
        return self.writer.simulate(signer, call)

    def settle(self, states: list[TxState], wait: bool) -> list[TxState]:
        """Wait for every transaction (if asked); a transaction that reverted when mined
        (the chain changed between simulation and mining) is a 409 naming the error."""
        if not wait or any(s.status == "prepared" for s in states):
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
        """Whether the mirror indexed `block_number` within `timeout` seconds. The
        in-process indexer wakes the wait when it commits; the database is asked between
        short waits, for an indexer in another process (or one standing by)."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        wake = self.wait_indexer
        while True:
            indexed = self.mirrored_block()
            if indexed is not None and indexed >= block_number:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if wake is not None:
                began, slice_ = time.monotonic(), min(left, 0.05)
                if wake(block_number, slice_) or time.monotonic() - began < slice_ / 2:
                    # Committed (the database says so next, unless a reorg undid it), or a
                    # standby that answered at once: the database is asked from now on.
                    wake = None
                continue
            time.sleep(min(left, delay))
            delay = min(0.05, delay * 2)

    # ------------------------------------------------------------ answers

    def transaction_view(self, state: TxState) -> dict[str, Any]:
        if state.prepared is not None:
            return {"status": "prepared"}
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
    or the mirror has not caught up yet (then the body says `"mirrored": false`). A prepared
    self-custody write answers 200 with the calls to sign and the records they will make
    (with any receipt secret: it is in the signed data's commitment, kept by nobody else)."""
    if any(s.prepared is not None for s in states):
        records = {k: v for k, v in body.items() if k not in ("transaction", "transactions")}
        return JSONResponse(
            {"mode": "prepare", "records": records, "signed_calls": [s.prepared for s in states]},
            status_code=200,
        )
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


ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"


def writes_for(
    request: Request,
    mode: Annotated[
        WriteMode,
        Query(
            description="prepare: for a charity that holds its own key, answer the EIP-712 "
            "SignedCall(s) to sign (simulated, nothing sent); submit them to POST /v1/relay."
        ),
    ] = "send",
    operator: Annotated[
        str | None,
        Query(pattern=ADDRESS_PATTERN, description="With mode=prepare: which operator of the charity signs."),
    ] = None,
) -> Writes:
    """The write gateway for one write request (its mode and signing operator)."""
    writes = current_writes(request)
    if mode == "send" and operator is None:
        return writes
    return replace(writes, mode=mode, operator=operator)


WritesDep = Annotated[Writes, Depends(writes_for)]
# The gateway for routes that only read what the writer knows (transaction status).
WriterDep = Annotated[Writes, Depends(current_writes)]
WaitParam = Annotated[
    bool, Query(description="Answer once the transaction is mined (default); false: 202 at once.")
]
