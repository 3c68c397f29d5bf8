"""Approvals before payout: the mirror of approval rules, proposals and votes; the proposals'
full inputs the service keeps to execute them; approver accounts and approver keys

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28 09:20:00

Mirror (the indexer writes them, a reorg rolls them back): approval_rules
(ApprovalRuleSet), approval_rule_approvers (ApproverNamed), proposals
(DisbursementProposed; approvals, state and the execution recomputed from the rows below)
and proposal_votes (DisbursementApproved, DisbursementRejected).

Service: proposal_inputs keeps each relayed proposal's whole DisbursementInput (the chain
holds only its keccak256, input_hash) so the service can execute it; approver_accounts are
the accounts a charity named as approvers, platform-held (in the keystore) or the
approver's own; api_keys.account binds an `approver` key to one of them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _origin() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
    ]


def _deployment() -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column("deployment_id", sa.Integer(), nullable=False)]


def _cascade() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "approval_rules",
        *_deployment(),
        sa.Column("campaign_id", sa.String(length=66), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("charity_id", sa.String(length=66), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("approver_count", sa.Integer(), nullable=False),
        sa.Column("validity", sa.BigInteger(), nullable=False),
        sa.Column("operator", sa.String(length=42), nullable=False),
        *_origin(),
        _cascade(),
        sa.PrimaryKeyConstraint("deployment_id", "campaign_id", "version"),
    )
    with op.batch_alter_table("approval_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_approval_rules_block_number"), ["block_number"], unique=False)
        batch_op.create_index("ix_approval_rules_charity", ["deployment_id", "charity_id"], unique=False)

    op.create_table(
        "approval_rule_approvers",
        *_deployment(),
        sa.Column("campaign_id", sa.String(length=66), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("approver", sa.String(length=42), nullable=False),
        *_origin(),
        _cascade(),
        sa.PrimaryKeyConstraint("deployment_id", "campaign_id", "version", "approver"),
    )
    with op.batch_alter_table("approval_rule_approvers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_approval_rule_approvers_block_number"), ["block_number"], unique=False
        )
        batch_op.create_index(
            "ix_approval_rule_approvers_approver", ["deployment_id", "approver"], unique=False
        )

    op.create_table(
        "proposals",
        *_deployment(),
        sa.Column("disbursement_id", sa.String(length=66), nullable=False),
        sa.Column("campaign_id", sa.String(length=66), nullable=False),
        sa.Column("input_hash", sa.String(length=66), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("recipient", sa.String(length=128), nullable=False),
        sa.Column("purpose", sa.String(length=128), nullable=False),
        sa.Column("rule_version", sa.BigInteger(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("proposer", sa.String(length=42), nullable=False),
        sa.Column("approvals", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("executed_block", sa.BigInteger(), nullable=True),
        sa.Column("executed_tx", sa.String(length=66), nullable=True),
        sa.Column("executor", sa.String(length=42), nullable=True),
        *_origin(),
        _cascade(),
        sa.PrimaryKeyConstraint("deployment_id", "disbursement_id"),
    )
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_proposals_block_number"), ["block_number"], unique=False)
        batch_op.create_index(
            "ix_proposals_campaign", ["deployment_id", "campaign_id", "block_number"], unique=False
        )

    op.create_table(
        "proposal_votes",
        *_deployment(),
        sa.Column("disbursement_id", sa.String(length=66), nullable=False),
        sa.Column("voter", sa.String(length=42), nullable=False),
        sa.Column("vote", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=True),
        *_origin(),
        _cascade(),
        sa.PrimaryKeyConstraint("deployment_id", "disbursement_id", "voter", "vote"),
    )
    with op.batch_alter_table("proposal_votes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_proposal_votes_block_number"), ["block_number"], unique=False)
        batch_op.create_index("ix_proposal_votes_voter", ["deployment_id", "voter"], unique=False)

    op.create_table(
        "proposal_inputs",
        *_deployment(),
        sa.Column("disbursement_id", sa.String(length=66), nullable=False),
        sa.Column("charity_id", sa.String(length=66), nullable=False),
        sa.Column("campaign_id", sa.String(length=66), nullable=False),
        sa.Column("input_hash", sa.String(length=66), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("proposer", sa.String(length=42), nullable=False),
        sa.Column("execution", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        _cascade(),
        sa.PrimaryKeyConstraint("deployment_id", "disbursement_id"),
    )
    with op.batch_alter_table("proposal_inputs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_proposal_inputs_charity_id"), ["charity_id"], unique=False)

    op.create_table(
        "approver_accounts",
        *_deployment(),
        sa.Column("charity_id", sa.String(length=66), nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("held_by_platform", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        _cascade(),
        sa.PrimaryKeyConstraint("deployment_id", "charity_id", "account"),
    )

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account", sa.String(length=42), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("account")
    op.drop_table("approver_accounts")
    op.drop_table("proposal_inputs")
    op.drop_table("proposal_votes")
    op.drop_table("proposals")
    op.drop_table("approval_rule_approvers")
    op.drop_table("approval_rules")
