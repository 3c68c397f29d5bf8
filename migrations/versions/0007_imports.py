"""Imports from bank statements: profiles, imports and the imported bank references

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 02:00:00

import_profiles: a charity's named column mappings. statement_imports: an uploaded
statement's preview and commit progress, its rows sealed (AES-GCM). imported_references:
(deployment, charity, bank reference) -> donation, the duplicate key.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("charity_id", sa.String(length=66), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("mapping", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment_id", "charity_id", "name", name="uq_import_profiles_name"),
    )
    op.create_table(
        "statement_imports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("charity_id", sa.String(length=66), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("sealed_rows", sa.LargeBinary(), nullable=False),
        sa.Column("rows_sent", sa.Integer(), nullable=False),
        sa.Column("transactions", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("statement_imports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_statement_imports_charity", ["deployment_id", "charity_id", "created_at"], unique=False
        )
    op.create_table(
        "imported_references",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("charity_id", sa.String(length=66), nullable=False),
        sa.Column("bank_reference", sa.String(length=200), nullable=False),
        sa.Column("donation_id", sa.String(length=32), nullable=False),
        sa.Column("import_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deployment_id", "charity_id", "bank_reference"),
    )


def downgrade() -> None:
    op.drop_table("imported_references")
    with op.batch_alter_table("statement_imports", schema=None) as batch_op:
        batch_op.drop_index("ix_statement_imports_charity")
    op.drop_table("statement_imports")
    op.drop_table("import_profiles")
