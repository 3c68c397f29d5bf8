"""The mirror's tables, as the API sees them. The indexer owns and writes them
(indexer/models.py); everything in ledger_api/ reads them through this module, so the
indexer is the only package that knows where they are defined."""

from indexer.models import (
    AccessLogSeal,
    Allocation,
    Block,
    Campaign,
    Charity,
    Correction,
    Cursor,
    Disbursement,
    DisbursementRecipient,
    Donation,
    Event,
    Evidence,
    EvidenceLink,
    EvidenceWithdrawal,
    Operator,
    ReceiptConfirmation,
    Recipient,
    Refund,
    table,
)

__all__ = [
    "AccessLogSeal",
    "Allocation",
    "Block",
    "Campaign",
    "Charity",
    "Correction",
    "Cursor",
    "Disbursement",
    "DisbursementRecipient",
    "Donation",
    "Event",
    "Evidence",
    "EvidenceLink",
    "EvidenceWithdrawal",
    "Operator",
    "ReceiptConfirmation",
    "Recipient",
    "Refund",
    "table",
]
