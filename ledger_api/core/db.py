"""Database engine, schema migrations (Alembic is the only way the schema changes) and the
conflict-ignoring bulk insert the mirror and the outbox write with."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from ledger_api.core.paths import ROOT

# Sync routes run on up to 40 threads: with SQLAlchemy's default pool (5 + 10 overflow)
# 16 concurrent readers kept opening and closing overflow connections, 0.2 to 0.36 new
# connections per request in scripts/bench/read.py (a forked backend each, on
# PostgreSQL). A pool this size keeps them open.
POOL = {"pool_size": 20, "max_overflow": 20}


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        in_file = bool(parsed.database) and parsed.database != ":memory:"
        if in_file:
            Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **(POOL if in_file else {}))

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode, NORMAL keeps every commit safe from a crash of the process (the
            # outbox relies on that) and syncs at checkpoints rather than on every commit;
            # only an OS crash or power cut can lose the newest commits. Production runs
            # PostgreSQL.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **POOL)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only connection whose reads all see one consistent state of the database,
    however much other connections commit meanwhile (a reader that must see the
    indexer's cursor and the rows it wrote with it together).

    PostgreSQL: a REPEATABLE READ, READ ONLY transaction (its snapshot is taken at the
    first query). SQLite: pysqlite runs SELECTs outside any transaction, so each would see
    the newest commit; with the driver in autocommit mode we issue BEGIN ourselves, and in
    WAL mode the read transaction keeps the database as of its first SELECT until COMMIT,
    without blocking writers (they append to the WAL meanwhile); `query_only` makes it
    read-only. tests/api/test_reconciliation.py proves both."""
    if engine.dialect.name == "sqlite":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("PRAGMA query_only = ON")
            try:
                connection.exec_driver_sql("BEGIN")
                try:
                    yield connection
                finally:
                    connection.exec_driver_sql("COMMIT")
            finally:
                connection.exec_driver_sql("PRAGMA query_only = OFF")  # the connection goes back to the pool
        return
    options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    with engine.connect().execution_options(**options) as connection, connection.begin():
        yield connection


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    # The process has configured logging already (structured logs); alembic.ini's
    # logging section is for the `alembic` command line only.
    config.attributes["configure_logger"] = False
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


# Rows from which `insert_ignore` hands a batch to the driver directly.
BULK_ROWS = 200


def insert_ignore(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Bulk insert that skips rows whose key is already there; returns how many it
    inserted (the indexer adds campaign totals from the rows only when all went in).

    Large batches go straight to the driver: SQLite gets one prepared
    `INSERT ... ON CONFLICT DO NOTHING` run over tuples; PostgreSQL gets the rows by COPY
    into a temporary table, then one `INSERT ... SELECT ... ON CONFLICT DO NOTHING`.
    SQLAlchemy's per-row parameter processing and psycopg's pipelined executemany were
    most of a backfill's write time. Small batches are one multi-row INSERT (whose row
    count both drivers report exactly, which an executemany's need not)."""
    if not rows:
        return 0
    dialect = connection.dialect.name
    if len(rows) >= BULK_ROWS and dialect in ("sqlite", "postgresql"):
        columns = list(rows[0])
        # itemgetter builds each row's tuple in C (a generator per row was a tenth of a
        # backfill's write time); one column would give bare values, not 1-tuples.
        values = (
            list(map(itemgetter(*columns), rows))
            if len(columns) > 1
            else [(row[columns[0]],) for row in rows]
        )
        if dialect == "sqlite":
            return _sqlite_bulk(connection, table.name, columns, values)
        return _postgres_bulk(connection, table.name, columns, values)
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table).values(list(rows)).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(table).values(list(rows)).on_conflict_do_nothing()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(dialect)
    # SQLAlchemy reports an INSERT's row count only when asked to keep it: psycopg's
    # cursor is closed before the result is read, and rowcount was -1 for every small
    # batch on PostgreSQL. The indexer took that for rows already there and recomputed
    # the touched campaigns' totals from all their rows, per range with a few refunds in
    # it: at a million donations the PostgreSQL backfill ran at a quarter of its rate.
    return int(connection.execute(statement, execution_options={"preserve_rowcount": True}).rowcount)


def _sqlite_bulk(connection: Connection, name: str, columns: list[str], values: list[tuple[Any, ...]]) -> int:
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    sql = f'INSERT INTO "{name}" ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING'
    # sqlite3 sums an executemany's row counts; a skipped row counts none.
    return int(connection.exec_driver_sql(sql, values).rowcount)


def _postgres_bulk(
    connection: Connection, name: str, columns: list[str], values: list[tuple[Any, ...]]
) -> int:
    names = ", ".join(f'"{c}"' for c in columns)
    stage = f'"stage_{name}"'
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        # A temporary table per session, emptied at every commit.
        like = f'(LIKE "{name}" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS'
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} {like}")
        with cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
        cursor.execute(f'INSERT INTO "{name}" ({names}) SELECT {names} FROM {stage} ON CONFLICT DO NOTHING')
        inserted = cursor.rowcount
        cursor.execute(f"TRUNCATE {stage}")
    return inserted
