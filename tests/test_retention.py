"""The retention jobs (PRIVACY.md's "kept for a while" rows): `ledger retention`, run as
the operator runs it, deletes exactly the rows past their time, on SQLite and PostgreSQL,
and running it again deletes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from ledger_api.core import db
from ledger_api.core.models import ConsoleSession, Deployment, IdempotencyRecord, StatementImport
from ledger_api.retention import JOBS, RetentionWorker


def _seed(url: str) -> None:
    # "now" is taken when the rows are written, not when the module is collected: in a
    # long suite a session seeded as "seen five minutes ago" would be idle by the time
    # the job ran.
    now = datetime.now(UTC)
    db.upgrade(url)
    engine = db.make_engine(url)
    with engine.begin() as c:
        deployment = c.execute(
            insert(Deployment)
            .values(chain_id=1, address="0x" + "11" * 20, deployment_block=0, source_hash="0" * 64)
            .returning(Deployment.id)
        ).scalar_one()
        for key, age in (("old", timedelta(hours=25)), ("fresh", timedelta(hours=23))):
            c.execute(
                insert(IdempotencyRecord).values(
                    principal="k1", key=key, request_hash="0" * 64, created_at=now - age
                )
            )
        for token, created, seen in (
            ("idle", now - timedelta(hours=1), now - timedelta(minutes=31)),
            ("too-long", now - timedelta(hours=12, minutes=1), now),
            ("live", now - timedelta(hours=2), now - timedelta(minutes=5)),
        ):
            c.execute(
                insert(ConsoleSession).values(
                    token_hash=token, key_id="k1", role="charity", created_at=created, seen_at=seen
                )
            )
        for name, expires in (("expired", now - timedelta(seconds=1)), ("kept", now + timedelta(days=29))):
            c.execute(
                insert(StatementImport).values(
                    id=name,
                    deployment_id=deployment,
                    charity_id="0x" + "22" * 32,
                    filename="statement.csv",
                    state="previewed",
                    summary="{}",
                    sealed_rows=b"sealed",
                    created_at=now - timedelta(days=30),
                    expires_at=expires,
                )
            )
    engine.dispose()


def _retention(url: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "ledger_api.cli", "retention", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _left(url: str) -> dict[str, list[str]]:
    engine = db.make_engine(url)
    with engine.connect() as c:
        left = {
            "idempotency": sorted(c.execute(select(IdempotencyRecord.key)).scalars()),
            "sessions": sorted(c.execute(select(ConsoleSession.token_hash)).scalars()),
            "imports": sorted(c.execute(select(StatementImport.id)).scalars()),
        }
    engine.dispose()
    return left


def test_the_command_deletes_exactly_what_is_past_its_time(database_url: str) -> None:
    _seed(database_url)
    lines = _retention(database_url)
    assert [line.split()[0] for line in lines] == ["1", "2", "1"]
    assert [line.split(None, 1)[1].split(":")[0] for line in lines] == [job.name for job in JOBS]
    assert _left(database_url) == {"idempotency": ["fresh"], "sessions": ["live"], "imports": ["kept"]}
    assert [line.split()[0] for line in _retention(database_url)] == ["0", "0", "0"]
    assert _left(database_url)["sessions"] == ["live"]


def test_the_service_s_worker_runs_the_jobs_when_it_starts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'worker.db'}"
    _seed(url)
    engine = db.make_engine(url)
    worker = RetentionWorker(engine, interval=3600)
    worker.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while datetime.now(UTC) < deadline:
            with engine.connect() as c:
                if c.execute(select(func.count()).select_from(IdempotencyRecord)).scalar_one() == 1:
                    break
            time.sleep(0.05)
    finally:
        worker.stop()
        engine.dispose()
    assert _left(url) == {"idempotency": ["fresh"], "sessions": ["live"], "imports": ["kept"]}
