from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, computed_field, field_validator

from ledger_api.core import reference
from ledger_api.core.answers import Answer, MirrorPosition, Named, Proof, SignedBy
from ledger_api.core.schemas import (
    Amount,
    CampaignId,
    ChainText,
    DisbursementId,
    Hash32,
    Strict,
    plain_text,
)
from ledger_api.evidence.schemas import EvidenceView
from ledger_api.recipients.schemas import ReceiptView
from ledger_api.transactions.schemas import TransactionView, WriteAnswer

MAX_BATCH = 2_000
# 2,000 donations at their longest (a 200-character reference of astral characters written
# as JSON surrogate-pair escapes, 12 bytes each, and every optional field given) take about
# 5.4 MB; anything bigger than 6 MiB is refused unread.
BATCH_BODY = 6 * 1024 * 1024

_NORMALISED = AfterValidator(reference.parse)
_SAID = (
    "Normalised before it is hashed (Unicode NFC, any run of whitespace one space, none at the"
    " ends): 1 to 200 characters after that, no control or invisible formatting characters."
)
# As the charity records it: at most 200 characters as sent (so the batch bound above holds).
# As the charity records it: control characters (a tab, a line break, U+2028) are refused
# as in every other text field, not turned into spaces, so what the charity keys in is
# what the receipt prints; the donor's typed copy below may carry them (pasted), and
# normalising maps them to spaces, so it still matches.
RecordedReference = Annotated[
    str,
    Field(min_length=1, max_length=reference.LENGTH, description=_SAID),
    AfterValidator(plain_text),
    _NORMALISED,
]
# As the donor types it again: room for spacing and decomposed letters.
TypedReference = Annotated[
    str, Field(min_length=1, max_length=reference.TYPED_LENGTH, description=_SAID), _NORMALISED
]


class DonationCreate(Strict):
    campaign_id: CampaignId
    amount: Amount
    source_disbursement_id: DisbursementId | None = Field(
        default=None,
        description="A grant from another campaign on this ledger that this donation records"
        " (recordGrantDonation): no donor reference then; its donor commitment is the public"
        " keccak256(tag || source ID), see ledger_api/core/ids.py.",
    )
    # Who gave: normalised, hashed with a fresh salt into the on-chain commitment, then forgotten.
    # Checked even when absent (after source_disbursement_id), so an error names this field.
    donor_reference: RecordedReference | None = Field(default=None, validate_default=True)
    channel: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")] = "unspecified"
    metadata_hash: Hash32 | None = None

    @field_validator("donor_reference")
    @classmethod
    def _donor_or_grant(cls, donor: str | None, info: ValidationInfo) -> str | None:
        if "source_disbursement_id" not in info.data:
            return donor  # the source ID was refused already: that error says so
        source = info.data["source_disbursement_id"]
        if source is None and donor is None:
            raise ValueError(
                "a donor_reference is needed (or source_disbursement_id, for a grant from another campaign)"
            )
        if source is not None and donor is not None:
            raise ValueError("a grant has no donor: give source_disbursement_id or donor_reference, not both")
        return donor


class DonationBatch(Strict):
    donations: Annotated[list[DonationCreate], Field(min_length=1, max_length=MAX_BATCH)]


class RefundCreate(Strict):
    amount: Amount
    reason: ChainText(256)  # type: ignore[valid-type]


class OwnershipCheck(Strict):
    """What the donor holds: the receipt secret and the reference the charity used."""

    receipt_secret: Hash32
    donor_reference: TypedReference


# ------------------------------------------------------------------ answers


class DonationSummary(Answer):
    """A donation in a public list: amounts, channel and time only."""

    id: str
    amount: int
    currency: str
    channel: str
    allocated: int
    refunded: int
    remaining: int
    proof: Proof


class ApprovalVote(Answer):
    account: str
    at: str | None = Field(description="When it was recorded (block time, UTC ISO 8601).")
    proof: Proof = Field(description="The approval's event (DisbursementApproved) on the chain.")


class PayoutApproval(Answer):
    """Who proposed a payout made under an approval rule and who approved it: the contract
    counted it only once `threshold` approvers other than the proposer had approved."""

    proposer: str
    proposed_at: str | None
    rule_version: int
    threshold: int
    approvals: list[ApprovalVote]
    proof: Proof = Field(description="The proposal's event on the chain.")


