"""Incremental reconciliation: the block ranges already checked, and a job's full flag

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-28 20:15:00

reconciled_ranges holds, per deployment, each block range a reconciliation read from the
node: the SHA-256 of its events and the hash of its last block (ledger_api/audit/
reconcile.py), so a later reconciliation re-reads only the blocks after them.
reconciliation_jobs.full says whether a job re-reads everything (the old behaviour).
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconciled_ranges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("first_block", sa.BigInteger(), nullable=False),
        sa.Column("last_block", sa.BigInteger(), nullable=False),
        sa.Column("last_block_hash", sa.String(length=66), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("events_digest", sa.String(length=64), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment_id", "first_block", name="uq_reconciled_ranges_first"),
    )
    with op.batch_alter_table("reconciliation_jobs") as batch:
        batch.add_column(sa.Column("full", sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("reconciliation_jobs") as batch:
        batch.drop_column("full")
    op.drop_table("reconciled_ranges")
