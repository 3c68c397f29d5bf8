"""Contract 2.1.0's records in the mirror: redacted copies, withdrawn documents, access-log seals

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 06:05:00

evidence_links (RedactedCopyLinked), evidence_withdrawals (EvidenceWithdrawn) and
access_log_seals (AccessLogSealed): projections the indexer writes and a reorg rolls back,
like the other mirror tables.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
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
        "evidence_links",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("disbursement_id", sa.String(length=66), nullable=False),
        sa.Column("copy_hash", sa.String(length=66), nullable=False),
        sa.Column("original_hash", sa.String(length=66), nullable=False),
        sa.Column("operator", sa.String(length=42), nullable=False),
        *_origin(),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deployment_id", "disbursement_id", "copy_hash"),
    )
    with op.batch_alter_table("evidence_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_links_block_number"), ["block_number"], unique=False)
        batch_op.create_index("ix_evidence_links_original", ["deployment_id", "original_hash"], unique=False)

    op.create_table(
        "evidence_withdrawals",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("disbursement_id", sa.String(length=66), nullable=False),
        sa.Column("document_hash", sa.String(length=66), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=False),
        sa.Column("operator", sa.String(length=42), nullable=False),
        *_origin(),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deployment_id", "disbursement_id", "document_hash"),
    )
    with op.batch_alter_table("evidence_withdrawals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evidence_withdrawals_block_number"), ["block_number"], unique=False
        )
        batch_op.create_index(
            "ix_evidence_withdrawals_document", ["deployment_id", "document_hash"], unique=False
        )

    op.create_table(
        "access_log_seals",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("root", sa.String(length=66), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("last_row_hash", sa.String(length=66), nullable=False),
        sa.Column("sealer", sa.String(length=42), nullable=False),
        *_origin(),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deployment_id", "day"),
    )
    with op.batch_alter_table("access_log_seals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_log_seals_block_number"), ["block_number"], unique=False)


def downgrade() -> None:
    op.drop_table("access_log_seals")
    op.drop_table("evidence_withdrawals")
    op.drop_table("evidence_links")
