"""The backfill progress bar of `ledger index`: blocks done of blocks to go, events/s and
the time left. On a terminal it is a live bar (rich); otherwise (CI, a service manager)
it becomes a structured log line every few seconds. It stops at the head, after which the
indexer's per-range logs take over."""

from __future__ import annotations

import logging
import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from indexer.indexer import RangeReport

log = logging.getLogger("indexer.backfill")


class BackfillProgress:
    def __init__(self, first_block: int, live: bool | None = None, interval: float = 5.0) -> None:
        self.first_block = first_block
        self.live = sys.stderr.isatty() if live is None else live
        self.interval = interval
        self.began = time.monotonic()
        self.last_line = 0.0
        self.events = 0
        self.blocks = 0
        self.done = False
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def _rate(self) -> float:
        elapsed = time.monotonic() - self.began
        return self.events / elapsed if elapsed > 0 else 0.0

    def __call__(self, report: RangeReport) -> None:
        if self.done:
            return
        self.events += report.events
        self.blocks += report.end - report.start + 1
        done, total = report.end - self.first_block + 1, report.head - self.first_block + 1
        if self.live:
            if self._progress is None:
                self._progress = Progress(
                    TextColumn("backfill"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("blocks · {task.fields[rate]:,.0f} events/s · {task.fields[events]:,} events"),
                    TimeElapsedColumn(),
                    TextColumn("ETA"),
                    TimeRemainingColumn(),
                    console=Console(stderr=True),
                    transient=False,
                )
                self._progress.start()
                self._task = self._progress.add_task("backfill", total=total, rate=0.0, events=0)
            assert self._task is not None
            self._progress.update(
                self._task, completed=done, total=total, rate=self._rate(), events=self.events
            )
        elif report.caught_up or time.monotonic() - self.last_line >= self.interval:
            self.last_line = time.monotonic()
            rate_blocks = self.blocks / max(1e-9, time.monotonic() - self.began)
            eta = (total - done) / rate_blocks if rate_blocks else None
            log.info(
                "backfill %d/%d blocks, %d events, %.0f events/s, ETA %s",
                done,
                total,
                self.events,
                self._rate(),
                "-" if eta is None else f"{eta:.0f} s",
                extra={
                    "blocks_done": done,
                    "blocks_total": total,
                    "events": self.events,
                    "events_per_s": round(self._rate(), 1),
                    "eta_s": None if eta is None else round(eta, 1),
                },
            )
        if report.caught_up:
            self.finish()

    def finish(self) -> None:
        if self.done:
            return
        self.done = True
        if self._progress is not None:
            self._progress.stop()
        elapsed = time.monotonic() - self.began
        log.info(
            "backfill done: %d events in %.1f s (%.0f events/s); following the head",
            self.events,
            elapsed,
            self._rate(),
            extra={
                "events": self.events,
                "seconds": round(elapsed, 2),
                "events_per_s": round(self._rate(), 1),
            },
        )
