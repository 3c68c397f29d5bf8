"""The indexer: follows one ledger deployment's events over JSON-RPC into SQL.

One step reads the next block range with a single `eth_getLogs` for all ledger events,
checks it links to what is stored (parent hash of the range's first block equals the
cursor's hash; every log's block hash equals its block header's), and writes the
range's rows, block hashes and the new cursor in one transaction. On a mismatch it walks
back to the highest stored block still on the canonical chain, deletes everything above
it in one transaction (see projections.rollback_above) and goes on from there.

Behind the head, over an HTTP node, reading is pipelined: a thread (Prefetch) reads and
decodes the next ranges into a bounded queue while the current one is written, so the
node's time, the decoding and the database's time overlap. Only reading moves there:
ranges are still written one at a time, in order, each with its cursor, and each must
link by parent hash to the cursor written before it; a range that does not (a reorg
under a prefetched range) empties the queue and the next step rewinds as before.
"""

from __future__ import annotations

import logging
import queue
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
    # One block at first: nothing says how many logs a chain's blocks hold until one is
    # read, and a first range of 16 blocks of 10,000 donations each (blocks of 600M gas,
    # scripts/bench/million.py) held 160,000 logs in memory at once, half a GiB in a
    # reconciliation. After the first, ranges are sized by the density just seen, and a
    # sparse chain grows the span to its maximum in seventeen quick steps.
    initial_range: int = 1
    max_range: int = 100_000
    # Logs a range aims at: the next span is sized by the last one's density, so that a
    # backfill of a dense chain is a stream of ranges of about this many logs to overlap.
    target_logs: int = 5_000
    # A range whose eth_getLogs takes longer than this is halved next time, so one
    # step never holds the indexer long on a slow node (see README: eth-tester).
    target_seconds: float = 1.0
    # A range that returns more logs than this is halved next time (memory, step length);
    # ranges read ahead are written together, in one transaction, up to this many logs.
    max_logs: int = 20_000
    # Seconds between polls once caught up with the head.
    poll_interval: float = 0.5
    # Longest wait between retries when the node or the database fails.
    max_backoff: float = 30.0
    # Block hashes kept below the finalized height (besides blocks holding events),
    # so a reorg deeper than the confirmation window still finds a common ancestor.
    reorg_window: int = 256
    # Ranges read ahead of the one being written (the prefetch queue's bound); 0 reads
    # each range in the step that writes it.
    prefetch: int = 4


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


@dataclass(frozen=True)
class Fetched:
    """One range as read from the node: its logs, decoded, and the block headers it needs."""

    start: int
    end: int
    head: int
    logs: list[DecodedLog]
    headers: dict[int, dict[str, Any]]


class Done:
    """Queued by the prefetch thread after its last range (one that reached the head)."""


DONE = Done()
Queued = Fetched | BaseException | Done


