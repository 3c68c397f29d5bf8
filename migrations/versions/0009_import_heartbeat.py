"""Imports: a heartbeat for the commit, so one whose process died is resumed

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 02:40:00

statement_imports.heartbeat_at: written by the running commit; an import `queued` or
`running` whose heartbeat is old is taken over and resumed (ledger_api/imports/service.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("statement_imports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("statement_imports", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
