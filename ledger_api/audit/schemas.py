"""The audit views as answers: the trail, anomaly reports and reconciliations."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ledger_api.core.answers import Answer, Proof


class AuditScope(Answer):
    """What the answer covers: one campaign, one charity, or (both null) everything."""

    charity_id: str | None
    campaign_id: str | None


class TrailEntry(Answer):
    """A ledger event as the contract emitted it (record IDs readable, snake case)."""

    kind: str
    event: str
    charity_id: str | None
    campaign_id: str | None
    data: dict[str, Any] = Field(description="The event's fields; amounts are integers.")
    sender: str | None
    signed_by: Literal["charity", "platform"] | None = Field(
        default=None,
        description="charity: signed by the charity's own key; platform: signed by the platform on "
        "the charity's behalf (from OperatorAdded.heldByCharity); null for the registrar's events.",
    )
    proof: Proof


class TrailPage(Answer):
    scope: AuditScope
    items: list[TrailEntry]
    next: str | None = Field(description="The cursor of the next page; null on the last page.")


class AnomalyRecord(Answer):
    """The record an anomaly is about."""

    kind: str | None
    id: str | None = None
    ids: list[str] | None = None
    event: str | None = None


class AnomalyTransaction(Answer):
    id: str
    tx_hash: str | None
    status: str
    function: str | None


class Anomaly(Answer):
    kind: Literal[
        "missing_evidence",
        "recipient_concentration",
        "refund_after_allocation",
        "not_finalized",
        "large_disbursement",
        "grant_unrecorded",
        "fast_approval",
        "approver_is_recipient",
        "unconfirmed_receipt",
    ]
    campaign_id: str | None
    record: AnomalyRecord
    donation_id: str | None = None
    transaction: AnomalyTransaction | None = None
    detail: str
    amount: int | None = None
    share: float | None = Field(default=None, description="A share (0 to 1), not an amount.")
    charity_id: str | None = None
    currency: str | None = None
    proof: Proof | None = None


class Thresholds(Answer):
    evidence_days: int
    recipient_share: float
    large_share: float
    pending_minutes: int
    grant_days: int
    fast_approval_minutes: int
    receipt_days: int


class CheckedAt(Answer):
    block_number: int
    finalized_block: int


class AnomalyReport(Answer):
    scope: AuditScope
    thresholds: Thresholds
    checked_at: CheckedAt
    counts: dict[str, int]
    items: list[Anomaly]
    truncated: bool


class Reconciliation(Answer):
    """A reconciliation job; `result` once done (when asked for by its href)."""

    id: str
    href: str
    status: Literal["queued", "running", "done", "failed"]
    scope: AuditScope
    requested_at: str | None
    started_at: str | None
    finished_at: str | None
    checked_block: int | None
    attempts: int
    full: bool = Field(
        description="Whether the job re-reads every event from the node, or only the blocks after"
        " the ranges already checked (the whole deployment's reconciliations only)."
    )
    jobs_ahead: int | None = None
    progress: str | None = None
    clean: bool | None = None
    difference_count: int | None = None
    result: dict[str, Any] | None = Field(
        default=None, description="The checked height, counts, digests and every difference."
    )
    error: str | None = None


class Reconciliations(Answer):
    items: list[Reconciliation]


class AccessLogEntry(Answer):
    """One row of the access log, exactly the fields its `row_hash` covers
    (ledger_api/core/access_log.py, point 2), so anyone can recompute it."""

    seq: int
    at: str = Field(description="UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ.")
    day: int = Field(description="UTC days since 1970-01-01.")
    key_id: str
    role: str
    method: str
    route: str = Field(description="The route template (the export's format appended), never the raw URL.")
    charity_id: str | None = Field(description="The scope asked for; null: every charity.")
    campaign_id: str | None
    outcome: Literal["served", "refused"]
    status: int
    record_count: int | None = Field(description="Null when not known cheaply (a streamed export).")
    record_ids: list[str] | None = Field(description="Which records, up to 100; beyond, null and a digest.")
    records_digest: str | None = Field(description="SHA-256 of the record IDs joined by newlines, past 100.")
    prev_hash: str
    row_hash: str


class AccessLogPage(Answer):
    items: list[AccessLogEntry]
    next: str | None = Field(description="The cursor of the next page; null on the last page.")


class AccessSummary(Answer):
    """One key's reads on one UTC day."""

    date: str
    key_id: str
    role: str
    reads: int
    refused: int
    records: int = Field(description="Records served, where counted (exports are not).")


class AccessReport(Answer):
    """Who read a charity's non-public data, when and how much (数据共享情况通报)."""

    charity_id: str
    summary: list[AccessSummary]
    items: list[AccessLogEntry]
    next: str | None = Field(description="The cursor of the next page of rows; null on the last page.")


class MerkleStep(Answer):
    side: Literal["left", "right"]
    hash: str


class AccessSeal(Answer):
    """The day's seal on chain, as the mirror holds it."""

    root: str
    row_count: int
    last_row_hash: str
    tx_hash: str
    block_number: int


class AccessLogProof(Answer):
    """A row, the path from its leaf to its day's Merkle root, and the root's seal."""

    row: AccessLogEntry
    day: int
    date: str
    index: int = Field(description="The row's place among the day's rows (0-based, in seq order).")
    row_count: int
    path: list[MerkleStep]
    root: str
    sealed: AccessSeal | None = Field(description="Null while the day is not sealed on chain.")
