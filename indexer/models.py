"""Chain-derived tables. The indexer is their only writer.

IDs, hashes and addresses are stored as 0x-prefixed lower-case hex text (addresses
checksummed), the same on SQLite and PostgreSQL. Amounts of single records are at most
the contract's MAX_AMOUNT (10^18) and fit BigInteger exactly; campaign goals may reach
10^24 and are kept as decimal text. Every row carries the block and log it came from, so
a rollback deletes exactly what lies above the common ancestor, and finality is computed
at read time from the cursor (block_number <= finalized height).
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledger_api.core.models import Base

HEX32 = String(66)
ADDRESS = String(42)


class Origin:
    """Where a row came from on chain."""

    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    tx_hash: Mapped[str] = mapped_column(HEX32)
    log_index: Mapped[int] = mapped_column(Integer)


class Cursor(Base):
    """How far a deployment is indexed: the last indexed block and its hash."""

    __tablename__ = "indexer_cursors"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(HEX32)
    head_block: Mapped[int] = mapped_column(BigInteger)
    finalized_block: Mapped[int] = mapped_column(BigInteger)


class Block(Base):
    """Hashes of indexed blocks: every block that holds ledger events, plus the
    unfinalized window, whose parent hashes reveal reorgs."""

    __tablename__ = "indexer_blocks"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(HEX32)
    parent_hash: Mapped[str] = mapped_column(HEX32)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class Event(Base):
    """Every ledger event, decoded, in chain order."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("deployment_id", "block_number", "log_index", name="uq_events_position"),
        Index("ix_events_deployment_name", "deployment_id", "name"),
        Index("ix_events_charity", "deployment_id", "charity_id", "block_number", "log_index"),
        Index("ix_events_campaign", "deployment_id", "campaign_id", "block_number", "log_index"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(HEX32)
    tx_hash: Mapped[str] = mapped_column(HEX32)
    tx_index: Mapped[int] = mapped_column(Integer)
    log_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(40))
    args: Mapped[str] = mapped_column(Text)  # JSON; integers exact (readers beyond 2^53 need big ints)
    # The account that sent the record: the event's operator or registrar; allocations
    # carry none of their own and take their disbursement's (the same transaction).
    sender: Mapped[str | None] = mapped_column(ADDRESS)
    # The charity and campaign the event belongs to, resolved when it is indexed (an
    # allocation or evidence event names only its disbursement), so an audit trail can be
    # filtered by either with an index.
    charity_id: Mapped[str | None] = mapped_column(HEX32)
    campaign_id: Mapped[str | None] = mapped_column(HEX32)


class Charity(Origin, Base):
    __tablename__ = "charities"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    charity_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    metadata_hash: Mapped[str] = mapped_column(HEX32)
    registrar: Mapped[str] = mapped_column(ADDRESS)
    # The charity holds its operator keys itself (CharityRegistered.selfCustody, fixed at
    # registration): only its own operators change its operators.
    self_custody: Mapped[bool] = mapped_column(Boolean, server_default=false())


class Operator(Base):
    """Current operator accounts; recomputed from the events of each (charity, account).

    The history of every change is the OperatorAdded/OperatorRemoved rows of `events`
    (indexed by charity: ix_events_charity), each with who made it."""

    __tablename__ = "operators"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    charity_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    account: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean)
    block_number: Mapped[int] = mapped_column(BigInteger)
    # From the latest OperatorAdded: the key is the charity's own (a self-custody
    # charity's), so records it signed were "signed by the charity's own key"; otherwise
    # "signed by the platform on the charity's behalf". A fact the registrar put on chain.
    held_by_charity: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # Who added the account (latest OperatorAdded's addedBy), and who removed it when it
    # is no longer active (latest OperatorRemoved's removedBy).
    added_by: Mapped[str | None] = mapped_column(ADDRESS)
    removed_by: Mapped[str | None] = mapped_column(ADDRESS)


class Campaign(Origin, Base):
    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_charity", "deployment_id", "charity_id"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    campaign_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    charity_id: Mapped[str] = mapped_column(HEX32)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    goal: Mapped[str] = mapped_column(String(40))
    metadata_hash: Mapped[str] = mapped_column(HEX32)
    operator: Mapped[str] = mapped_column(ADDRESS)
    closed_block: Mapped[int | None] = mapped_column(BigInteger)
    # Aggregates of the rows below: a range's new rows added, recomputed after a rollback.
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    disbursed: Mapped[int] = mapped_column(BigInteger, default=0)
    donation_count: Mapped[int] = mapped_column(BigInteger, default=0)
    disbursement_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # The disbursements with at least one evidence anchor: their total and number.
    evidenced: Mapped[int] = mapped_column(BigInteger, default=0)
    evidenced_count: Mapped[int] = mapped_column(BigInteger, default=0)


