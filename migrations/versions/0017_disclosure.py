"""Campaign end dates, reports and disposals of remaining funds (contract 2.3.0)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-28 16:20:00

campaign_ends (CampaignEndSet: every setting, the latest in force), reports
(ReportPublished) and disposals (RemainingFundsDisposed): projections of the chain, written
only by the indexer (indexer/models.py), from which the disclosure calendar is computed.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _origin() -> list[sa.Column]:
    return [
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "campaign_ends",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(length=66), nullable=False),
        sa.Column("charity_id", sa.String(length=66), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=False),
        sa.Column("previous_ends_at", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=False),
        sa.Column("operator", sa.String(length=42), nullable=False),
        *_origin(),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deployment_id", "tx_hash", "log_index"),
    )
    op.create_table(
        "reports",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.String(length=66), nullable=False),
        sa.Column("campaign_id", sa.String(length=66), nullable=False),
        sa.Column("charity_id", sa.String(length=66), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.BigInteger(), nullable=False),
        sa.Column("period_end", sa.BigInteger(), nullable=False),
        sa.Column("document_hash", sa.String(length=66), nullable=False),
        sa.Column("operator", sa.String(length=42), nullable=False),
        *_origin(),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deployment_id", "report_id"),
    )
    op.create_table(
        "disposals",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("disposal_id", sa.String(length=66), nullable=False),
        sa.Column("campaign_id", sa.String(length=66), nullable=False),
        sa.Column("charity_id", sa.String(length=66), nullable=False),
        sa.Column("disposition", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("available", sa.BigInteger(), nullable=False),
        sa.Column("target_campaign_id", sa.String(length=66), nullable=True),
        sa.Column("rule", sa.String(length=256), nullable=False),
        sa.Column("document_hash", sa.String(length=66), nullable=True),
        sa.Column("operator", sa.String(length=42), nullable=False),
        *_origin(),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deployment_id", "disposal_id"),
    )
    for table in ("campaign_ends", "reports", "disposals"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{table}_block_number"), ["block_number"], unique=False)
        op.create_index(f"ix_{table}_campaign", table, ["deployment_id", "campaign_id"])


def downgrade() -> None:
    for table in ("disposals", "reports", "campaign_ends"):
        op.drop_table(table)