class Prefetch:
    """Reads ranges ahead on a daemon thread into a bounded queue (backpressure: it waits
    while `depth` ranges are unwritten), from `start` until a range reaches the head, then
    queues DONE. A failure is queued in its place and ends the thread; `discard` stops it
    (a request in flight finishes and is dropped)."""

    def __init__(self, read: Callable[[int], Fetched | None], start: int, depth: int) -> None:
        self.read = read
        self.start = start
        self.queue: queue.Queue[Queued] = queue.Queue(maxsize=depth)
        self.stopped = threading.Event()
        self.held: Queued | None = None  # taken, then given back (put_back)
        self.thread = threading.Thread(target=self._main, name="indexer-prefetch", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        start = self.start
        try:
            while not self.stopped.is_set():
                fetched = self.read(start)
                if fetched is None:
                    continue  # the range shrank, or logs and headers disagreed: read it again
                self._put(fetched)
                if fetched.end >= fetched.head:
                    break  # caught up: the poll loop reads from here on
                start = fetched.end + 1
        except Exception as exc:  # handed to the writer, which raises it
            self._put(exc)
        self._put(DONE)

    def _put(self, item: Queued) -> None:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def take(self) -> Queued | None:
        """The next item queued, waiting for it (None if the thread died without DONE)."""
        if self.held is not None:
            item, self.held = self.held, None
            return item
        while True:
            try:
                return self.queue.get(timeout=0.1)
            except queue.Empty:
                if not self.thread.is_alive() and self.queue.empty():  # only if it was killed
                    return None

    def ready(self) -> Queued | None:
        """The next range if it is read already (else None), without waiting."""
        if self.held is not None:
            return self.take()
        try:
            return self.queue.get_nowait()
        except queue.Empty:
            return None

    def put_back(self, item: Queued) -> None:
        """Give back the item just taken: the next take() returns it."""
        self.held = item

    def discard(self) -> None:
        self.stopped.set()
        while not self.queue.empty():
            self.queue.get_nowait()


def _waiter(stop: threading.Event) -> Callable[[float], None]:
    """A sleep for tenacity that ends at once when the indexer is told to stop."""

    def sleep(seconds: float) -> None:
        stop.wait(seconds)

    return sleep


class ChainShortened(RuntimeError):
    """The head fell below the range to read next: the chain was reorganised shorter."""


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
        # The ranges being read ahead during a backfill (HTTP nodes only: on the embedded
        # chain reading is CPU in this process, and its provider is not for two threads).
        self._prefetch: Prefetch | None = None

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
        try:
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
        finally:
            self._discard()

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
        try:
            while not self.step():
                pass
        finally:
            self._discard()  # a failed step leaves no reader behind

    def step(self) -> bool:
        """Index one range; return True when caught up with the head."""
        began = time.perf_counter()
        cursor = self.cursor()
        start = cursor[0] + 1 if cursor else self.start_block
        fetched = self._prefetched(start)
        if fetched is None:  # nothing read ahead: read this range now
            head = self.w3.eth.block_number
            # A tip above the head means the chain got shorter: that tip is gone too.
            if cursor is not None and (cursor[0] > head or not self._canonical(*cursor)):
                self._rewind(cursor[0], head)
                return False
            if start > head:
                return True
            fetched = self._read(start, head)
            if fetched is None:
                return False
            if fetched.end < head and self.config.prefetch > 0 and self.rpc.http:
                self._prefetch = Prefetch(self._read_ahead, fetched.end + 1, self.config.prefetch)
        # A range read ahead was read after the cursor's block was checked: its link to the
        # cursor (the parent hash of its first block) is what shows the cursor still canonical.
        if cursor is not None and fetched.headers[start]["parentHash"] != cursor[1]:
            self._discard()
            return False  # the chain changed under us: the next step rewinds
        finalized = self._write(fetched.logs, fetched.headers, fetched.end, fetched.head)
        report = RangeReport(
            start, fetched.end, fetched.head, finalized, len(fetched.logs), time.perf_counter() - began
        )
        self._report(report)
        return report.caught_up

    def _prefetched(self, start: int) -> Fetched | None:
        """The range read ahead from `start`, if the prefetch thread has (or is reading) it;
        a failure of that thread is raised here, for run()'s retries."""
        if self._prefetch is None:
            return None
        item = self._prefetch.take()
        if isinstance(item, Exception) and not isinstance(item, ChainShortened):
            self._discard()
            raise item
        if not isinstance(item, Fetched) or item.start != start:
            # Done; the chain got shorter (the step reading now rewinds); or read past a
            # range that was not written (its write failed): read from the cursor again.
            self._discard()
            return None
        return self._join_ready(item, self._prefetch)

    def _join_ready(self, first: Fetched, prefetch: Prefetch) -> Fetched:
        """`first` and the ranges read after it that are ready already, as one range (up
        to max_logs logs), each linked to the one before by parent hash. When writing is
        the slower half, a transaction per range read would spend much of its time on
        per-commit work (aggregates recomputed, the commit itself): then it writes bigger
        ranges instead. A range that does not link is left for the next step."""
        joined = first
        while len(joined.logs) < self.config.max_logs:
            item = prefetch.ready()
            if item is None:
                break
            if (
                not isinstance(item, Fetched)
                or item.start != joined.end + 1
                or item.headers[item.start]["parentHash"] != joined.headers[joined.end]["hash"]
            ):
                prefetch.put_back(item)
                break
            joined = Fetched(
                joined.start,
                item.end,
                item.head,
                joined.logs + item.logs,
                {**joined.headers, **item.headers},
            )
        return joined

    def _discard(self) -> None:
        if self._prefetch is not None:
            self._prefetch.discard()
            self._prefetch = None

    def _read_ahead(self, start: int) -> Fetched | None:
        """The prefetch thread's read: the head as of now, then the range from `start`."""
        head = self.w3.eth.block_number
        if start > head:  # the chain got shorter: let the writer's step find out why
            raise ChainShortened(f"block {start} is above the head {head}")
        return self._read(start, head)

    def _read(self, start: int, head: int) -> Fetched | None:
        """Logs and the headers to store of blocks start.. (up to the current span), or
        None if the range must be read again (it shrank, or logs and headers disagreed)."""
        end = min(head, start + self.range - 1)
        logs = self._get_logs(start, end)
        if logs is None:
            return None
        # Every block of the unfinalized window (and the reorg window below it) keeps its
        # hash, so a rewind finds the real fork point; further back, only blocks with
        # events and range ends do, which keeps a backfill to a few header reads.
        window = max(start, head - self.config.confirmations - self.config.reorg_window)
        headers = self._headers({lg.block_number for lg in logs} | {start, end} | set(range(window, end + 1)))
        if any(lg.block_hash != headers[lg.block_number]["hash"] for lg in logs):
            return None  # logs and headers from different forks: read the range again
        return Fetched(start, end, head, logs, headers)

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
            grown = min(self.config.max_range, self.range * 2)
            # As many blocks as should hold about target_logs logs at this range's density.
            self.range = max(1, min(grown, span * self.config.target_logs // len(raw))) if raw else grown
        decode = self.decoder.decode
        decoded = [decode(entry) for entry in raw]
        return [d for d in decoded if d is not None]

    def _fetch_logs(self, start: int, end: int) -> list[dict[str, Any]]:
        """All ledger logs of a block range, raw over HTTP (the decoder reads the hex)."""
        return self.rpc.get_logs(self.address, start, end, self.decoder.topics)

    def _headers(self, numbers: set[int]) -> dict[int, dict[str, Any]]:
        ordered = sorted(numbers)
        return dict(zip(ordered, self.rpc.headers(ordered), strict=True))

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
