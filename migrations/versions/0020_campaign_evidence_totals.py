"""Campaigns keep their evidenced disbursements' count and sum

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29 04:00:00

campaigns.evidenced_count and campaigns.evidenced are the number and total amount of the
campaign's disbursements with at least one evidence anchor. The campaign page's evidence
coverage counted them from the campaign's disbursements on every read, which grew with
the campaign; the indexer now keeps them (indexer/projections.py). Existing rows are
filled from the mirror here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("evidenced", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("evidenced_count", sa.BigInteger(), server_default="0", nullable=False))
    op.execute(
        """
        UPDATE campaigns SET
          evidenced = (SELECT COALESCE(SUM(d.amount), 0) FROM disbursements d
                       WHERE d.deployment_id = campaigns.deployment_id
                         AND d.campaign_id = campaigns.campaign_id AND d.evidence_count > 0),
          evidenced_count = (SELECT COUNT(*) FROM disbursements d
                             WHERE d.deployment_id = campaigns.deployment_id
                               AND d.campaign_id = campaigns.campaign_id AND d.evidence_count > 0)
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("evidenced_count")
        batch_op.drop_column("evidenced")
