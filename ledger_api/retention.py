"""Retention: the jobs that delete what the data map (PRIVACY.md) says is kept only for a
while. Each job deletes rows past their time and says how many; running them again
changes nothing. The service runs them at start and then every hour (every worker
process: the deletes are idempotent); `ledger retention` runs them once, for an operator
or a cron job.

What is kept for ever is not here: the chain's records and their mirror (an append-only
ledger is the point), the access log (its rows are sealed on chain), and the claims of
imported bank references (they stop a statement being imported twice)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from ledger_api.console import sessions
from ledger_api.core import idempotency_store
from ledger_api.imports import service as imports

log = logging.getLogger("ledger_api.retention")

INTERVAL_SECONDS = 3600.0


def _span(span: timedelta) -> str:
    minutes = int(span.total_seconds()) // 60
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)} d"
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


@dataclass(frozen=True)
class Job:
    name: str  # as PRIVACY.md names it
    keeps: str  # what it deletes, and after how long
    run: Callable[[Engine], int]


JOBS = (
    Job(
        "idempotent answers",
        f"stored answers (sealed: receipt secrets) after {_span(idempotency_store.IDEMPOTENCY_TTL)}",
        idempotency_store.expire,
    ),
    Job(
        "console sessions",
        f"sessions idle {_span(sessions.IDLE)} or older than {_span(sessions.ABSOLUTE)}",
        sessions.forget_expired,
    ),
    Job(
        "statement imports",
        f"imports and their sealed rows (payers, receipt secrets) after {_span(imports.RETENTION)}",
        imports.forget_expired,
    ),
)


def run(engine: Engine) -> dict[str, int]:
    """Run every job once: {job name: rows deleted}."""
    return {job.name: job.run(engine) for job in JOBS}


class RetentionWorker:
    """Runs the jobs in a daemon thread, at start and every `interval` seconds."""

    def __init__(self, engine: Engine, interval: float = INTERVAL_SECONDS) -> None:
        self.engine = engine
        self.interval = interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="retention", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                deleted = run(self.engine)
                if any(deleted.values()):
                    log.info("retention: deleted %s", ", ".join(f"{n} {k}" for k, n in deleted.items() if n))
            except Exception:
                log.exception("a retention job failed; retrying in %g s", self.interval)
            self.stop_event.wait(self.interval)
