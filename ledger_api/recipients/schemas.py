"""Recipient organisations: what the registrar sends, what anyone reads."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ledger_api.core.answers import Answer, Proof
from ledger_api.core.schemas import ChainText, Strict
from ledger_api.transactions.schemas import TransactionView, WriteAnswer

ADDRESS = r"^0x[0-9a-fA-F]{40}$"


class RecipientCreate(Strict):
    identifier: ChainText(128) = Field(  # type: ignore[valid-type]
        description="The organisation's public identifier: a Unified Social Credit Code (18 "
        "characters, its check character is checked), bare or as `CN-USCC-<code>`, or another "
        "scheme with its IATI-style prefix (`GB-CHC-1234567`). Never a person's ID number."
    )
    name: ChainText(200)  # type: ignore[valid-type]
    account: str = Field(
        pattern=ADDRESS,
        description="The organisation's own account: it signs its confirmations of receipt with "
        "this key, and only this key can move it. The platform never holds it.",
    )


class RecipientRegistered(WriteAnswer):
    id: str
    chain_id_hex: str
    identifier: str
    name: str
    account: str
    transactions: list[TransactionView]


class Recipient(Answer):
    """A registered recipient organisation (public: an organisation, never a person)."""

    id: str
    identifier: str
    name: str
    account: str = Field(description="The account it confirms receipts with (its own key).")
    registrar: str
    disbursements: int = Field(description="How many disbursements name it.")
    confirmations: int = Field(description="How many confirmations of receipt it has made.")
    proof: Proof


class ConfirmationView(Answer):
    """One confirmation of receipt, signed by the recipient organisation's own key."""

    id: str
    amount: int
    statement: str
    evidence_sha256: str | None = Field(description="The SHA-256 of its evidence document, if any.")
    account: str = Field(description="The recipient's account that signed it.")
    confirmed_at: str | None = Field(description="Its block's time (ISO 8601, UTC).")
    proof: Proof


class RecipientNamed(Answer):
    id: str
    identifier: str
    name: str


class ReceiptView(Answer):
    """Whether the registered recipient organisation a disbursement names confirmed receipt."""

    recipient: RecipientNamed
    state: Literal["none", "partial", "full"] = Field(
        description="none: not confirmed yet by the recipient; partial: confirmed in part; full."
    )
    amount: int = Field(description="The disbursement's amount.")
    confirmed: int = Field(description="The sum of the recipient's confirmations.")
    confirmations: list[ConfirmationView] = Field(description="Oldest first.")
