"""Events: the charity and campaign each belongs to, for the audit trail's filters

Allocation and evidence events name only their disbursement, donations and refunds only
their campaign; the indexer now resolves both when it writes an event, and gives an
allocation the sender of its disbursement. It also checksums the addresses of events that
carry strings, as it always did for the others. The mirror is derived data: rather than
patch old rows, this revision empties the chain-derived tables and the cursor, and the
indexer rebuilds them from the chain on its next start (the write side is untouched).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 21:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("charity_id", sa.String(length=66), nullable=True))
        batch_op.add_column(sa.Column("campaign_id", sa.String(length=66), nullable=True))
        batch_op.create_index(
            "ix_events_charity", ["deployment_id", "charity_id", "block_number", "log_index"], unique=False
        )
        batch_op.create_index(
            "ix_events_campaign", ["deployment_id", "campaign_id", "block_number", "log_index"], unique=False
        )
    _reset_mirror()


MIRROR = (
    "allocations",
    "evidence",
    "refunds",
    "corrections",
    "disbursements",
    "donations",
    "campaigns",
    "operators",
    "charities",
    "events",
    "indexer_blocks",
    "indexer_cursors",
)


def _reset_mirror() -> None:
    for table in MIRROR:
        op.execute(sa.text(f"DELETE FROM {table}"))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_campaign")
        batch_op.drop_index("ix_events_charity")
        batch_op.drop_column("campaign_id")
        batch_op.drop_column("charity_id")
