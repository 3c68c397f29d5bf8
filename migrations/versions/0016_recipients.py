"""Recipient organisations that confirm receipt with their own keys (contract 2.2.0)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28 09:40:00

recipients (RecipientRegistered; the account recomputed from RecipientAccountChanged),
disbursement_recipients (RecipientNamed) and receipt_confirmations (ReceiptConfirmed):
projections of the chain, written only by the indexer (indexer/models.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
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
        "recipients",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.String(length=66), nullable=False),
        sa.Column("identifier", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("registrar", sa.String(length=42), nullable=False),
        sa.Column("account_block", sa.BigInteger(), nullable=True),
        *_origin(),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deployment_id", "recipient_id"),
    )
    op.create_table(
        "disbursement_recipients",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("disbursement_id", sa.String(length=66), nullable=False),
        sa.Column("recipient_id", sa.String(length=66), nullable=False),
        *_origin(),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deployment_id", "disbursement_id"),
    )
    op.create_table(
        "receipt_confirmations",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("confirmation_id", sa.String(length=66), nullable=False),
        sa.Column("disbursement_id", sa.String(length=66), nullable=False),
        sa.Column("recipient_id", sa.String(length=66), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("confirmed_total", sa.BigInteger(), nullable=False),
        sa.Column("statement", sa.String(length=256), nullable=False),
        sa.Column("evidence_hash", sa.String(length=66), nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        *_origin(),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deployment_id", "confirmation_id"),
    )
    for table in ("recipients", "disbursement_recipients", "receipt_confirmations"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{table}_block_number"), ["block_number"], unique=False)
    op.create_index("ix_recipients_account", "recipients", ["deployment_id", "account"])
    op.create_index(
        "ix_disbursement_recipients_recipient", "disbursement_recipients", ["deployment_id", "recipient_id"]
    )
    op.create_index(
        "ix_receipt_confirmations_disbursement", "receipt_confirmations", ["deployment_id", "disbursement_id"]
    )


def downgrade() -> None:
    op.drop_table("receipt_confirmations")
    op.drop_table("disbursement_recipients")
    op.drop_table("recipients")
