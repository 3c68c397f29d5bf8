from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ledger_api.core.answers import Answer, Proof
from ledger_api.core.schemas import ChainText, Hash32, Strict
from ledger_api.transactions.schemas import TransactionView, WriteAnswer

ADDRESS = r"^0x[0-9a-fA-F]{40}$"
Custody = Literal["platform", "self"]


class CharityCreate(Strict):
    name: ChainText(200)  # type: ignore[valid-type]
    metadata_hash: Hash32 | None = None
    custody: Custody = Field(
        default="platform",
        description="platform: the service makes and keeps the charity's operator key and signs for "
        "it. self: the charity holds its own key (`operator`), signs every record itself and the "
        "service only relays them; the platform can never write in its name.",
    )
    operator: str | None = Field(
        default=None,
        pattern=ADDRESS,
        description="With custody=self: the charity's own operator account (its key never reaches us).",
    )

    @model_validator(mode="after")
    def _operator_with_self_custody(self) -> CharityCreate:
        if (self.custody == "self") != (self.operator is not None):
            raise ValueError("custody=self needs the charity's own `operator` address, and only it takes one")
        if self.operator is not None and int(self.operator, 16) == 0:
            raise ValueError("the operator cannot be the zero address")
        return self


class OperatorChange(Strict):
    account: str = Field(pattern=ADDRESS, description="The operator account to add.")


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


class OperatorChangeView(Answer):
    """One operator change, as the chain recorded it (OperatorAdded / OperatorRemoved)."""

    change: Literal["added", "removed"]
    account: str
    by: str = Field(description="Who made the change: the registrar, or (self-custody) an operator.")
    by_role: Literal["registrar", "operator"] = Field(
        description="registrar: the platform made the change; operator: one of the charity's own operators."
    )
    held_by_charity: bool | None = Field(
        default=None, description="For an addition: whether the key is the charity's own (on chain)."
    )
    proof: Proof


class Charity(CharitySummary):
    """A charity with its operator accounts (public on chain), who holds their keys, every
    change of them, and its first 200 campaigns."""

    operators: list[str] = Field(description="The accounts that sign the charity's records.")
    custody: Custody = Field(
        description="self: the charity holds its operator keys and signs its records itself; "
        "platform: the platform holds them and signs on its behalf (CharityRegistered.selfCustody)."
    )
    operator_changes: list[OperatorChangeView] = Field(description="Every operator change, oldest first.")
    campaigns: list[CharityCampaign]


class CharityRegistered(WriteAnswer):
    id: str
    chain_id_hex: str
    name: str
    operator: str
    custody: Custody
    transactions: list[TransactionView]


class OperatorChanged(WriteAnswer):
    charity_id: str
    account: str
    change: Literal["added", "removed"]
    transaction: TransactionView
