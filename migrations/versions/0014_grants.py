"""Contract 2.2.0's grants in the mirror: disbursements to other campaigns, and the donations that record them

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 09:20:00

grants (GrantAddressed, with the received total recomputed from its linked donations) and
grant_donations (GrantReceived): projections the indexer writes and a reorg rolls back,
like the other mirror tables.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _origin() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "grants",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("disbursement_id", sa.String(length=66), nullable=False),
        sa.Column("recipient_campaign_id", sa.String(length=66), nullable=False),
        sa.Column("recipient_charity_id", sa.String(length=66), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        *_origin(),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deployment_id", "disbursement_id"),
    )
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grants_block_number"), ["block_number"], unique=False)
        batch_op.create_index("ix_grants_recipient", ["deployment_id", "recipient_campaign_id"], unique=False)

    op.create_table(
        "grant_donations",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("donation_id", sa.String(length=66), nullable=False),
        sa.Column("source_disbursement_id", sa.String(length=66), nullable=False),
        sa.Column("campaign_id", sa.String(length=66), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        *_origin(),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deployment_id", "donation_id"),
    )
    with op.batch_alter_table("grant_donations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grant_donations_block_number"), ["block_number"], unique=False)
        batch_op.create_index(
            "ix_grant_donations_source", ["deployment_id", "source_disbursement_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("grant_donations")
    op.drop_table("grants")
