from __future__ import annotations

from pydantic import ConfigDict, Field

from ledger_api.core.answers import Answer, Proof
from ledger_api.core.schemas import ChainText, CharityId, Currency, Goal, Hash32, Strict
from ledger_api.transactions.schemas import TransactionView, WriteAnswer


class CampaignCreate(Strict):
    charity_id: CharityId
    name: ChainText(200)  # type: ignore[valid-type]
    currency: Currency
    goal: Goal
    metadata_hash: Hash32 | None = None


# ------------------------------------------------------------------ answers


class EvidenceCoverage(Answer):
    disbursements_with_evidence: int
    share_of_disbursements: float | None = Field(description="A share (0 to 1), not an amount.")
    share_of_amount: float | None = Field(description="A share (0 to 1), not an amount.")


class Campaign(Answer):
    """A campaign with its totals (minor units of its currency)."""

    id: str
    charity_id: str
    name: str
    currency: str
    goal: int
    closed: bool
    received: int
    refunded: int
    disbursed: int
    available: int
    donation_count: int = Field(description="Donations, not donors: donors cannot be told apart.")
    disbursement_count: int
    evidence_coverage: EvidenceCoverage
    proof: Proof


class FlowCampaign(Answer):
    id: str
    name: str
    currency: str


class FlowSource(Answer):
    """Donations of one month and channel."""

    id: str
    label: str
    amount: int
    count: int


class FlowTarget(Answer):
    """A disbursement, "other" disbursements, "refunded" or "unspent"."""

    id: str
    label: str
    recipient: str | None = None  # disbursements only
    amount: int


class FlowEdge(Answer):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    source: str = Field(alias="from")  # `from` in JSON; a keyword in Python
    to: str
    amount: int


class Flows(Answer):
    campaign: FlowCampaign
    sources: list[FlowSource]
    targets: list[FlowTarget]
    edges: list[FlowEdge]


class CampaignCreated(WriteAnswer):
    id: str
    charity_id: str
    name: str
    currency: str
    goal: int
    transaction: TransactionView


class CampaignClosed(WriteAnswer):
    id: str
    closed: bool
    transaction: TransactionView
