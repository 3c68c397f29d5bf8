"""The access log: a hash-chained, append-only row per authenticated read of non-public data

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 05:30:00

access_log (ledger_api/core/access_log.py) takes one row per read: never updated or
deleted, which triggers enforce on SQLite and PostgreSQL alike (a DB admin can drop them;
the hash chain and the daily Merkle root on chain then tell).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

REFUSAL = "access_log is append-only"


def upgrade() -> None:
    op.create_table(
        "access_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("charity_id", sa.String(length=32), nullable=True),
        sa.Column("campaign_id", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=True),
        sa.Column("record_ids", sa.Text(), nullable=True),
        sa.Column("records_digest", sa.String(length=64), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("row_hash"),
    )
    op.create_index("ix_access_log_day", "access_log", ["day", "seq"])
    op.create_index("ix_access_log_key", "access_log", ["key_id", "seq"])
    op.create_index("ix_access_log_charity", "access_log", ["charity_id", "seq"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER access_log_no_change BEFORE UPDATE OR DELETE ON access_log "
            "FOR EACH ROW EXECUTE FUNCTION access_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER access_log_no_{action.lower()} BEFORE {action} ON access_log "
                f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
            )


def downgrade() -> None:
    op.drop_index("ix_access_log_charity", table_name="access_log")
    op.drop_index("ix_access_log_key", table_name="access_log")
    op.drop_index("ix_access_log_day", table_name="access_log")
    op.drop_table("access_log")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION access_log_append_only()")
