from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, computed_field, field_validator, model_validator

from ledger_api.core import ids, reference
from ledger_api.core.answers import Answer, Named, Proof, SignedBy
from ledger_api.core.schemas import (
    Amount,
    CampaignId,
    ChainText,
    DonationId,
    Hash32,
    RecipientId,
    Strict,
    plain_text,
)
from ledger_api.evidence.schemas import EvidenceView
from ledger_api.recipients.schemas import ReceiptView
from ledger_api.transactions.schemas import TransactionView, WriteAnswer

MAX_ALLOCATIONS = 500  # the contract's bound


class AllocationIn(Strict):
    donation_id: DonationId
    amount: Amount


_DETAILS = (
    "The private person's identifying details as the charity knows them (name and ID number,"
    " as typed): never stored, logged or echoed; only their salted commitment goes on chain."
    " Normalised like a donor reference: 1 to 200 characters after that."
)


class RecipientPerson(Strict):
    """A private person paid by the disbursement."""

    reference: Annotated[
        str,
        Field(min_length=1, max_length=reference.LENGTH, description=_DETAILS),
        AfterValidator(plain_text),
        AfterValidator(reference.parse),
    ]


class RecipientProof(Strict):
    """What the recipient holds: the details the charity used and the secret it handed over."""

    reference: Annotated[
        str, Field(min_length=1, max_length=reference.TYPED_LENGTH), AfterValidator(reference.parse)
    ]
    secret: Hash32


class DisbursementCreate(Strict):
    campaign_id: CampaignId
    amount: Amount
    recipient_person: RecipientPerson | None = Field(
        default=None,
        description="A private person instead of a public recipient: the service records only"
        " `private:0x<commitment>` and answers the secret to hand to the person.",
    )
    # A public organisation ID (e.g. CN-USCC-...); for a private person, `recipient_person`.
    # Checked even when absent (after `recipient_person`), so an error names this field.
    recipient: ChainText(128) | None = Field(default=None, validate_default=True)  # type: ignore[valid-type]
    purpose: ChainText(128)  # type: ignore[valid-type]
    evidence_hash: Hash32 | None = None
    # Omitted: the service allocates first-in-first-out over the campaign's donations.
    allocations: Annotated[list[AllocationIn], Field(min_length=1, max_length=MAX_ALLOCATIONS)] | None = None
    recipient_campaign_id: CampaignId | None = Field(
        default=None,
        description="A campaign on this ledger the money is granted to (same currency, not this"
        " campaign): its charity records it as a donation naming this disbursement.",
    )
    recipient_org_id: RecipientId | None = Field(
        default=None,
        description="A registered recipient organisation the disbursement pays (RO-... or 0x hex):"
        " it may then confirm receipt with its own key.",
    )

    @field_validator("recipient")
    @classmethod
    def _recipient(cls, recipient: str | None, info: ValidationInfo) -> str | None:
        if "recipient_person" not in info.data:
            return recipient  # the person's details were refused already: that error says so
        person = info.data["recipient_person"]
        if recipient is None and person is None:
            raise ValueError(
                "a recipient is needed: recipient (public), or recipient_person (a private person)"
            )
        if recipient is not None and person is not None:
            raise ValueError(
                "give either recipient (public) or recipient_person (a private person), not both"
            )
        if recipient is not None and reference.looks_private(recipient):
            raise ValueError(
                f"a public recipient may not begin with {reference.PRIVATE_PREFIX!r}: that form is kept for"
                " private persons (use recipient_person)"
            )
        return recipient

    @field_validator("recipient_campaign_id")
    @classmethod
    def _grant(cls, recipient_campaign: str | None, info: ValidationInfo) -> str | None:
        # The contract's InvalidGrantRecipient, answered before anything is signed.
        paying = info.data.get("campaign_id")
        if (
            recipient_campaign is not None
            and paying is not None
            and ids.to_bytes32(recipient_campaign) == ids.to_bytes32(paying)
        ):
            raise ValueError("a campaign cannot grant to itself: this is the paying campaign")
        return recipient_campaign

    @field_validator("recipient_org_id")
    @classmethod
    def _org(cls, recipient_org: str | None) -> str | None:
        if recipient_org is not None and ids.to_bytes32(recipient_org, "recipient") == bytes(32):
            raise ValueError("the zero ID names no organisation: leave recipient_org_id out")
        return recipient_org

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

    @computed_field(  # type: ignore[prop-decorator]
        description='The recipient as shown: "a private person (identity withheld)" for a'
        " `private:0x<commitment>`, else as recorded."
    )
    @property
    def recipient_label(self) -> str:
        return reference.recipient_label(self.recipient)


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
    receipt: ReceiptView | None = Field(
        default=None,
        description="When it names a registered recipient organisation: whether that organisation"
        " confirmed receipt (with its own key), in part or in full.",
    )

    @computed_field(  # type: ignore[prop-decorator]
        description='The recipient as shown: "a private person (identity withheld)" for a'
        " `private:0x<commitment>`, else as recorded."
    )
    @property
    def recipient_label(self) -> str:
        return reference.recipient_label(self.recipient)


class Allocation(Answer):
    donation_id: str
    amount: int


class ApprovalNeeded(Answer):
    """The approval rule a proposed disbursement waits under."""

    rule_version: int
    threshold: int
    approvers: int
    validity_seconds: int
    note: str


class DisbursementRecorded(WriteAnswer):
    id: str
    campaign_id: str
    amount: int
    recipient: str = Field(description="As recorded on chain: `private:0x<commitment>` for a private person.")
    recipient_secret: str | None = Field(
        default=None,
        description="For a private person only: hand this to the recipient, who proves the payment"
        " with it (POST /v1/disbursements/{id}/recipient-proof); the service does not keep it.",
    )
    purpose: str
    allocation: str = Field(description='"automatic (first in, first out)" or "explicit".')
    allocations: list[Allocation]
    recipient_campaign_id: str | None = None
    recipient_org_id: str | None = Field(
        default=None, description="The registered recipient organisation it pays (RO-...), if any."
    )
    transaction: TransactionView
    status: Literal["recorded", "proposed"] = Field(
        default="recorded",
        description="`proposed` on a campaign under an approval rule: nothing is paid or counted"
        " until the rule's approvers approve it (GET /v1/proposals/{id}).",
    )
    approval: ApprovalNeeded | None = None


class RecipientProofResult(Answer):
    id: str
    matches: bool


class DocumentAnchored(Answer):
    sha256: str
    size: int
    filename: str
    media_type: str = Field(
        description="As the document's bytes show it; anything not a PDF or photo is a download."
    )
    visibility: str = Field(
        description="`public`, or `restricted`: sealed at rest, served to the charity and its auditors."
    )
    already_anchored: bool | None = Field(
        default=None, description="Present (true) when it was anchored before."
    )
    transaction: TransactionView | None = Field(
        default=None, description="Absent when it was anchored before."
    )


class EvidenceAnchored(WriteAnswer):
    disbursement_id: str
    documents: list[DocumentAnchored]


class EvidenceWithdrawal(Strict):
    """Why the document is withdrawn: recorded on chain for everyone, so no personal data."""

    reason: ChainText(256)  # type: ignore[valid-type]


class EvidenceWithdrawn(WriteAnswer):
    disbursement_id: str
    sha256: str
    reason: str
    erased: bool = Field(description="Whether this service held the document's bytes (now deleted).")
    transaction: TransactionView


class RedactedCopyLinked(WriteAnswer):
    disbursement_id: str
    original_sha256: str
    redacted_copy: DocumentAnchored
    transaction: TransactionView
