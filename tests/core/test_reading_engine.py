"""Public reads on PostgreSQL run without a transaction (no BEGIN or ROLLBACK round trip),
on the primary's pool; writes through the primary engine stay transactional."""

from __future__ import annotations

from sqlalchemy import text

from ledger_api.core import db
from ledger_api.mirror.gateway import reading


def test_public_reads_autocommit_on_postgresql_and_writes_stay_transactional(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        reader = reading(engine)
        if engine.dialect.name != "postgresql":
            assert reader is engine  # SQLite reads run outside transactions already
            return
        assert reader.pool is engine.pool
        with reader.connect() as connection:
            assert connection.connection.driver_connection.autocommit is True
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
            # No transaction is left open by the read: the server sees the session idle.
            assert connection.connection.driver_connection.info.transaction_status.name == "IDLE"
        with engine.connect() as connection:
            assert connection.connection.driver_connection.autocommit is False
            connection.execute(text("SELECT 1"))
            assert connection.connection.driver_connection.info.transaction_status.name == "INTRANS"
    finally:
        engine.dispose()
