"""The session store on SQLite and PostgreSQL: only the token's SHA-256 is stored; a
session ends on sign-out, past its idle or absolute expiry (times compared in the
database, timezone-aware on both), and when its key is revoked; expired rows are
deleted. The CSRF token is bound to its session."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from ledger_api.console import sessions
from ledger_api.core import db
from ledger_api.core.models import ApiKey, ConsoleSession
from ledger_api.core.security import ENV_ADMIN, Principal
from ledger_api.keys.service import issue_key, revoke_key


def _age(engine: object, token: str, **times: datetime) -> None:
    with engine.begin() as connection:  # type: ignore[attr-defined]
        connection.execute(
            update(ConsoleSession)
            .where(ConsoleSession.token_hash == hashlib.sha256(token.encode()).hexdigest())
            .values(**times)
        )


def test_sessions_expire_end_and_die_with_their_key(database_url: str) -> None:
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    try:
        key = issue_key(engine, "charity", "0x" + "ab" * 32)
        principal = Principal(key.id, "charity", "0x" + "ab" * 32)
        token = sessions.open_session(engine, principal)
        with engine.connect() as connection:
            stored = connection.execute(select(ConsoleSession.token_hash)).scalars().all()
        assert stored == [hashlib.sha256(token.encode()).hexdigest()] and token not in stored
        found = sessions.find(engine, token)
        assert found is not None and found.principal == principal
        assert sessions.csrf_matches(token, found.csrf) and not sessions.csrf_matches(token, "0" * 64)
        assert sessions.find(engine, token + "x") is None and sessions.find(engine, None) is None
        # Idle: 29 minutes is fine (and starts the clock again), 31 is not.
        now = datetime.now(UTC)
        _age(engine, token, seen_at=now - timedelta(minutes=29))
        assert sessions.find(engine, token) is not None
        _age(engine, token, seen_at=now - timedelta(minutes=31))
        assert sessions.find(engine, token) is None
        # Absolute: past 12 hours, however busy.
        busy = sessions.open_session(engine, principal)
        _age(engine, busy, created_at=now - timedelta(hours=12, minutes=1))
        assert sessions.find(engine, busy) is None
        sessions.forget_expired(engine)
        with engine.connect() as connection:
            assert connection.execute(select(ConsoleSession.token_hash)).all() == []
        # Sign-out, and a revoked key.
        out = sessions.open_session(engine, principal)
        sessions.end(engine, out)
        assert sessions.find(engine, out) is None
        # A key marked revoked by any path (the lookup joins the key)...
        other = issue_key(engine, "charity", "0x" + "cd" * 32)
        marked = sessions.open_session(engine, Principal(other.id, "charity", "0x" + "cd" * 32))
        with engine.begin() as connection:
            connection.execute(update(ApiKey).where(ApiKey.id == other.id).values(revoked_at=now))
        assert sessions.find(engine, marked) is None
        # ...and revoke_key, which also deletes the key's sessions.
        revoked = sessions.open_session(engine, principal)
        assert revoke_key(engine, key.id)
        assert sessions.find(engine, revoked) is None
        with engine.connect() as connection:
            assert (
                connection.execute(select(ConsoleSession).where(ConsoleSession.key_id == key.id)).all() == []
            )
        # The environment's admin key has no row to revoke: its sessions still expire.
        admin = sessions.open_session(engine, Principal(ENV_ADMIN, "admin"))
        assert sessions.find(engine, admin) is not None
    finally:
        engine.dispose()


def test_a_session_ends_when_its_key_expires(database_url: str) -> None:
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    try:
        later = datetime.now(UTC) + timedelta(hours=1)
        issued = issue_key(engine, "charity", "0x" + "cd" * 32, expires_at=later)
        token = sessions.open_session(engine, Principal(issued.id, "charity", "0x" + "cd" * 32))
        assert sessions.find(engine, token) is not None  # before its expiry
        with engine.begin() as connection:
            connection.execute(
                update(ApiKey)
                .where(ApiKey.id == issued.id)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert sessions.find(engine, token) is None
    finally:
        engine.dispose()
