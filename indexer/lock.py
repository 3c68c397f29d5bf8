"""One writer per deployment: the lock an indexer holds while it writes a mirror.

On PostgreSQL it is a session advisory lock, keyed on the chain id and contract address,
held on a connection of its own for as long as the indexer runs. A second indexer waits
for it; when the first process dies, its connection closes, the server releases the lock
and the waiting one takes over from the stored cursor. On a SQLite file it is an
exclusive `flock` on a file beside the database, which the kernel releases when the
process dies. An in-memory SQLite database belongs to one process and needs no lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, text

log = logging.getLogger("indexer.lock")


def lock_key(chain_id: int, address: str) -> int:
    """A signed 64-bit key (PostgreSQL's advisory lock space) for one deployment."""
    digest = hashlib.sha256(f"ledger-indexer:{chain_id}:{address.lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class LockLost(RuntimeError):
    """The connection holding the writer lock is gone: another writer may take over."""


class WriterLock:
    def __init__(self, engine: Engine, chain_id: int, address: str) -> None:
        self.engine = engine
        self.key = lock_key(chain_id, address)
        self.name = f"indexer for chain {chain_id} contract {address}"
        self._connection: Connection | None = None
        self._file: IO[Any] | None = None
        self.held = False  # between acquire() and release(): this process is the writer

    def acquire(self, poll: float = 1.0, stop: Callable[[], bool] = lambda: False) -> bool:
        """Block until the lock is ours (True) or `stop()` says to give up (False)."""
        waited = False
        while not stop():
            if self._try():
                self.held = True
                if waited:
                    log.warning("took over as the single writer: %s", self.name)
                return True
            if not waited:
                log.warning("another process is the writer (%s); standing by", self.name)
                waited = True
            time.sleep(poll)
        return False

    def _try(self) -> bool:
        if self.engine.dialect.name == "postgresql":
            connection = self.engine.connect()
            got = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            connection.commit()
            if got:
                self._connection = connection
                return True
            connection.close()
            return False
        database = self.engine.url.database
        if not database or database == ":memory:":
            return True
        path = Path(f"{database}.indexer-{self.key & 0xFFFFFFFFFFFFFFFF:016x}.lock")
        handle = path.open("a+")  # held open: the lock lives as long as the descriptor
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def check(self) -> None:
        """Raise LockLost if the lock's connection died (the server released the lock)."""
        if self._connection is None:
            return
        try:
            held = self._connection.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
            ).scalar()
            self._connection.commit()
        except Exception as exc:
            raise LockLost(f"lost the writer lock ({self.name}): {type(exc).__name__}") from exc
        if not held:
            raise LockLost(f"lost the writer lock ({self.name})")

    def release(self) -> None:
        self.held = False
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._connection.commit()
                self._connection.close()
            except Exception:  # the connection is gone, and with it the lock
                log.debug("writer lock connection already closed", exc_info=True)
            self._connection = None
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None
