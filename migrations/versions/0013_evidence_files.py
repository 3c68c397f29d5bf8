"""Evidence at rest: what each stored document is, and whether the public may read it

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 06:15:00

evidence_files (ledger_api/core/documents.py): per stored document, its disbursement and
charity, `public` or `restricted` (sealed with AES-GCM under `key_id`), its cleaned name,
the media type its bytes show, its size, and when it was withdrawn (its bytes erased).
Documents stored before this revision have no row: they are public, served as downloads.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_files",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("disbursement_id", sa.String(length=66), nullable=False),
        sa.Column("charity_id", sa.String(length=66), nullable=False),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deployment_id", "sha256"),
    )
    with op.batch_alter_table("evidence_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_files_charity_id"), ["charity_id"], unique=False)


def downgrade() -> None:
    op.drop_table("evidence_files")
