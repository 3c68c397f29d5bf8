"""Sealing the access log: each finished UTC day's Merkle root goes on chain as
`sealAccessLog(day, root, rowCount, lastRowHash)`, through the one write pipeline
(`Writes.submit`, simulated first) and signed by the platform's account, which holds the
contract's LOG_SEALER_ROLE.

1. Only finished days: a day is sealed once the clock is `GRACE` past its end (a read
   that took the log's lock just before midnight has committed by then), never today.
2. Idempotent: a day the contract already holds a seal for is not sent again. If the
   chain's root differs from the rows' root, the log was changed after sealing: that is
   reported (`mismatch`), never "fixed" by a second seal (the contract refuses one anyway).
3. A day without rows has no seal.
4. `ledger access-log seal [--day YYYY-MM-DD]` runs it by hand; `SealWorker` runs it in the
   service every `INTERVAL_SECONDS`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from ledger_api.chain.abi import encode
from ledger_api.core import access_log
from ledger_api.core.models import AccessLogRow
from ledger_api.transactions.service import Step, Writes

log = logging.getLogger(__name__)

GRACE = timedelta(minutes=2)
INTERVAL_SECONDS = 600.0
ZERO = b"\0" * 32


@dataclass(frozen=True)
class Sealed:
    day: int
    outcome: str  # sealed | already | empty | mismatch
    row_count: int
    root: str | None
    tx_hash: str | None = None

    def describe(self) -> str:
        when = access_log.day_date(self.day).isoformat()
        tx = f" in {self.tx_hash}" if self.tx_hash else ""
        return f"{when}: {self.outcome}, {self.row_count} rows, root {self.root or '-'}{tx}"


def finished(day: int, now: datetime) -> bool:
    end = datetime.combine(access_log.day_date(day + 1), datetime.min.time(), tzinfo=UTC)
    return now >= end + GRACE


def chain_seal(writes: Writes, day: int) -> tuple[bytes, int, bytes] | None:
    root, count, last = writes.view("accessLogSeal", day, missing="seal")
    return None if bytes(root) == ZERO else (bytes(root), int(count), bytes(last))


def seal_day(writes: Writes, engine: Engine, day: int, now: datetime | None = None) -> Sealed:
    """Seal one finished day (module docstring); ValueError for a day not finished."""
    if not finished(day, now or datetime.now(UTC)):
        raise ValueError(
            f"{access_log.day_date(day).isoformat()} is not over yet: only finished UTC days are sealed"
        )
    with engine.connect() as connection:
        rows = access_log.day_rows(connection, day)
    hashes = [row.row_hash for row in rows]
    root = access_log.merkle_root(hashes)
    if root is None:
        return Sealed(day, "empty", 0, None)
    on_chain = chain_seal(writes, day)
    if on_chain is not None:
        same = on_chain == (bytes.fromhex(root[2:]), len(rows), bytes.fromhex(hashes[-1]))
        if not same:
            log.error("access log of day %d differs from its seal on chain: changed after sealing", day)
        return Sealed(day, "already" if same else "mismatch", len(rows), root)
    step = Step(
        encode("sealAccessLog", day, bytes.fromhex(root[2:]), len(rows), bytes.fromhex(hashes[-1])),
        {"kind": "access-log-sealed", "ids": []},
    )
    try:
        (state,) = writes.submit(writes.service_account, None, [step], True)
    except Exception:
        # Another process sealed it meanwhile (the contract takes one seal a day).
        if chain_seal(writes, day) is None:
            raise
        return Sealed(day, "already", len(rows), root)
    return Sealed(day, "sealed", len(rows), root, state.tx_hash)


def seal_finished_days(writes: Writes, engine: Engine, now: datetime | None = None) -> list[Sealed]:
    """Every finished day with rows that the chain does not hold a seal for yet."""
    moment = now or datetime.now(UTC)
    with engine.connect() as connection:
        days = (
            connection.execute(select(AccessLogRow.day).distinct().order_by(AccessLogRow.day)).scalars().all()
        )
    return [seal_day(writes, engine, day, moment) for day in days if finished(day, moment)]


class SealWorker:
    """Seals each finished UTC day, at start and every `interval` seconds, in a daemon
    thread; several processes may run one: a day sealed by another is `already`."""

    def __init__(self, writes: Writes, engine: Engine, interval: float = INTERVAL_SECONDS) -> None:
        self.writes = writes
        self.engine = engine
        self.interval = interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="access-log-seal", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                for sealed in seal_finished_days(self.writes, self.engine):
                    if sealed.outcome == "sealed":
                        log.info("access log sealed: %s", sealed.describe())
            except Exception:
                log.exception("sealing the access log failed; retrying in %g s", self.interval)
            self.stop_event.wait(self.interval)
