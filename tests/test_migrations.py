"""Migrations build the schema from nothing, on SQLite and PostgreSQL, go down and up
again, and leave a schema that matches the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

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


def test_campaign_evidence_totals_are_filled_from_an_existing_mirror(database_url: str) -> None:
    """0020 adds the campaigns' evidenced totals and fills them from the disbursements
    already mirrored, so an upgraded mirror answers like one indexed afresh."""
    db.upgrade(database_url, "0019")
    engine = db.make_engine(database_url)
    origin = {"block_number": 1, "tx_hash": "0x" + "22" * 32, "log_index": 0}
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO deployments (id, chain_id, address, deployment_block, source_hash)"
                    " VALUES (1, 1, :a, 0, :h)"
                ),
                {"a": "0x" + "ab" * 20, "h": "0" * 64},
            )
            for campaign in ("0x" + "c1" * 32, "0x" + "c2" * 32):
                connection.execute(
                    text(
                        "INSERT INTO campaigns (deployment_id, campaign_id, charity_id, name, currency, goal,"
                        " metadata_hash, operator, received, refunded, disbursed, donation_count,"
                        " disbursement_count, block_number, tx_hash, log_index)"
                        " VALUES (1, :c, :c, 'x', 'EUR', '1', :c, :o, 0, 0, 0, 0, 0,"
                        " :block_number, :tx_hash, :log_index)"
                    ),
                    {"c": campaign, "o": "0x" + "ab" * 20, **origin},
                )
            for index, (amount, evidence) in enumerate([(100, 2), (20, 0), (3, 1)]):
                connection.execute(
                    text(
                        "INSERT INTO disbursements (deployment_id, disbursement_id, campaign_id, amount,"
                        " recipient, purpose, allocation_count, operator, evidence_count,"
                        " block_number, tx_hash, log_index)"
                        " VALUES (1, :d, :c, :amount, :o, 'p', 0, :o, :evidence,"
                        " :block_number, :tx_hash, :log_index)"
                    ),
                    {
                        "d": "0x" + f"{index:064x}",
                        "c": "0x" + "c1" * 32,
                        "amount": amount,
                        "evidence": evidence,
                        "o": "0x" + "ab" * 20,
                        **origin,
                    },
                )
        db.upgrade(database_url)
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT campaign_id, evidenced, evidenced_count FROM campaigns ORDER BY campaign_id")
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [("0x" + "c1" * 32, 103, 2), ("0x" + "c2" * 32, 0, 0)]