class Donation(Origin, Base):
    __tablename__ = "donations"
    __table_args__ = (
        Index("ix_donations_campaign", "deployment_id", "campaign_id", "block_number", "log_index"),
    )

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    donation_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(HEX32)
    amount: Mapped[int] = mapped_column(BigInteger)
    donor_commitment: Mapped[str] = mapped_column(HEX32)
    channel: Mapped[str] = mapped_column(HEX32)
    metadata_hash: Mapped[str] = mapped_column(HEX32)
    operator: Mapped[str] = mapped_column(ADDRESS)
    allocated: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)


class Refund(Origin, Base):
    __tablename__ = "refunds"
    __table_args__ = (Index("ix_refunds_donation", "deployment_id", "donation_id"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    refund_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    donation_id: Mapped[str] = mapped_column(HEX32)
    campaign_id: Mapped[str] = mapped_column(HEX32)
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(256))
    operator: Mapped[str] = mapped_column(ADDRESS)


class Disbursement(Origin, Base):
    __tablename__ = "disbursements"
    __table_args__ = (Index("ix_disbursements_campaign", "deployment_id", "campaign_id"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    disbursement_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(HEX32)
    amount: Mapped[int] = mapped_column(BigInteger)
    recipient: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(String(128))
    allocation_count: Mapped[int] = mapped_column(Integer)
    operator: Mapped[str] = mapped_column(ADDRESS)
    evidence_count: Mapped[int] = mapped_column(Integer, default=0)


class Allocation(Origin, Base):
    __tablename__ = "allocations"
    __table_args__ = (Index("ix_allocations_donation", "deployment_id", "donation_id"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    disbursement_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    donation_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)


class Evidence(Origin, Base):
    __tablename__ = "evidence"
    __table_args__ = (Index("ix_evidence_document", "deployment_id", "document_hash"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    disbursement_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    document_hash: Mapped[str] = mapped_column(HEX32, primary_key=True)
    operator: Mapped[str] = mapped_column(ADDRESS)


class Correction(Origin, Base):
    __tablename__ = "corrections"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    correction_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    charity_id: Mapped[str] = mapped_column(HEX32)
    original_kind: Mapped[int] = mapped_column(Integer)
    original_id: Mapped[str] = mapped_column(HEX32)
    replacement_id: Mapped[str | None] = mapped_column(HEX32)
    reason: Mapped[str] = mapped_column(String(256))
    operator: Mapped[str] = mapped_column(ADDRESS)


class EvidenceLink(Origin, Base):
    """A redacted copy and the original it was made from (RedactedCopyLinked)."""

    __tablename__ = "evidence_links"
    __table_args__ = (Index("ix_evidence_links_original", "deployment_id", "original_hash"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    disbursement_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    copy_hash: Mapped[str] = mapped_column(HEX32, primary_key=True)
    original_hash: Mapped[str] = mapped_column(HEX32)
    operator: Mapped[str] = mapped_column(ADDRESS)


class EvidenceWithdrawal(Origin, Base):
    """A document the charity withdrew, and why (EvidenceWithdrawn); its anchor stays."""

    __tablename__ = "evidence_withdrawals"
    __table_args__ = (Index("ix_evidence_withdrawals_document", "deployment_id", "document_hash"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    disbursement_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    document_hash: Mapped[str] = mapped_column(HEX32, primary_key=True)
    reason: Mapped[str] = mapped_column(String(256))
    operator: Mapped[str] = mapped_column(ADDRESS)


class AccessLogSeal(Origin, Base):
    """A sealed UTC day of the service's access log (AccessLogSealed)."""

    __tablename__ = "access_log_seals"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[int] = mapped_column(Integer, primary_key=True)  # UTC days since 1970-01-01
    root: Mapped[str] = mapped_column(HEX32)
    row_count: Mapped[int] = mapped_column(BigInteger)
    last_row_hash: Mapped[str] = mapped_column(HEX32)
    sealer: Mapped[str] = mapped_column(ADDRESS)


class Grant(Origin, Base):
    """A disbursement that went to another campaign on this ledger (GrantAddressed).

    `received` is how much of it the receiving charity has recorded so far, recomputed
    from `grant_donations` (the sum the contract's GrantReceived.sourceReceived reports),
    so a rollback of a linked donation lowers it without replaying anything."""

    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_recipient", "deployment_id", "recipient_campaign_id"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    disbursement_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    recipient_campaign_id: Mapped[str] = mapped_column(HEX32)
    recipient_charity_id: Mapped[str] = mapped_column(HEX32)
    received: Mapped[int] = mapped_column(BigInteger, default=0)


class GrantDonation(Origin, Base):
    """A donation that records (part of) a grant, and the grant it came from (GrantReceived)."""

    __tablename__ = "grant_donations"
    __table_args__ = (Index("ix_grant_donations_source", "deployment_id", "source_disbursement_id"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    donation_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    source_disbursement_id: Mapped[str] = mapped_column(HEX32)
    campaign_id: Mapped[str] = mapped_column(HEX32)
    amount: Mapped[int] = mapped_column(BigInteger)


class ApprovalRule(Origin, Base):
    """A version of a campaign's approval rule (ApprovalRuleSet): `threshold` of its
    approvers, never the proposer, must approve a disbursement within `validity` seconds
    of its proposal. Versions are never removed; each proposal keeps the one it was made
    under, so every version stays."""

    __tablename__ = "approval_rules"
    __table_args__ = (Index("ix_approval_rules_charity", "deployment_id", "charity_id"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    campaign_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    charity_id: Mapped[str] = mapped_column(HEX32)
    threshold: Mapped[int] = mapped_column(Integer)
    approver_count: Mapped[int] = mapped_column(Integer)
    validity: Mapped[int] = mapped_column(BigInteger)  # seconds
    operator: Mapped[str] = mapped_column(ADDRESS)  # who set it


class ApprovalRuleApprover(Origin, Base):
    """One approver named by a rule version (ApproverNamed)."""

    __tablename__ = "approval_rule_approvers"
    __table_args__ = (Index("ix_approval_rule_approvers_approver", "deployment_id", "approver"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    campaign_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    approver: Mapped[str] = mapped_column(ADDRESS, primary_key=True)


class Proposal(Origin, Base):
    """A proposed disbursement (DisbursementProposed). It is not a disbursement: nothing
    is drawn and no total counts it until it is executed, when its DisbursementRecorded
    lands in `disbursements` like any other.

    `approvals` and `state` are aggregates, recomputed from `proposal_votes` and the
    execution columns whenever they change (on apply and on rollback), like a campaign's
    totals. `state` is what the chain stores (pending, rejected, executed); "approved"
    (enough approvals, not executed) and "expired" (pending past `expires_at` by the
    latest indexed block's time) are derived at read time (ledger_api/approvals/reads.py)."""

    __tablename__ = "proposals"
    __table_args__ = (Index("ix_proposals_campaign", "deployment_id", "campaign_id", "block_number"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    disbursement_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(HEX32)
    input_hash: Mapped[str] = mapped_column(HEX32)
    amount: Mapped[int] = mapped_column(BigInteger)
    recipient: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(String(128))
    rule_version: Mapped[int] = mapped_column(BigInteger)
    threshold: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(BigInteger)  # Unix seconds, block time
    proposer: Mapped[str] = mapped_column(ADDRESS)
    approvals: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    # ProposalExecuted: set on apply, cleared by a rollback above its block.
    executed_block: Mapped[int | None] = mapped_column(BigInteger)
    executed_tx: Mapped[str | None] = mapped_column(HEX32)
    executor: Mapped[str | None] = mapped_column(ADDRESS)


class ProposalVote(Origin, Base):
    """An approval (DisbursementApproved) or a rejection (DisbursementRejected, with its
    reason) of a proposal. The contract allows each approver one approval and a proposal
    one rejection (it is final), so (proposal, voter, vote) is unique."""

    __tablename__ = "proposal_votes"
    __table_args__ = (Index("ix_proposal_votes_voter", "deployment_id", "voter"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    disbursement_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    voter: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    vote: Mapped[str] = mapped_column(String(8), primary_key=True)  # approve | reject
    reason: Mapped[str | None] = mapped_column(String(256))


class Recipient(Origin, Base):
    """A registered recipient organisation (RecipientRegistered): its public identifier
    (a Unified Social Credit Code, a charity number), its name and the account it confirms
    receipts with. The origin is the registration; `account` is recomputed from the
    registration and the RecipientAccountChanged rows of `events`, like an operator's
    status, so a reorg that drops a change restores the account before it."""

    __tablename__ = "recipients"
    __table_args__ = (Index("ix_recipients_account", "deployment_id", "account"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    recipient_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    account: Mapped[str] = mapped_column(ADDRESS)
    registrar: Mapped[str] = mapped_column(ADDRESS)
    # The block of the latest RecipientAccountChanged, None while the account is the
    # registered one.
    account_block: Mapped[int | None] = mapped_column(BigInteger)


class DisbursementRecipient(Origin, Base):
    """The registered recipient organisation a disbursement names (RecipientNamed)."""

    __tablename__ = "disbursement_recipients"
    __table_args__ = (Index("ix_disbursement_recipients_recipient", "deployment_id", "recipient_id"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    disbursement_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    recipient_id: Mapped[str] = mapped_column(HEX32)


class ReceiptConfirmation(Origin, Base):
    """A recipient organisation's confirmation, with its own key, that it received
    `amount` of a disbursement (ReceiptConfirmed); `confirmed_total` is the disbursement's
    confirmed total after it, as the event says. Its time is its block's."""

    __tablename__ = "receipt_confirmations"
    __table_args__ = (Index("ix_receipt_confirmations_disbursement", "deployment_id", "disbursement_id"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    confirmation_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    disbursement_id: Mapped[str] = mapped_column(HEX32)
    recipient_id: Mapped[str] = mapped_column(HEX32)
    amount: Mapped[int] = mapped_column(BigInteger)
    confirmed_total: Mapped[int] = mapped_column(BigInteger)
    statement: Mapped[str] = mapped_column(String(256))
    evidence_hash: Mapped[str] = mapped_column(HEX32)
    account: Mapped[str] = mapped_column(ADDRESS)


# Append-only projections: rows above a rollback point are deleted outright.
class CampaignEnd(Origin, Base):
    """A campaign's end date as set (CampaignEndSet): every setting is kept, the latest is
    in force; a change carries its reason."""

    __tablename__ = "campaign_ends"
    __table_args__ = (Index("ix_campaign_ends_campaign", "deployment_id", "campaign_id"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    tx_hash: Mapped[str] = mapped_column(HEX32, primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(HEX32)
    charity_id: Mapped[str] = mapped_column(HEX32)
    ends_at: Mapped[int] = mapped_column(BigInteger)  # UTC seconds
    previous_ends_at: Mapped[int] = mapped_column(BigInteger)  # zero: the first
    reason: Mapped[str] = mapped_column(String(256))
    operator: Mapped[str] = mapped_column(ADDRESS)


class Report(Origin, Base):
    """A periodic or final report of a campaign (ReportPublished): the document's hash and
    the period it covers, [period_start, period_end) in UTC seconds."""

    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_campaign", "deployment_id", "campaign_id"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    report_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(HEX32)
    charity_id: Mapped[str] = mapped_column(HEX32)
    kind: Mapped[int] = mapped_column(Integer)  # 0 periodic, 1 final
    period_start: Mapped[int] = mapped_column(BigInteger)
    period_end: Mapped[int] = mapped_column(BigInteger)
    document_hash: Mapped[str] = mapped_column(HEX32)
    operator: Mapped[str] = mapped_column(ADDRESS)


class Disposal(Origin, Base):
    """What became of a closed campaign's remaining funds (RemainingFundsDisposed)."""

    __tablename__ = "disposals"
    __table_args__ = (Index("ix_disposals_campaign", "deployment_id", "campaign_id"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    disposal_id: Mapped[str] = mapped_column(HEX32, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(HEX32)
    charity_id: Mapped[str] = mapped_column(HEX32)
    disposition: Mapped[int] = mapped_column(Integer)  # 0 returned, 1 moved, 2 kept under a rule
    amount: Mapped[int] = mapped_column(BigInteger)
    available: Mapped[int] = mapped_column(BigInteger)
    target_campaign_id: Mapped[str | None] = mapped_column(HEX32)
    rule: Mapped[str] = mapped_column(String(256))
    document_hash: Mapped[str | None] = mapped_column(HEX32)
    operator: Mapped[str] = mapped_column(ADDRESS)


APPEND_ONLY = (
    Charity,
    Campaign,
    Donation,
    Refund,
    Disbursement,
    Allocation,
    Evidence,
    Correction,
    EvidenceLink,
    EvidenceWithdrawal,
    AccessLogSeal,
    Grant,
    GrantDonation,
    ApprovalRule,
    ApprovalRuleApprover,
    Proposal,
    ProposalVote,
    Recipient,
    DisbursementRecipient,
    ReceiptConfirmation,
    CampaignEnd,
    Report,
    Disposal,
)


def table(model: type[Base]) -> Table:
    """The Core table of a model, typed as a Table (mypy sees `__table__` as a FromClause)."""
    return cast(Table, model.__table__)
