"""A PostgreSQL primary and a streaming-replication standby of it, for the replica tests:
two real clusters in a temporary directory, on free ports. Not the shared server on 5432:
that one is not configured for replication, and a base backup of it would copy every other
test's databases. The clusters run as the `postgres` OS user (initdb refuses root) with
trust authentication on 127.0.0.1 only, and fsync off (they are thrown away)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise FileNotFoundError(f"PostgreSQL's {name} is not installed")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _postgres_user(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


def _as_postgres(*command: str) -> None:
    subprocess.run(_postgres_user(*command), check=True, capture_output=True, timeout=120)


@dataclass(frozen=True)
class StreamingPair:
    """The two clusters: `primary_url(db)` and `standby_url(db)` name a database on each
    (create it on the primary; replication brings it to the standby)."""

    root: Path
    primary_port: int
    standby_port: int

    def primary_url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.primary_port}/{database}"

    def standby_url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.standby_port}/{database}"

    def standby_sql(self, sql: str) -> object:
        engine = create_engine(self.standby_url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                return connection.execute(text(sql)).scalar()
        finally:
            engine.dispose()

    def stop_standby(self) -> None:
        _as_postgres(_bin("pg_ctl"), "-D", str(self.root / "standby"), "-m", "immediate", "-w", "stop")


def _configure(data: Path, port: int, sockets: Path) -> None:
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{sockets}'\n"
            "wal_level = replica\nmax_wal_senders = 4\nfsync = off\nhot_standby = on\n"
            "shared_buffers = 16MB\nmax_connections = 100\n"
        )


@contextmanager
def streaming_pair() -> Iterator[StreamingPair]:
    """Start a primary (initdb) and a standby (pg_basebackup -R), wait until both accept
    connections, and remove both afterwards."""
    root = Path(tempfile.mkdtemp(prefix="ledger-replica-"))
    postgres = pwd.getpwnam("postgres")
    os.chown(root, postgres.pw_uid, postgres.pw_gid)
    pair = StreamingPair(root, _free_port(), _free_port())
    primary, standby = root / "primary", root / "standby"
    pg_ctl = _bin("pg_ctl")
    started: list[Path] = []
    try:
        _as_postgres(_bin("initdb"), "-D", str(primary), "-U", "postgres", "-A", "trust", "--no-sync")
        _configure(primary, pair.primary_port, root)
        _as_postgres(pg_ctl, "-D", str(primary), "-l", str(root / "primary.log"), "-w", "start")
        started.append(primary)
        _as_postgres(
            _bin("pg_basebackup"),
            *("-h", "127.0.0.1", "-p", str(pair.primary_port), "-U", "postgres"),
            *("-D", str(standby), "-R", "-X", "stream"),
        )
        _configure(standby, pair.standby_port, root)
        _as_postgres(pg_ctl, "-D", str(standby), "-l", str(root / "standby.log"), "-w", "start")
        started.append(standby)
        deadline = time.monotonic() + 30
        while pair.standby_sql("SELECT pg_is_in_recovery()") is not True:
            if time.monotonic() > deadline:
                raise TimeoutError("the standby did not start replaying")
            time.sleep(0.2)
        yield pair
    finally:
        for data in reversed(started):
            stop = _postgres_user(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
            subprocess.run(stop, capture_output=True, timeout=60)  # best effort, then removed
        shutil.rmtree(root, ignore_errors=True)
