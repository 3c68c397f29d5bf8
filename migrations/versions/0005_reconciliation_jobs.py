"""Reconciliation jobs: reconciliations run in the background, their results kept

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconciliation_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("charity_id", sa.String(length=66), nullable=True),
        sa.Column("campaign_id", sa.String(length=66), nullable=True),
        sa.Column("active_scope", sa.String(length=80), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("worker", sa.String(length=100), nullable=True),
        sa.Column("progress", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("clean", sa.Boolean(), nullable=True),
        sa.Column("difference_count", sa.Integer(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment_id", "active_scope", name="uq_reconciliation_jobs_active_scope"),
        sa.UniqueConstraint("deployment_id", "slot", name="uq_reconciliation_jobs_slot"),
    )
    with op.batch_alter_table("reconciliation_jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reconciliation_jobs_status", ["deployment_id", "status", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_reconciliation_jobs_charity", ["deployment_id", "charity_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reconciliation_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_reconciliation_jobs_charity")
        batch_op.drop_index("ix_reconciliation_jobs_status")
    op.drop_table("reconciliation_jobs")
