"""Which database a public read goes to: a PostgreSQL streaming replica when one is close
enough behind, else the primary (LEDGER_READ_DATABASE_URLS, LEDGER_REPLICA_MAX_LAG_BLOCKS).

Lag is measured where it matters to a reader, in the mirror: a background thread reads the
indexer cursor's block on the primary and on every replica each LEDGER_REPLICA_POLL_SECONDS
(two one-row primary-key reads, instead of a query per request). A replica is used only
when its last measurement is fresh, its cursor is at most the bound behind the primary's,
and it has the newest block this process answered a write for (the write fence): a write
answers 201 once the *primary's* mirror has indexed it, so a read right after it in this
process must not go to a replica that has not replayed that block yet. Another process
does not see this fence; a record missing on a replica is looked up again on the primary
(`gateway.primary_if_missing`), which covers a new record; a changed one (totals) is at
most the bound behind, as for any replica read. A replica that does not answer, or answers
with an error, is skipped until a later measurement succeeds."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, select
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from indexer.models import Cursor
from ledger_api.core.db import POOL

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """One measurement of a replica: its mirror's block (None: it did not answer), the
    primary's at the same time, and when (time.monotonic())."""

    block: int | None
    primary_block: int
    at: float


def cursor_block(engine: Engine, deployment_id: int) -> int:
    """The last block the mirror in this database has indexed (-1: none yet)."""
    with engine.connect() as connection:
        block = connection.execute(
            select(Cursor.block_number).where(Cursor.deployment_id == deployment_id)
        ).scalar_one_or_none()
    return -1 if block is None else int(block)


class Replicas:
    """The replicas of one primary, their measured lag, and the choice per read."""

    def __init__(
        self,
        primary: Engine,
        urls: list[str],
        deployment_id: int,
        max_lag_blocks: int,
        poll_seconds: float,
    ) -> None:
        self.primary = primary
        # A replica that hangs must not hold a reader (or the poller) for long. Only public
        # reads use a replica: no transactions (see gateway.reading).
        self.engines = [
            create_engine(
                url,
                pool_pre_ping=True,
                isolation_level="AUTOCOMMIT",
                connect_args={"connect_timeout": 2},
                **POOL,
            )
            for url in urls
        ]
        self.deployment_id = deployment_id
        self.max_lag_blocks = max_lag_blocks
        self.poll_seconds = poll_seconds
        self.samples: list[Sample | None] = [None] * len(self.engines)
        self.fence = -1
        self._turn = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> None:
        """Measure every replica once (the primary first, so a replica is never compared
        with a primary block newer than the one it was measured against)."""
        primary_block = cursor_block(self.primary, self.deployment_id)
        for index, engine in enumerate(self.engines):
            try:
                block: int | None = cursor_block(engine, self.deployment_id)
            except Exception as exc:  # down, unreachable, not a copy of this database
                log.warning("read replica %d skipped: %s", index, type(exc).__name__)
                block = None
            self.samples[index] = Sample(block, primary_block, time.monotonic())

    def usable(self, sample: Sample | None, now: float) -> bool:
        return (
            sample is not None
            and sample.block is not None
            and now - sample.at <= 3 * self.poll_seconds
            and sample.primary_block - sample.block <= self.max_lag_blocks
            and sample.block >= self.fence
        )

    def choose(self) -> Engine:
        """A usable replica, in turn, or the primary when there is none."""
        now = time.monotonic()
        usable = [e for e, s in zip(self.engines, self.samples, strict=True) if self.usable(s, now)]
        if not usable:
            return self.primary
        return usable[next(self._turn) % len(usable)]

    def fence_write(self) -> None:
        """After this process answered a write: no replica until it has the primary's
        mirror block as of now, which includes the write (it answered 201 only once
        indexed there). One read of the primary per write."""
        self.fence = max(self.fence, cursor_block(self.primary, self.deployment_id))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="replica-lag", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for engine in self.engines:
            engine.dispose()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # the primary itself is down: no replica is fresh
                log.warning("replica lag not measured: %s", type(exc).__name__)
            self._stop.wait(self.poll_seconds)


class WriteFence:
    """After every write this process answers with success (a POST, PUT, PATCH or DELETE
    below 300), `Replicas.fence_write`: the fence is raised before the answer leaves, so
    the client's next read already sees it. Pure ASGI, so bodies stream through."""

    def __init__(self, app: ASGIApp, replicas: Replicas) -> None:
        self.app = app
        self.replicas = replicas

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return

        async def fenced(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 300:
                await run_in_threadpool(self.replicas.fence_write)
            await send(message)

        await self.app(scope, receive, fenced)
