"""The import's shapes: the column mapping a charity saves as a profile, and every answer.

Every verdict and problem carries a stable `code` and its `params` (for the console to
say in Chinese or English) and an English `message`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ledger_api.core.answers import Answer
from ledger_api.core.schemas import CampaignId, Strict, Text

Column = Text(100)  # a column's name as the header row spells it
# A name she will recognise next month, in her own script ("工商银行", "ICBC main"): letters
# and digits of any language, inner spaces, dots, dashes, brackets; no slash, no control.
PROFILE_NAME = r"^\w[\w .()-]{0,63}$"
ProfileName = Annotated[str, Field(pattern=PROFILE_NAME)]
Verdict = Literal["record", "duplicate", "invalid", "would_revert", "outgoing", "refund", "recorded"]
ImportState = Literal["previewed", "queued", "running", "done", "failed"]


class Mapping(Strict):
    """Which column holds what. The amount is either one signed column (`amount`: credits
    positive, debits negative or in parentheses) or two (`credit`, `debit`); in major
    units (yuan: `1,234.50`) or minor units (fen: `123450`)."""

    date: Column | None = None  # type: ignore[valid-type]
    time: Column | None = None  # type: ignore[valid-type]
    date_format: Text(40) | None = Field(  # type: ignore[valid-type]
        default=None, description="strptime format of date (and time); default: ISO-like dates"
    )
    amount: Column | None = None  # type: ignore[valid-type]
    credit: Column | None = None  # type: ignore[valid-type]
    debit: Column | None = None  # type: ignore[valid-type]
    units: Literal["major", "minor"] = "major"
    payer_reference: Column  # type: ignore[valid-type]
    bank_reference: Column  # type: ignore[valid-type]
    channel: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")] = "bank-transfer"
    channel_column: Column | None = None  # type: ignore[valid-type]
    campaign_id: CampaignId | None = None
    campaign_column: Column | None = None  # type: ignore[valid-type]
    balance: Column | None = None  # type: ignore[valid-type]
    refund_of: Column | None = Field(  # type: ignore[valid-type]
        default=None, description="A column holding a donation ID: a debit naming one is a refund."
    )

    @model_validator(mode="after")
    def _complete(self) -> Mapping:
        if (self.amount is None) == (self.credit is None and self.debit is None):
            raise ValueError("map either `amount` (one signed column) or `credit` and/or `debit`")
        if (self.campaign_id is None) == (self.campaign_column is None):
            raise ValueError("give either `campaign_id` (one campaign) or `campaign_column`")
        return self

    def columns(self) -> list[str]:
        names: tuple[str | None, ...] = (
            self.date,
            self.time,
            self.amount,
            self.credit,
            self.debit,
            self.payer_reference,
            self.bank_reference,
            self.channel_column,
            self.campaign_column,
            self.balance,
            self.refund_of,
        )
        return [n for n in names if n is not None]


class Profile(Answer):
    name: str
    mapping: dict[str, Any]
    updated_at: str


class Profiles(Answer):
    profiles: list[Profile]


class RowVerdict(Answer):
    """One row's verdict. `code` is stable (`already-imported`, `amount-too-precise`, a
    contract error such as `CampaignClosed`); `params` are what the message names."""

    line: int
    bank_reference: str
    verdict: Verdict
    code: str | None = None
    column: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    message: str | None = None
    campaign_id: str | None = None
    amount: int | None = Field(default=None, description="Minor units; negative for a debit.")
    donation_id: str | None = None


class CampaignTotal(Answer):
    campaign_id: str
    currency: str | None
    rows: int
    amount: int


class Progress(Answer):
    state: ImportState
    rows_to_send: int
    rows_sent: int
    transactions: int
    error: str | None = None


class ImportPreview(Answer):
    """An import: what the file was read as, every verdict's count, the totals per campaign
    of the rows that would be recorded, and the rows (the problems first, or one page)."""

    id: str
    filename: str
    encoding: str
    delimiter: str | None
    header_line: int
    columns: list[str]
    rows: int
    verdicts: dict[str, int]
    totals: list[CampaignTotal]
    progress: Progress
    items: list[RowVerdict]
    expires_at: str


class ImportSummary(Answer):
    """An import in the charity's list (newest first)."""

    id: str
    filename: str
    state: ImportState
    rows: int
    rows_sent: int
    transactions: int
    created_at: str
    expires_at: str


class Imports(Answer):
    imports: list[ImportSummary]


class StatementRow(Answer):
    line: int
    bank_reference: str
    date: str | None
    amount: int
    donation_id: str | None


class LedgerDonation(Answer):
    donation_id: str
    campaign_id: str
    amount: int
    block_number: int
    timestamp: int


class StatementCheck(Answer):
    """The ledger's received total for the period against the statement's credits, and
    what is on one side only: `missing` statement credits with no donation on the ledger,
    `extra` donations on the ledger in the period with no statement row."""

    campaign_id: str | None
    period_from: str | None
    period_to: str | None
    ledger_received: int
    statement_credits: int
    closing_balance: int | None
    matched: int
    missing: list[StatementRow]
    extra: list[LedgerDonation]
