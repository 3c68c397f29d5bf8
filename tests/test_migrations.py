"""Migrations build the schema from nothing, on SQLite and PostgreSQL, go down and up
again, and leave a schema that matches the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from ledger_api.core import db
from ledger_api.core.models import Base


def _tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_migrations_upgrade_downgrade_and_upgrade_again(database_url: str) -> None:
    db.upgrade(database_url)
    assert _tables(database_url) == set(Base.metadata.tables)
    db.downgrade(database_url, "base")
    assert _tables(database_url) == set()
    db.upgrade(database_url)
    assert _tables(database_url) == set(Base.metadata.tables)


def test_models_match_the_migrated_schema(database_url: str) -> None:
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
