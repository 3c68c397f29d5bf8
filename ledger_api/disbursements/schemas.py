from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from ledger_api.core import ids
from ledger_api.core.answers import Answer, Named, Proof, SignedBy
from ledger_api.core.schemas import Amount, CampaignId, ChainText, DonationId, Hash32, Strict
from ledger_api.evidence.schemas import EvidenceView
from ledger_api.transactions.schemas import TransactionView, WriteAnswer

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


# ------------------------------------------------------------------ answers


class DisbursementSummary(Answer):
    """A disbursement in a campaign's list."""

    id: str
    amount: int
    currency: str
    recipient: str
    purpose: str
    allocation_count: int
    evidence_count: int
    proof: Proof


class FundingAllocation(Answer):
    """A donation's part in the disbursement."""

    donation_id: str
    amount: int
    proof: Proof


class Disbursement(Answer):
    """A disbursement with the donations that funded it and its evidence."""

    id: str
    amount: int
    currency: str
    recipient: str
    purpose: str
    campaign: Named
    charity_id: str
    proof: Proof
    signed_by: SignedBy | None = Field(
        default=None, description="Who signed the record (the charity's own key, or the platform)."
    )
    funded_by: list[FundingAllocation]
    evidence: list[EvidenceView]


class Allocation(Answer):
    donation_id: str
    amount: int


class DisbursementRecorded(WriteAnswer):
    id: str
    campaign_id: str
    amount: int
    recipient: str
    purpose: str
    allocation: str = Field(description='"automatic (first in, first out)" or "explicit".')
    allocations: list[Allocation]
    transaction: TransactionView


class DocumentAnchored(Answer):
    sha256: str
    size: int
    filename: str
    already_anchored: bool | None = Field(
        default=None, description="Present (true) when it was anchored before."
    )
    transaction: TransactionView | None = Field(
        default=None, description="Absent when it was anchored before."
    )


class EvidenceAnchored(WriteAnswer):
    disbursement_id: str
    documents: list[DocumentAnchored]
