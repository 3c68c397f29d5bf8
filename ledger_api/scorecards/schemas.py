"""The scorecard's answer. Every section states its definition (`definitions`) and links
to the records behind it (`links`)."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from ledger_api.core.answers import Answer


class Money(Answer):
    currency: str
    received: int
    refunded: int
    allocated: int
    unspent: int = Field(description="received - refunded - allocated, always.")


class Backed(Answer):
    currency: str
    disbursed: int
    backed: int
    percent: str | None = Field(description="backed / disbursed, rounded half to even to one decimal.")


class Delays(Answer):
    count: int
    median: str | None = Field(description="Days, to one decimal.")
    p90: str | None = Field(description="Days, to one decimal.")


class Evidence(Answer):
    by_currency: list[Backed]
    disbursements: int
    with_evidence: int
    without_evidence: int
    days_to_evidence: Delays


class CorrectionItem(Answer):
    id: str
    original_kind: str
    original_id: str
    reason: str


class Corrections(Answer):
    count: int
    items: list[CorrectionItem]


class Approvals(Answer):
    proposals: int
    executed: int
    rejected: int
    disbursements: int


class Confirmed(Answer):
    currency: str
    paid_to_named: int
    confirmed: int


class Recipients(Answer):
    disbursements: int
    confirmed_in_full: int
    by_currency: list[Confirmed]


class Disclosure(Answer):
    rules: str
    met: int
    met_late: int
    overdue: int
    due: int
    on_time_percent: str | None


class Scorecard(Answer):
    campaign_id: str | None = None
    charity_id: str | None = None
    as_of: date
    money: list[Money]
    evidence: Evidence
    corrections: Corrections
    approvals: Approvals | None
    recipients: Recipients | None
    disclosure: Disclosure
    definitions: dict[str, str]
    links: dict[str, str]
