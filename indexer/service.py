"""Running the indexer: the deployment row it mirrors, and a background thread for the
API process (`ledger dev`, `ledger serve`) that holds the single-writer lock."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from sqlalchemy import Engine, insert, select
from web3 import Web3

from indexer.indexer import Indexer, IndexerConfig, RangeReport
from indexer.lock import LockLost, WriterLock
from ledger_api.chain.abi import decode_result, encode, load_artifact
from ledger_api.core.models import Deployment

log = logging.getLogger("indexer")


def ensure_deployment(engine: Engine, w3: Web3, address: str) -> int:
    """The id of the deployment row for `address` on the node's chain, created on first
    use from the contract itself (it knows the block it was deployed in)."""
    address = Web3.to_checksum_address(address)
    chain_id = w3.eth.chain_id
    with engine.begin() as connection:
        found = connection.execute(
            select(Deployment.id).where(Deployment.chain_id == chain_id, Deployment.address == address)
        ).scalar_one_or_none()
        if found is not None:
            return int(found)
        return int(
            connection.execute(
                insert(Deployment)
                .values(
                    chain_id=chain_id,
                    address=address,
                    deployment_block=_deployment_block(w3, address),
                    source_hash=load_artifact()["sourceHash"],
                )
                .returning(Deployment.id)
            ).scalar_one()
        )


def _deployment_block(w3: Web3, address: str) -> int:
    """The block the contract was deployed in, as the contract itself says."""
    answer = w3.eth.call({"to": address, "data": encode("deploymentBlock").data})
    return int(decode_result("deploymentBlock", bytes(answer))[0])


class BackgroundIndexer:
    """The indexer on a daemon thread: waits for the writer lock, then follows the chain
    until stopped. If another process holds the lock, this one stands by (the API still
    serves what the other writes)."""

    def __init__(self, w3: Web3, engine: Engine, deployment_id: int, config: IndexerConfig) -> None:
        self.indexer = Indexer(w3, engine, deployment_id, config, on_range=self._indexed)
        # The highest block committed by this thread, and who waits for it (wait_for).
        self._indexed_to = -1
        self._progress = threading.Condition()
        self.lock = WriterLock(engine, self.indexer.chain_id, self.indexer.address)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._main, name="indexer", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        """Start following the chain (once: `ledger dev --demo` starts it before the server
        does, so that the demo's writes are mirrored as they are made)."""
        if not self.thread.is_alive() and not self.stop_event.is_set():
            with contextlib.suppress(RuntimeError):  # started meanwhile by another caller
                self.thread.start()

    def _main(self) -> None:
        while not self.stop_event.is_set():
            if not self.lock.acquire(poll=1.0, stop=self.stop_event.is_set):
                return
            try:
                self.indexer.run(self.stop_event, self.lock)
            except LockLost as exc:
                log.error("%s; standing by", exc)
            except BaseException as exc:  # pragma: no cover - run() retries everything else
                self.error = exc
                log.exception("indexer thread stopped")
                return
            finally:
                self.lock.release()

    def _indexed(self, report: RangeReport) -> None:
        with self._progress:
            self._indexed_to = max(self._indexed_to, report.end)
            self._progress.notify_all()

    def wait_for(self, block_number: int, timeout: float) -> bool:
        """Whether this indexer committed `block_number` within `timeout` seconds: looks
        now (nudge) and is woken by the commit itself, so a write's answer waits for its
        block's commit and not for a poll interval. False when it did not (another
        process may hold the writer lock: the caller then asks the database; a standby
        says so at once)."""
        if not self.lock.held:
            return False
        self.indexer.nudge()
        deadline = time.monotonic() + timeout
        with self._progress:
            while self._indexed_to < block_number:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._progress.wait(left)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self.indexer.nudge()  # ends its wait between polls
        self.thread.join(timeout)

    def status(self) -> dict[str, Any]:
        return {"running": self.thread.is_alive(), "reorgs": self.indexer.reorgs}
