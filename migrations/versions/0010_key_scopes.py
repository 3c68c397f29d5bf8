"""API keys: an auditor's charity scope, an expiry for any key, rotation links

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 05:30:00

api_keys.charities: the charities (0x hex IDs, a JSON list) an auditor key may read, NULL
for all; api_keys.expires_at: after it the key answers 401 `key-expired` (NULL: never);
api_keys.rotated_from: the key a rotation replaced (ledger_api/keys/service.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("charities", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("rotated_from", sa.String(length=32), nullable=True))
        # One successor per key: two rotations at once cannot both win.
        batch_op.create_unique_constraint("uq_api_keys_rotated_from", ["rotated_from"])


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_constraint("uq_api_keys_rotated_from", type_="unique")
        batch_op.drop_column("rotated_from")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("charities")
