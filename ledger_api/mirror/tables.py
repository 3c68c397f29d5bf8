"""The mirror's tables, as the API sees them. The indexer owns and writes them
(indexer/models.py); everything in ledger_api/ reads them through this module, so the
indexer is the only package that knows where they are defined."""

from indexer.models import (
    Allocation,
    Block,
    Campaign,
    Charity,
    Correction,
    Cursor,
    Disbursement,
    Donation,
    Event,
    Evidence,
    Operator,
    Refund,
    table,
)

__all__ = [
    "Allocation",
    "Block",
    "Campaign",
    "Charity",
    "Correction",
    "Cursor",
    "Disbursement",
    "Donation",
    "Event",
    "Evidence",
    "Operator",
    "Refund",
    "table",
]
