from __future__ import annotations

from pydantic import Field

from ledger_api.core.answers import Answer, Proof
from ledger_api.core.schemas import ChainText, Hash32, Strict
from ledger_api.transactions.schemas import TransactionView, WriteAnswer


class CharityCreate(Strict):
    name: ChainText(200)  # type: ignore[valid-type]
    metadata_hash: Hash32 | None = None


# ------------------------------------------------------------------ answers


class CurrencyTotals(Answer):
    """A charity's campaigns in one currency (currencies are never added together)."""

    campaigns: int
    received: int
    refunded: int
    disbursed: int
    available: int
    donation_count: int


class CharitySummary(Answer):
    id: str
    name: str
    totals_by_currency: dict[str, CurrencyTotals]
    proof: Proof


class CharityCampaign(Answer):
    id: str
    name: str
    currency: str
    closed: bool
    href: str


class Charity(CharitySummary):
    """A charity with its operator accounts (public on chain) and its first 200 campaigns."""

    operators: list[str] = Field(description="The accounts that sign the charity's records.")
    campaigns: list[CharityCampaign]


class CharityRegistered(WriteAnswer):
    id: str
    chain_id_hex: str
    name: str
    operator: str
    transactions: list[TransactionView]
