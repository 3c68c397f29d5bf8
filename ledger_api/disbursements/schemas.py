from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from ledger_api.core import ids
from ledger_api.core.schemas import Amount, CampaignId, ChainText, DonationId, Hash32, Strict

MAX_ALLOCATIONS = 500  # the contract's bound


class AllocationIn(Strict):
    donation_id: DonationId
    amount: Amount


class DisbursementCreate(Strict):
    campaign_id: CampaignId
    amount: Amount
    # A public organisation ID (e.g. CN-USCC-...) or a commitment for a private person.
    recipient: ChainText(128)  # type: ignore[valid-type]
    purpose: ChainText(128)  # type: ignore[valid-type]
    evidence_hash: Hash32 | None = None
    # Omitted: the service allocates first-in-first-out over the campaign's donations.
    allocations: Annotated[list[AllocationIn], Field(min_length=1, max_length=MAX_ALLOCATIONS)] | None = None

    @model_validator(mode="after")
    def _sum(self) -> DisbursementCreate:
        if self.allocations is not None:
            total = sum(a.amount for a in self.allocations)
            if total != self.amount:
                raise ValueError(f"allocations add up to {total}, not the amount {self.amount}")
            # By on-chain ID: DN-ABCD-..., dn-abcd-... and its 0x hex are one donation.
            seen = [ids.to_bytes32(a.donation_id) for a in self.allocations]
            if len(set(seen)) != len(seen):
                raise ValueError("a donation appears twice in the allocations")
        return self
