"""Writing to the chain: simulate, allocate a nonce, sign, persist, send, track.

1. `simulate` runs the call from the signer (over HTTP `eth_createAccessList`, which
   answers the gas used from one execution, else `eth_estimateGas`; `check` is a plain
   `eth_call`). A call the contract would reject raises ContractRejected with the
   decoded custom error; nothing is signed and no nonce is used. A node that does not
   answer raises ChainUnavailable.
2. `submit` allocates the signer's next nonce with an atomic UPDATE ... RETURNING (a row
   lock on PostgreSQL, the database write lock on SQLite), signs, and stores the signed
   bytes in the outbox (`chain_transactions`) in the same transaction. Only after that
   commit is the transaction sent. A crash before the send, or a send the node did not
   take, leaves the row `signed`; `recover` sends it again as the same bytes.
3. `wait` follows the transaction to its receipt (`mined`, or `failed` with the decoded
   revert); `recover` does the same for transactions nobody waits for.

Within one process, sends for one signer happen in nonce order (a lock per signer
around allocate-sign-store-send); across processes the node's queue orders them.

Fault injection: `ChainWriter(..., fault_injection=hook)` calls `hook(point)` at two
points of `submit`, "after-sign" (the signed bytes are committed to the outbox, nothing
is sent) and "after-send" (the node has the transaction, the outbox still says
`signed`). The crash tests use it to kill the process there, as a power cut would, and
prove the outbox recovers. The hook is None (the points do nothing) unless `ledger dev`
in development is given LEDGER_CRASH_AT (ledger_api/chain/faults.py); `ledger serve`
and production never set it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from eth_typing import HexStr
from eth_utils import to_checksum_address
from requests.exceptions import RequestException
from sqlalchemy import Engine, insert, select, update
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import TimeExhausted, TransactionNotFound, Web3RPCError

from ledger_api.chain.abi import Call, as_call, contract_error_of
from ledger_api.chain.keystore import Keystore
from ledger_api.chain.rpc import Rpc, RpcError
from ledger_api.core import ids
from ledger_api.core.db import insert_ignore
from ledger_api.core.errors import ChainUnavailable, ContractRejected, WriteTimeout
from ledger_api.core.hexes import hex0x, unhex
from ledger_api.core.idempotency_store import expire as forget_old_answers
from ledger_api.core.models import ChainTransaction, Signer

log = logging.getLogger("ledger_api.writer")

NODE_ERRORS = (ConnectionError, TimeoutError, OSError, RequestException)

# Called with the name of a fault-injection point ("after-sign", "after-send"); see above.
FaultInjection = Callable[[str], None]


@dataclass(frozen=True)
class TxState:
    id: str
    tx_hash: str
    signer: str
    nonce: int
    status: str
    records: dict[str, Any]
    block_number: int | None
    block_hash: str | None
    error: dict[str, Any] | None
    # Whether the SQL mirror has indexed the transaction's block (None: not asked).
    mirrored: bool | None = None
    # A self-custody write that was prepared, not sent: the SignedCall for the charity
    # to sign (status "prepared"; nothing is in the outbox).
    prepared: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        return self.status in ("mined", "failed")


def _state(row: Any) -> TxState:
    return TxState(
        id=row.id,
        tx_hash=row.tx_hash,
        signer=row.signer,
        nonce=row.nonce,
        status=row.status,
        records=json.loads(row.records),
        block_number=row.block_number,
        block_hash=row.block_hash,
        error=json.loads(row.error) if row.error else None,
    )


class ChainWriter:
    def __init__(
        self,
        w3: Web3,
        engine: Engine,
        keystore: Keystore,
        address: str,
        fault_injection: FaultInjection | None = None,
    ) -> None:
        self.w3 = w3
        self.rpc = Rpc(w3)
        self.address = to_checksum_address(address)
        self.engine = engine
        self.keystore = keystore
        self.chain_id = w3.eth.chain_id
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._fees: tuple[float, dict[str, int]] | None = None
        self._known_signers: set[str] = set()
        # Whether the node answers eth_createAccessList (see _gas_used).
        self._access_lists = True
        self.fault_injection = fault_injection

    # ------------------------------------------------------------ simulate

    def simulate(self, signer: str, call: Call | ContractFunction) -> int:
        """The gas limit to send `call` with; ContractRejected if it would revert."""
        encoded = as_call(call)
        data = HexStr(hex0x(encoded.data))
        request = {"from": to_checksum_address(signer), "to": self.address, "data": data}
        try:
            # Over HTTP raw: web3's request path cost more than the node's estimate.
            estimate = self._gas_used(request) if self.rpc.http else self.w3.eth.estimate_gas(request)  # type: ignore[arg-type]
        except Exception as exc:
            raise _rejection(exc) from None
        return int(estimate * 1.25) + 20_000

    def _gas_used(self, request: dict[str, Any]) -> int:
        """The gas `request` uses, from one execution: `eth_createAccessList` answers the
        gas used (within 0.5% of the receipt's, measured on anvil; `simulate` adds its
        margin), where `eth_estimateGas` searches for the limit by running the call again
        and again (a 500-donation batch: 71 ms against 6 ms). A node without the method
        (remembered), or one that answers a revert without its data (geth puts the
        message in the answer), gets `eth_estimateGas`, which raises the contract's error."""
        if self._access_lists:
            try:
                answer = self.rpc.request("eth_createAccessList", [request, "latest"])
            except RpcError as exc:
                if not _unsupported(exc):
                    raise
                self._access_lists = False
            else:
                if isinstance(answer, dict) and not answer.get("error") and answer.get("gasUsed"):
                    return int(answer["gasUsed"], 16)
        return int(self.rpc.request("eth_estimateGas", [request]), 16)

    def check(self, account: str, call: Call | ContractFunction) -> None:
        """Whether `call` from `account` would succeed (`eth_call`: the account needs no gas
        money, as a self-custody charity's key that the relayer pays for); ContractRejected
        naming the error if it would revert."""
        encoded = as_call(call)
        data = HexStr(hex0x(encoded.data))
        request = {"from": to_checksum_address(account), "to": self.address, "data": data}
        try:
            if self.rpc.http:
                self.rpc.request("eth_call", [request, "latest"])
            else:
                self.w3.eth.call(request)  # type: ignore[arg-type]
        except Exception as exc:
            raise _rejection(exc) from None

    def check_each(self, account: str, calls: Sequence[Call]) -> list[ContractRejected | None]:
        """`check` every call on its own, in one JSON-RPC batch over HTTP: None for a call
        that would succeed, the ContractRejected naming its error for one that would
        not. A node that does not answer raises (ChainUnavailable), as `check` does."""
        if not self.rpc.http:
            return [_checked(partial(self.check, account, call)) for call in calls]
        sender = to_checksum_address(account)
        requests_ = [
            ("eth_call", [{"from": sender, "to": self.address, "data": hex0x(call.data)}, "latest"])
            for call in calls
        ]
        try:
            answers = self.rpc.batch(requests_)
        except Exception as exc:
            raise _rejection(exc) from None
        verdicts: list[ContractRejected | None] = []
        for answer in answers:
            if "result" in answer:
                verdicts.append(None)
                continue
            rejection = _rejection(RpcError(answer.get("error") or {"message": "no answer"}))
            if not isinstance(rejection, ContractRejected):
                raise rejection
            verdicts.append(rejection)
        return verdicts

    def _fee_fields(self) -> dict[str, int]:
        now = time.monotonic()
        if self._fees is None or now - self._fees[0] > 2.0:
            try:
                base = int(self.w3.eth.get_block("latest").get("baseFeePerGas") or 0)
            except NODE_ERRORS as exc:
                raise ChainUnavailable(f"the chain node did not answer ({type(exc).__name__})") from None
            tip = 10**9
            self._fees = (now, {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip})
        return self._fees[1]

    # -------------------------------------------------------------- submit

    def _lock_for(self, signer: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(signer, threading.Lock())

    def _ensure_signer(self, signer: str) -> None:
        if signer in self._known_signers:  # rows are never deleted: ask the database once
            return
        with self.engine.connect() as connection:
            known = connection.execute(
                select(Signer.next_nonce).where(Signer.chain_id == self.chain_id, Signer.address == signer)
            ).scalar_one_or_none()
        if known is None:
            try:
                pending = self.w3.eth.get_transaction_count(to_checksum_address(signer), "pending")
            except NODE_ERRORS as exc:
                raise ChainUnavailable(
                    f"the chain node did not answer ({type(exc).__name__}); nothing was recorded"
                ) from None
            with self.engine.begin() as connection:
                insert_ignore(
                    connection,
                    Signer.__table__,  # type: ignore[arg-type]
                    [{"chain_id": self.chain_id, "address": signer, "next_nonce": pending}],
                )
        self._known_signers.add(signer)

    def submit(
        self,
        signer: str,
        call: Call | ContractFunction,
        gas: int,
        charity_id: str | None,
        records: dict[str, Any],
    ) -> TxState:
        """Sign, persist and send `call` (already simulated). Returns its state."""
        encoded = as_call(call)
        self._ensure_signer(signer)
        transaction: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "to": self.address,
            "data": encoded.data,
            "value": 0,
            "gas": gas,
            **self._fee_fields(),
        }
        tx_id = str(uuid.uuid4())
        with self._lock_for(signer):
            with self.engine.begin() as connection:
                nonce = (
                    connection.execute(
                        update(Signer)
                        .where(Signer.chain_id == self.chain_id, Signer.address == signer)
                        .values(next_nonce=Signer.next_nonce + 1)
                        .returning(Signer.next_nonce)
                    ).scalar_one()
                    - 1
                )
                transaction["nonce"] = nonce
                raw, tx_hash = self.keystore.sign_transaction(signer, transaction)
                connection.execute(
                    insert(ChainTransaction).values(
                        id=tx_id,
                        chain_id=self.chain_id,
                        signer=signer,
                        nonce=nonce,
                        function=encoded.fn_name,
                        charity_id=charity_id,
                        records=json.dumps(records),
                        raw_tx=hex0x(raw),
                        tx_hash=hex0x(tx_hash),
                        status="signed",
                    )
                )
            self._fault_point("after-sign")
            taken = self._send_raw(tx_id, raw)
            self._fault_point("after-send")
        if taken:
            self._mark_sent(tx_id)
        return self.state(tx_id)

    def _fault_point(self, name: str) -> None:
        if self.fault_injection is not None:
            self.fault_injection(name)

    def _send(self, tx_id: str, raw: bytes) -> bool:
        """Send signed bytes; True if the node has the transaction (now or already)."""
        if self._send_raw(tx_id, raw):
            self._mark_sent(tx_id)
            return True
        return False

    def _send_raw(self, tx_id: str, raw: bytes) -> bool:
        try:
            if self.rpc.http:
                self.rpc.request("eth_sendRawTransaction", [hex0x(raw)])
            else:
                self.w3.eth.send_raw_transaction(raw)
        except NODE_ERRORS as exc:
            log.warning("could not send transaction %s (%s); it stays queued", tx_id, type(exc).__name__)
            return False
        except Exception as exc:
            message = str(exc).lower()
            if "already" not in message and "known" not in message and "nonce too low" not in message:
                # The node refused the bytes themselves: record why; recover() retries.
                log.warning("node refused transaction %s: %s", tx_id, str(exc)[:200])
                return False
        return True

    def _mark_sent(self, tx_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(ChainTransaction)
                .where(ChainTransaction.id == tx_id, ChainTransaction.status == "signed")
                .values(status="sent")
            )

    # --------------------------------------------------------------- track

    def state(self, tx_id: str) -> TxState:
        with self.engine.connect() as connection:
            row = connection.execute(select(ChainTransaction).where(ChainTransaction.id == tx_id)).one()
        return _state(row)

    def find(self, tx_id: str) -> tuple[TxState, str | None] | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(ChainTransaction).where(ChainTransaction.id == tx_id)
            ).one_or_none()
        return (_state(row), row.charity_id) if row is not None else None

    def _check_receipt(self, state: TxState) -> TxState:
        receipt = self._receipt(state.tx_hash)
        if receipt is None:
            return state
        status = "mined" if receipt["status"] == 1 else "failed"
        error = None
        if status == "failed":
            error = json.dumps(self._failure_reason(state))
        with self.engine.begin() as connection:
            connection.execute(
                update(ChainTransaction)
                .where(ChainTransaction.id == state.id, ChainTransaction.status.in_(["signed", "sent"]))
                .values(
                    status=status,
                    block_number=receipt["blockNumber"],
                    block_hash=receipt["blockHash"],
                    gas_used=receipt["gasUsed"],
                    error=error,
                )
            )
        return self.state(state.id)

    def _receipt(self, tx_hash: str) -> dict[str, Any] | None:
        """The receipt's status, block and gas, or None if not mined yet. Read raw, past
        web3's result formatters: a batch's receipt carries 500 logs, and formatting them
        cost more than everything else the write does."""
        return self.rpc.receipt(tx_hash)

    def _failure_reason(self, state: TxState) -> dict[str, Any]:
        """Why a mined transaction reverted: replay it at its block's parent."""
        try:
            tx = self.w3.eth.get_transaction(state.tx_hash)  # type: ignore[arg-type]
            self.w3.eth.call(
                {"from": tx["from"], "to": tx["to"], "data": tx["input"], "gas": tx["gas"]},
                tx["blockNumber"] - 1,
            )
        except NODE_ERRORS:
            return {"name": "Unknown", "args": {}}
        except Exception as exc:
            error = contract_error_of(exc)
            if error is not None:
                return {"name": error.name, "args": _jsonable(error.as_dict())}
            return {"name": "Reverted", "args": {"message": str(exc)[:200]}}
        return {"name": "Reverted", "args": {}}

    def wait(self, tx_id: str, timeout: float) -> TxState:
        deadline = time.monotonic() + timeout
        delay = 0.002
        state = self.state(tx_id)
        while True:
            if state.status == "signed":
                raw = unhex(self._raw(tx_id))
                if not self._send(tx_id, raw):
                    # The node may have taken it and only the answer got lost: look once.
                    with contextlib.suppress(*NODE_ERRORS):
                        state = self._check_receipt(state)
                    if state.done:
                        return state
                    raise ChainUnavailable(
                        "the chain node could not be reached to confirm the transaction; it is stored"
                        " and will be sent (again, as the same bytes) until it is mined",
                        transaction=tx_id,
                    )
                state = self.state(tx_id)
            with contextlib.suppress(*NODE_ERRORS):
                state = self._check_receipt(state)
            if state.done:
                return state
            if time.monotonic() > deadline:
                raise WriteTimeout(
                    f"transaction {state.tx_hash} is not mined after {timeout:.0f} s; it is tracked",
                    transaction=tx_id,
                )
            time.sleep(delay)
            delay = min(0.25, delay * 2)

    def _raw(self, tx_id: str) -> str:
        with self.engine.connect() as connection:
            return str(
                connection.execute(
                    select(ChainTransaction.raw_tx).where(ChainTransaction.id == tx_id)
                ).scalar_one()
            )

    def recover(self) -> int:
        """Send again what was signed but not sent, re-send what the node lost, and
        record receipts nobody waited for. Returns how many transactions were pending."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(ChainTransaction)
                .where(
                    ChainTransaction.chain_id == self.chain_id,
                    ChainTransaction.status.in_(["signed", "sent"]),
                )
                .order_by(ChainTransaction.signer, ChainTransaction.nonce)
            ).all()
        for row in rows:
            state = _state(row)
            try:
                state = self._check_receipt(state)
                if state.done:
                    continue
                if state.status == "signed" or self._node_lost(state):
                    log.info("re-sending transaction %s (nonce %d) as the same bytes", state.id, state.nonce)
                    if self._send(state.id, unhex(row.raw_tx)):
                        self._check_receipt(self.state(state.id))
            except NODE_ERRORS:
                return len(rows)
        return len(rows)

    def _node_lost(self, state: TxState) -> bool:
        try:
            self.w3.eth.get_transaction(state.tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return True
        return False


def _checked(check: Callable[[], None]) -> ContractRejected | None:
    try:
        check()
    except ContractRejected as rejected:
        return rejected
    return None


def _unsupported(exc: RpcError) -> bool:
    """Whether the node refused a method it does not have (not the call itself)."""
    error = exc.error if isinstance(exc.error, dict) else {}
    message = str(error.get("message", "")).lower()
    missing = any(
        words in message for words in ("not supported", "not found", "does not exist", "unsupported")
    )
    return error.get("code") in (-32601, -32600) or ("method" in message and missing)


def _rejection(exc: Exception) -> Exception:
    """What a failed simulation raises: ChainUnavailable when the node did not answer,
    ContractRejected naming the custom error, or the exception itself if unexpected."""
    if isinstance(exc, NODE_ERRORS):
        return ChainUnavailable(f"the chain node did not answer ({type(exc).__name__}); nothing was recorded")
    error = contract_error_of(exc)
    if error is None:
        if isinstance(exc, Web3RPCError | ValueError):
            return ContractRejected(f"the node rejects this call: {str(exc)[:200]}")
        return exc
    return ContractRejected(
        f"the ledger contract rejects this record: {error.name}",
        error={"name": error.name, "args": _jsonable(error.as_dict())},
    )


def _jsonable(value: Any) -> Any:
    """A decoded custom error's arguments as JSON: a record ID as people write it (DN-...,
    as on receipts; other 32-byte values as hex), amounts past 2**53 as strings."""
    if isinstance(value, bytes) and len(value) == 32:
        return ids.from_bytes32(value)
    if isinstance(value, bytes):
        return hex0x(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return str(value)
    return value


class OutboxWorker:
    """Runs ChainWriter.recover every few seconds on a daemon thread."""

    def __init__(self, writer: ChainWriter, interval: float = 2.0) -> None:
        self.writer = writer
        self.interval = interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._main, name="outbox", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _main(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.writer.recover()
                self.forget_old_answers()
            except Exception:
                log.exception("outbox recovery failed; retrying")
            self.stop_event.wait(self.interval)

    def forget_old_answers(self) -> None:
        forget_old_answers(self.writer.engine)

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)


__all__ = ["ChainWriter", "FaultInjection", "OutboxWorker", "TimeExhausted", "TxState"]
