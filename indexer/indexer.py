"""The indexer: follows one ledger deployment's events over JSON-RPC into SQL.

One step reads the next block range with a single `eth_getLogs` for all ledger events,
checks it links to what is stored (parent hash of the range's first block equals the
cursor's hash; every log's block hash equals its block header's), and writes the
range's rows, block hashes and the new cursor in one transaction. On a mismatch it walks
back to the highest stored block still on the canonical chain, deletes everything above
it in one transaction (see projections.rollback_above) and goes on from there.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from requests.exceptions import ReadTimeout
from sqlalchemy import Engine, delete, select
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_not_exception_type,
    stop_when_event_set,
    wait_exponential_jitter,
)
from web3 import Web3

from indexer import metrics
from indexer import models as m
from indexer.decoder import DecodedLog, LogDecoder
from indexer.lock import LockLost, WriterLock
from indexer.projections import apply_logs, rollback_above
from ledger_api.chain.rpc import Rpc
from ledger_api.core.db import insert_ignore
from ledger_api.core.hexes import hex0x
from ledger_api.core.models import Deployment

log = logging.getLogger("indexer")

_LIMIT_HINT = re.compile(r"(?:max(?:imum)?|limit(?:ed)?(?: to)?|up to)\D{0,20}(\d+)", re.IGNORECASE)


@dataclass
class IndexerConfig:
    # Blocks behind the head before a record counts as final.
    confirmations: int = 12
    # First and largest block span of one eth_getLogs; the span doubles after each
    # answered query and halves (or drops to the node's stated limit) when refused.
    initial_range: int = 2_000
    max_range: int = 100_000
    # A range whose eth_getLogs takes longer than this is halved next time, so one
    # step never holds the indexer long on a slow node (see README: eth-tester).
    target_seconds: float = 1.0
    # A range that returns more logs than this is halved next time (memory, step length).
    max_logs: int = 20_000
    # Seconds between polls once caught up with the head.
    poll_interval: float = 0.5
    # Longest wait between retries when the node or the database fails.
    max_backoff: float = 30.0
    # Block hashes kept below the finalized height (besides blocks holding events),
    # so a reorg deeper than the confirmation window still finds a common ancestor.
    reorg_window: int = 256


@dataclass(frozen=True)
class RangeReport:
    """What one step did: for progress bars, logs and metrics."""

    start: int
    end: int
    head: int
    finalized: int
    events: int
    seconds: float

    @property
    def caught_up(self) -> bool:
        return self.end >= self.head


def _waiter(stop: threading.Event) -> Callable[[float], None]:
    """A sleep for tenacity that ends at once when the indexer is told to stop."""

    def sleep(seconds: float) -> None:
        stop.wait(seconds)

    return sleep


class Indexer:
    def __init__(
        self,
        w3: Web3,
        engine: Engine,
        deployment_id: int,
        config: IndexerConfig | None = None,
        on_range: Callable[[RangeReport], None] | None = None,
    ) -> None:
        self.w3 = w3
        self.engine = engine
        self.config = config or IndexerConfig()
        self.on_range = on_range
        self.decoder = LogDecoder()
        with engine.connect() as connection:
            row = connection.execute(
                select(Deployment.chain_id, Deployment.address, Deployment.deployment_block).where(
                    Deployment.id == deployment_id
                )
            ).one()
        self.deployment_id = deployment_id
        self.chain_id = row.chain_id
        self.address = Web3.to_checksum_address(row.address)
        self.start_block = row.deployment_block
        self.range = min(self.config.initial_range, self.config.max_range)
        self.reorgs = 0
        self.labels = {"chain_id": str(self.chain_id), "contract": self.address}
        # eth_getLogs over HTTP is read raw (chain/rpc.py): the answers are large and
        # json + web3's formatters were most of a backfill's read time.
        self.rpc = Rpc(w3)
        # Set by nudge(): a write was just mined, look now rather than at the next poll.
        self._wake = threading.Event()

    # ---------------------------------------------------------------- state

    def cursor(self) -> tuple[int, str] | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(m.Cursor.block_number, m.Cursor.block_hash).where(
                    m.Cursor.deployment_id == self.deployment_id
                )
            ).one_or_none()
        return (row[0], row[1]) if row else None

    # ----------------------------------------------------------------- loop

    def run(self, stop: threading.Event | None = None, lock: WriterLock | None = None) -> None:
        """Index until `stop` is set. A failed step (node gone, database down) is retried
        with exponential backoff and jitter; the cursor makes the retry exact. If `lock` is
        given, losing it ends the run (LockLost) so that a standby can take over."""
        stop = stop or threading.Event()
        retrying = Retrying(
            retry=retry_if_not_exception_type(LockLost),
            wait=wait_exponential_jitter(multiplier=0.25, max=self.config.max_backoff, jitter=0.25),
            stop=stop_when_event_set(stop),
            sleep=_waiter(stop),
            before_sleep=self._before_retry,
            reraise=True,
        )
        while not stop.is_set():
            try:
                caught_up = retrying(self._guarded_step, lock)
            except LockLost:
                raise
            except Exception:
                if stop.is_set():
                    return
                raise
            if caught_up:
                self._wake.wait(self.config.poll_interval)
                self._wake.clear()

    def nudge(self) -> None:
        """Look at the chain now instead of at the next poll (the API calls this when a
        write it waits for is mined, so that its answer can wait for the mirror briefly)."""
        self._wake.set()

    def _guarded_step(self, lock: WriterLock | None) -> bool:
        if lock is not None:
            lock.check()
        return self.step()

    def _before_retry(self, state: RetryCallState) -> None:
        metrics.ERRORS.labels(**self.labels).inc()
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "indexer step failed (%s: %s); attempt %d, retrying in %.1f s",
            type(exc).__name__,
            str(exc)[:200],
            state.attempt_number,
            wait,
            extra={"attempt": state.attempt_number, "retry_in": round(wait, 2)},
        )
        log.debug("indexer step failure", exc_info=exc)

    def sync(self) -> None:
        """Index up to the current head (for tests and one-shot runs)."""
        while not self.step():
            pass

    def step(self) -> bool:
        """Index one range; return True when caught up with the head."""
        began = time.perf_counter()
        head = self.w3.eth.block_number
        cursor = self.cursor()
        # A tip above the head means the chain got shorter: that tip is gone too.
        if cursor is not None and (cursor[0] > head or not self._canonical(*cursor)):
            self._rewind(cursor[0], head)
            return False
        start = cursor[0] + 1 if cursor else self.start_block
        if start > head:
            return True
        end = min(head, start + self.range - 1)
        logs = self._get_logs(start, end)
        if logs is None:
            return False
        # Every block of the unfinalized window (and the reorg window below it) keeps its
        # hash, so a rewind finds the real fork point; further back, only blocks with
        # events and range ends do, which keeps a backfill to a few header reads.
        window = max(start, head - self.config.confirmations - self.config.reorg_window)
        headers = self._headers({lg.block_number for lg in logs} | {start, end} | set(range(window, end + 1)))
        if cursor is not None and headers[start]["parentHash"] != cursor[1]:
            return False  # the chain changed under us: the next step rewinds
        if any(hex0x(lg.block_hash) != headers[lg.block_number]["hash"] for lg in logs):
            return False  # logs and headers from different forks: read the range again
        finalized = self._write(logs, headers, end, head)
        self._report(RangeReport(start, end, head, finalized, len(logs), time.perf_counter() - began))
        return end >= head

    def _report(self, report: RangeReport) -> None:
        labels = self.labels
        metrics.INDEXED_BLOCK.labels(**labels).set(report.end)
        metrics.HEAD_BLOCK.labels(**labels).set(report.head)
        metrics.FINALIZED_BLOCK.labels(**labels).set(report.finalized)
        metrics.LAG_BLOCKS.labels(**labels).set(report.head - report.end)
        metrics.EVENTS.labels(**labels).inc(report.events)
        metrics.RANGE_SECONDS.labels(**labels).observe(report.seconds)
        # Per-range lines only once caught up: during a backfill the progress bar speaks.
        level = logging.INFO if report.caught_up and report.events else logging.DEBUG
        log.log(
            level,
            "indexed blocks %d-%d: %d events",
            report.start,
            report.end,
            report.events,
            extra={
                "from_block": report.start,
                "to_block": report.end,
                "head_block": report.head,
                "finalized_block": report.finalized,
                "events": report.events,
                "ms": round(report.seconds * 1000, 1),
            },
        )
        if self.on_range is not None:
            self.on_range(report)

    # ------------------------------------------------------------- reading

    def read_logs(self, start: int, end: int) -> Iterator[list[DecodedLog]]:
        """Every ledger log of blocks start..end, straight from the node, in ranges that
        adapt as the indexer's do (the reconciler re-reads the chain through this)."""
        block = start
        while block <= end:
            upper = min(end, block + self.range - 1)
            logs = self._get_logs(block, upper)
            if logs is None:
                continue  # the range shrank: try again
            yield logs
            block = upper + 1

    def _get_logs(self, start: int, end: int) -> list[DecodedLog] | None:
        began = time.perf_counter()
        try:
            raw = self._fetch_logs(start, end)
        except (ReadTimeout, TimeoutError) as exc:  # too much for the node in time: shrink
            span = end - start + 1
            if span == 1:
                raise
            self.range = max(1, span // 2)
            log.info(
                "eth_getLogs over %d blocks timed out (%s); trying %d", span, type(exc).__name__, self.range
            )
            return None
        except (ConnectionError, OSError):
            raise
        except Exception as exc:  # the node refused the range: shrink it
            message = str(exc)
            hint = _LIMIT_HINT.search(message)
            span = end - start + 1
            limit = int(hint.group(1)) if hint else 0
            self.range = max(1, min(span // 2, limit) if 0 < limit < span else span // 2)
            metrics.REFUSED.labels(**self.labels).inc()
            log.info("eth_getLogs refused %d blocks (%s); trying %d", span, message[:120], self.range)
            if span == 1:
                raise
            return None
        span = end - start + 1
        if time.perf_counter() - began > self.config.target_seconds or len(raw) > self.config.max_logs:
            self.range = max(1, span // 2)  # slow or heavy: smaller ranges keep steps short
        else:
            self.range = min(self.config.max_range, self.range * 2)
        decode = self.decoder.decode
        decoded = [decode(entry) for entry in raw]
        return [d for d in decoded if d is not None]

    def _fetch_logs(self, start: int, end: int) -> list[dict[str, Any]]:
        """All ledger logs of a block range, raw over HTTP (the decoder reads the hex)."""
        return self.rpc.get_logs(self.address, start, end, self.decoder.topics)

    def _headers(self, numbers: set[int]) -> dict[int, dict[str, Any]]:
        headers = {}
        for number in sorted(numbers):
            block = self.w3.eth.get_block(number)
            headers[number] = {
                "hash": hex0x(bytes(block["hash"])),
                "parentHash": hex0x(bytes(block["parentHash"])),
                "timestamp": int(block["timestamp"]),
            }
        return headers

    def _canonical(self, number: int, block_hash: str) -> bool:
        return hex0x(bytes(self.w3.eth.get_block(number)["hash"])) == block_hash

    # ------------------------------------------------------------- writing

    def _write(self, logs: list[DecodedLog], headers: dict[int, dict[str, Any]], end: int, head: int) -> int:
        finalized = max(0, head - self.config.confirmations)
        with self.engine.begin() as connection:
            apply_logs(connection, self.deployment_id, logs)
            insert_ignore(
                connection,
                m.table(m.Block),
                [
                    {
                        "deployment_id": self.deployment_id,
                        "number": n,
                        "hash": h["hash"],
                        "parent_hash": h["parentHash"],
                        "timestamp": h["timestamp"],
                    }
                    for n, h in headers.items()
                ],
            )
            blocks = m.table(m.Block)
            # Prune hashes of old blocks without events; they no longer help find an ancestor.
            # NOT EXISTS, not NOT IN: PostgreSQL plans it as an anti-join on the events'
            # unique index instead of hashing every event of the deployment each step.
            events = m.table(m.Event)
            has_events = (
                select(events.c.block_number)
                .where(
                    events.c.deployment_id == blocks.c.deployment_id, events.c.block_number == blocks.c.number
                )
                .exists()
            )
            connection.execute(
                delete(blocks).where(
                    blocks.c.deployment_id == self.deployment_id,
                    blocks.c.number < finalized - self.config.reorg_window,
                    ~has_events,
                )
            )
            values = {
                "block_number": end,
                "block_hash": headers[end]["hash"],
                "head_block": head,
                "finalized_block": finalized,
            }
            cursor = m.table(m.Cursor)
            updated = connection.execute(
                cursor.update().where(cursor.c.deployment_id == self.deployment_id).values(**values)
            )
            if updated.rowcount == 0:
                connection.execute(cursor.insert().values(deployment_id=self.deployment_id, **values))
        return finalized

    def _rewind(self, cursor_block: int, head: int) -> None:
        """Walk back to the highest stored block still canonical and delete what is above."""
        with self.engine.connect() as connection:
            stored = connection.execute(
                select(m.Block.number, m.Block.hash)
                .where(m.Block.deployment_id == self.deployment_id)
                .order_by(m.Block.number.desc())
            ).all()
        ancestor = self.start_block - 1
        for number, block_hash in stored:
            if number <= head and self._canonical(number, block_hash):
                ancestor = number
                break
        depth = cursor_block - ancestor
        finalized = max(0, head - self.config.confirmations)
        metrics.REORGS.labels(**self.labels).inc()
        if ancestor < finalized:
            metrics.DEEP_REORGS.labels(**self.labels).inc()
            log.error(
                "REORG DEEPER THAN THE CONFIRMATION WINDOW: %d blocks back to %d (finalized height was %d);"
                " records marked final were wrong; re-indexing from %d",
                depth,
                ancestor,
                finalized,
                ancestor + 1,
            )
        else:
            log.warning("reorg: rolling back %d blocks to common ancestor %d", depth, ancestor)
        with self.engine.begin() as connection:
            removed = rollback_above(connection, self.deployment_id, ancestor)
            cursor = m.table(m.Cursor)
            if ancestor < self.start_block:
                connection.execute(cursor.delete().where(cursor.c.deployment_id == self.deployment_id))
            else:
                ancestor_hash = dict(stored)[ancestor]
                connection.execute(
                    cursor.update()
                    .where(cursor.c.deployment_id == self.deployment_id)
                    .values(block_number=ancestor, block_hash=ancestor_hash)
                )
        self.reorgs += 1
        log.warning("reorg: removed %d events above block %d", removed, ancestor)