class TraceDisbursement(Answer):
    id: str
    amount: int
    recipient: str
    purpose: str
    proof: Proof
    evidence: list[EvidenceView]
    receipt: ReceiptView | None = Field(
        default=None,
        description="When it names a registered recipient organisation: what that organisation"
        " confirmed it received (with its own key), or that it has not yet.",
    )
    approval: PayoutApproval | None = Field(
        default=None, description="Who proposed and approved it, when its campaign required approvals."
    )

    @computed_field(  # type: ignore[prop-decorator]
        description='The recipient as shown: "a private person (identity withheld)" for a'
        " `private:0x<commitment>`, else as recorded."
    )
    @property
    def recipient_label(self) -> str:
        return reference.recipient_label(self.recipient)


class TraceAllocation(Answer):
    """A part of the donation allocated to a disbursement."""

    amount: int
    proof: Proof
    disbursement: TraceDisbursement


class TraceRefund(Answer):
    id: str
    amount: int
    reason: str
    proof: Proof


class HopDonation(Answer):
    """A donation on the way: the root, or one recording (part of) a grant."""

    id: str
    campaign: Named
    charity: Named
    amount: int
    donor_share: int = Field(description="The traced donor's part of it, in minor units.")
    source_disbursement_id: str | None = Field(default=None, description="The grant it records.")


class HopDisbursement(Answer):
    id: str
    campaign: Named
    charity: Named
    amount: int
    recipient: str
    purpose: str
    donor_share: int = Field(description="The traced donor's part of it (largest remainder).")
    recipient_campaign: Named | None = Field(
        default=None, description="The campaign on this ledger it was granted to, if any."
    )
    proof: Proof | None = None
    evidence: list[EvidenceView] = Field(default_factory=list)
    approval: PayoutApproval | None = Field(
        default=None, description="Who proposed and approved it, when its campaign required approvals."
    )
    receipt: ReceiptView | None = Field(
        default=None,
        description="When it names a registered recipient organisation: what that organisation"
        " confirmed it received (with its own key), or that it has not yet.",
    )


class TraceHop(Answer):
    """One hop: the donations the donor's money sat in, and the payments made from them.
    entered = sum of the disbursements' donor_share + unspent, exactly."""

    depth: int
    entered: int = Field(description="The donor's part of this hop's donations.")
    not_recorded: int = Field(
        description="The donor's part of the previous hop's grants their receivers have not recorded yet."
    )
    donations: list[HopDonation]
    disbursements: list[HopDisbursement]
    unspent: int = Field(description="The donor's part not paid out at this hop (not yet, or refunded).")


class DonationTrace(Answer):
    """The donor's trace: the donation, where every part of it went, and each step's proof."""

    id: str
    amount: int
    currency: str
    channel: str
    campaign: Named
    charity: Named
    proof: Proof
    signed_by: SignedBy | None = Field(
        default=None, description="Who signed the donation's record (the charity's own key, or the platform)."
    )
    allocated: int
    refunded: int
    remaining: int
    allocations: list[TraceAllocation]
    refunds: list[TraceRefund]
    hops: list[TraceHop] | None = Field(
        default=None, description="With ?depth=N (1..5): the money followed N hops through grants."
    )
    mirror: MirrorPosition


class Ownership(Answer):
    id: str
    matches: bool


class RecordedDonation(WriteAnswer):
    """A donation just recorded (a batch lists them, with the transactions apart)."""

    id: str
    campaign_id: str
    amount: int
    channel: str
    receipt_secret: str | None = Field(
        default=None,
        description="Give it to the donor; the service does not keep it. None for a grant (no donor).",
    )
    donor_commitment: str
    source_disbursement_id: str | None = None


class DonationRecorded(RecordedDonation):
    transaction: TransactionView


class DonationsRecorded(WriteAnswer):
    donations: list[RecordedDonation]
    transactions: list[TransactionView]


class RefundRecorded(WriteAnswer):
    id: str
    donation_id: str
    amount: int
    reason: str
    transaction: TransactionView
