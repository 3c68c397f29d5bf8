"""The mirror's tables, as the API sees them. The indexer owns and writes them
(indexer/models.py); everything in ledger_api/ reads them through this module, so the
indexer is the only package that knows where they are defined."""

from indexer.models import (
    AccessLogSeal,
    Allocation,
    ApprovalRule,
    ApprovalRuleApprover,
    Block,
    Campaign,
    Charity,
    Correction,
    Cursor,
    Disbursement,
    Donation,
    Event,
    Evidence,
    EvidenceLink,
    EvidenceWithdrawal,
    Operator,
    Proposal,
    ProposalVote,
    Refund,
    table,
)

__all__ = [
    "AccessLogSeal",
    "Allocation",
    "ApprovalRule",
    "ApprovalRuleApprover",
    "Block",
    "Campaign",
    "Charity",
    "Correction",
    "Cursor",
    "Disbursement",
    "Donation",
    "Event",
    "Evidence",
    "EvidenceLink",
    "EvidenceWithdrawal",
    "Operator",
    "Proposal",
    "ProposalVote",
    "Refund",
    "table",
]
