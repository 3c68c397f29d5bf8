"""Self-custody (contract 2.0.0): a charity's custody and who holds and changed its operators

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 12:00:00

charities.self_custody mirrors CharityRegistered.selfCustody; operators.held_by_charity,
added_by and removed_by mirror OperatorAdded.heldByCharity/addedBy and
OperatorRemoved.removedBy. The history of operator changes is the OperatorAdded and
OperatorRemoved rows of `events`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("charities", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("self_custody", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("operators", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("held_by_charity", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("added_by", sa.String(length=42), nullable=True))
        batch_op.add_column(sa.Column("removed_by", sa.String(length=42), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operators", schema=None) as batch_op:
        batch_op.drop_column("removed_by")
        batch_op.drop_column("added_by")
        batch_op.drop_column("held_by_charity")
    with op.batch_alter_table("charities", schema=None) as batch_op:
        batch_op.drop_column("self_custody")
