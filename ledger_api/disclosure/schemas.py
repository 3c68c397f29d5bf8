"""Disclosure: what the writes take and what the calendar answers."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, StrictInt, model_validator

from ledger_api.core.answers import Answer
from ledger_api.core.schemas import CampaignId, ChainText, Strict
from ledger_api.transactions.schemas import TransactionView, WriteAnswer

# Dates the calendar counts with: a day that maps to a block timestamp (unsigned, and far
# from the ends of Python's date range), so no date can overflow into a 500.
EARLIEST, LATEST = date(2000, 1, 1), date(2199, 12, 31)
LedgerDate = Annotated[date, Field(ge=EARLIEST, le=LATEST)]

Sha256Hex = Field(pattern=r"^[0-9a-fA-F]{64}$", description="The document's SHA-256, 64 hex digits.")

# ------------------------------------------------------------------ writes


class EndDateSet(Strict):
    ends_on: LedgerDate = Field(description="The campaign's last day (in the rule set's time zone).")
    reason: ChainText(256) | None = Field(  # type: ignore[valid-type]
        default=None, description="Required when the campaign has an end date already: why it changes."
    )


class ReportPeriod(Strict):
    kind: Literal["periodic", "final"]
    period_start: LedgerDate
    period_end: LedgerDate = Field(description="The last day the report covers.")

    @model_validator(mode="after")
    def _ordered(self) -> ReportPeriod:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


class ReportPublish(ReportPeriod):
    document_sha256: str = Sha256Hex


class DisposalRecord(Strict):
    disposition: Literal["returned_to_donors", "moved_to_campaign", "kept_under_rule"]
    amount: StrictInt = Field(
        ge=0, le=10**24, description="Minor units, at most what the campaign holds; 0: nothing remained."
    )
    target_campaign_id: CampaignId | None = Field(default=None, description="moved_to_campaign only.")
    rule: ChainText(256) | None = Field(  # type: ignore[valid-type]
        default=None,
        description="kept_under_rule: the rule the funds are kept under (required).",
    )
    document_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")

    @model_validator(mode="after")
    def _fits(self) -> DisposalRecord:
        moved = self.disposition == "moved_to_campaign"
        if moved != (self.target_campaign_id is not None):
            raise ValueError("target_campaign_id is given exactly when the disposition is moved_to_campaign")
        if self.disposition == "kept_under_rule" and not self.rule:
            raise ValueError("kept_under_rule needs the rule the funds are kept under")
        return self


class CorrectionRecord(Strict):
    original_kind: Literal["campaign", "donation", "refund", "disbursement", "report", "disposal"]
    original_id: str = Field(min_length=1, max_length=40)
    replacement_id: str | None = Field(default=None, max_length=40)
    reason: ChainText(256) = Field(  # type: ignore[valid-type]
        description="Required: the explanation published with the correction (更正说明)."
    )


class EndDateAnswer(WriteAnswer):
    campaign_id: str
    ends_on: date
    transaction: TransactionView


class ReportAnswer(WriteAnswer):
    id: str
    campaign_id: str
    kind: str
    period_start: date
    period_end: date
    document_sha256: str
    document_href: str | None = Field(
        default=None, description="Where the public reads the report, when it was uploaded here."
    )
    transaction: TransactionView


class DisposalAnswer(WriteAnswer):
    id: str
    campaign_id: str
    disposition: str
    amount: int
    transaction: TransactionView


class CorrectionAnswer(WriteAnswer):
    id: str
    original_kind: str
    original_id: str
    reason: str
    transaction: TransactionView


# ------------------------------------------------------------------ the calendar


class Citation(Answer):
    document: str
    article: str | None
    text: str
    note: str | None = None


class Satisfied(Answer):
    kind: str = Field(description="report:periodic, report:final, disposal or correction")
    id: str
    on: date = Field(description="The day it was recorded on chain (block time, rule set's zone).")
    tx_hash: str
    href: str


class ObligationStatus(Answer):
    rule: str
    title: str
    cites: Citation
    due_on: date | None = Field(description="None for a rule the contract enforces on every record.")
    status: Literal["met", "met_late", "due", "overdue"]
    days_late: int | None = Field(
        description="met_late: days after the due date it was met; overdue: days past the due date so far."
    )
    satisfied_by: Satisfied | None


class EndChange(Answer):
    ends_on: date
    previous_ends_on: date | None
    reason: str
    on: date
    tx_hash: str


class ReportView(Answer):
    id: str
    kind: str
    period_start: date
    period_end: date = Field(description="The last day covered.")
    document_sha256: str
    document_href: str = Field(
        description="Where the document is, or where it is anchored if not stored here."
    )
    on: date


class DisposalView(Answer):
    id: str
    disposition: str
    amount: int
    available: int = Field(description="What the campaign held undisbursed when it was recorded.")
    target_campaign_id: str | None
    rule: str
    on: date


class CampaignDisclosure(Answer):
    campaign_id: str
    charity_id: str
    name: str
    currency: str
    starts_on: date
    ends_on: date | None
    closed_on: date | None
    remaining: int = Field(
        description="Undisbursed, unrefunded funds at the end (or as of the date, before it)."
    )
    end_changes: list[EndChange]
    reports: list[ReportView]
    disposals: list[DisposalView]
    obligations: list[ObligationStatus]
    worst: Literal["met", "met_late", "due", "overdue"] | None


class RuleSetView(Answer):
    id: str
    version: str
    title: str
    timezone: str
    source: dict[str, str]


class DisclosureSummary(Answer):
    campaigns: int
    overdue: int
    due: int
    met_late: int
    met: int
    late_campaigns: list[str] = Field(description="Campaigns with an obligation overdue, by ID.")


class DisclosureReport(Answer):
    as_of: date
    rules: RuleSetView
    summary: DisclosureSummary
    campaigns: list[CampaignDisclosure]
