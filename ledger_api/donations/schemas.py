from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ledger_api.core.schemas import Amount, CampaignId, ChainText, Hash32, Strict, Text

MAX_BATCH = 2_000
# 2,000 donations at their longest (a 200-character reference of astral characters written
# as JSON surrogate-pair escapes, 12 bytes each, and every optional field given) take about
# 5.4 MB; anything bigger than 6 MiB is refused unread.
BATCH_BODY = 6 * 1024 * 1024


class DonationCreate(Strict):
    campaign_id: CampaignId
    amount: Amount
    # Who gave: hashed with a fresh salt into the on-chain commitment, then forgotten.
    donor_reference: Text(200)  # type: ignore[valid-type]
    channel: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")] = "unspecified"
    metadata_hash: Hash32 | None = None


class DonationBatch(Strict):
    donations: Annotated[list[DonationCreate], Field(min_length=1, max_length=MAX_BATCH)]


class RefundCreate(Strict):
    amount: Amount
    reason: ChainText(256)  # type: ignore[valid-type]


class OwnershipCheck(Strict):
    """What the donor holds: the receipt secret and the reference the charity used."""

    receipt_secret: Hash32
    donor_reference: Text(200)  # type: ignore[valid-type]
