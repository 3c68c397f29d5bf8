"""SQLAlchemy models. The schema itself is created by the migrations in `migrations/`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Deployment(Base):
    """A ledger contract deployment the service writes to and the indexer mirrors."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("chain_id", "address", name="uq_deployments_chain_address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    address: Mapped[str] = mapped_column(String(42))
    deployment_block: Mapped[int] = mapped_column(BigInteger)
    deployment_tx: Mapped[str | None] = mapped_column(String(66))
    source_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# ------------------------------------------------------------------ write side
# Tables the API owns (the indexer owns the chain-derived ones in indexer/models.py).


class ApiKey(Base):
    """An API key: shown once, stored as the SHA-256 of its secret (keys are 256-bit
    random, so a fast hash is enough; there is nothing to brute-force)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # admin | charity | auditor | approver
    charity_id: Mapped[str | None] = mapped_column(String(66), index=True)
    # An approver key's account (one of the charity's approver_accounts): it approves or
    # rejects the proposals whose rule names this account, and nothing else.
    account: Mapped[str | None] = mapped_column(String(42))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # An auditor key limited to these charities (0x hex IDs); None reads every charity.
    charities: Mapped[list[str] | None] = mapped_column(JSON)
    # After this the key answers 401 `key-expired`; None never expires.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The key this one replaced (`POST /v1/keys/{id}/rotate`).
    rotated_from: Mapped[str | None] = mapped_column(String(32), unique=True)


class CharityAccount(Base):
    """A charity the service registered, and the operator account (in the keystore)
    that signs its records."""

    __tablename__ = "charity_accounts"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    charity_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    operator: Mapped[str] = mapped_column(String(42), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApproverAccount(Base):
    """An account a charity named as an approver of its campaigns' disbursements: a key
    the platform holds for the approver (in the keystore, `held_by_platform`), or the
    approver's own (it signs SignedCalls that the relay sends). A rule may name only
    these; the label ("Finance officer", "Community representative") is the charity's
    name for the role, shown in its console and matched by the self-dealing check."""

    __tablename__ = "approver_accounts"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    charity_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    account: Mapped[str] = mapped_column(String(42), primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    held_by_platform: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProposalInput(Base):
    """The whole DisbursementInput of a proposal the service relayed: the chain keeps only
    its keccak256 (`input_hash`), and executeDisbursement takes exactly the input proposed,
    so without this row nobody could pay an approved proposal. `input` is JSON (ids and
    hashes 0x hex, amounts integers); `execution` is the outbox row of its execution once
    one was sent."""

    __tablename__ = "proposal_inputs"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    disbursement_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    charity_id: Mapped[str] = mapped_column(String(66), index=True)
    campaign_id: Mapped[str] = mapped_column(String(66))
    input_hash: Mapped[str] = mapped_column(String(66))
    input: Mapped[str] = mapped_column(Text)
    proposer: Mapped[str] = mapped_column(String(42))
    execution: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Signer(Base):
    """The next nonce of each account the service signs with. Allocated with an atomic
    `UPDATE ... RETURNING` (a row lock on PostgreSQL, the write lock on SQLite), in the
    same transaction that stores the signed transaction."""

    __tablename__ = "signers"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    next_nonce: Mapped[int] = mapped_column(BigInteger)


class ChainTransaction(Base):
    """The outbox: every transaction the service signs, stored before it is sent, so
    that after a crash it is sent again as the same bytes."""

    __tablename__ = "chain_transactions"
    __table_args__ = (
        UniqueConstraint("chain_id", "signer", "nonce", name="uq_chain_transactions_nonce"),
        Index("ix_chain_transactions_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    signer: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(BigInteger)
    function: Mapped[str] = mapped_column(String(64))
    charity_id: Mapped[str | None] = mapped_column(String(66), index=True)
    # What the transaction records, for the API's answers: {"kind": ..., "ids": [...]}.
    records: Mapped[str] = mapped_column(Text)
    raw_tx: Mapped[str] = mapped_column(Text)
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    # signed -> sent -> mined | failed
    status: Mapped[str] = mapped_column(String(16))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class IdempotencyRecord(Base):
    """A write made with an `Idempotency-Key`: the request's fingerprint and, once it
    is answered, the exact response bytes to replay."""

    __tablename__ = "idempotency_keys"

    principal: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[str | None] = mapped_column(Text)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReconciliationJob(Base):
    """A reconciliation of the mirror against the chain, run as a background job
    (ledger_api/audit/jobs.py). `active_scope` is the scope's key while the job is queued
    or running and NULL after, so the unique constraint allows one unfinished job per
    scope; `slot` is set only while it runs, so the other one caps how many run at once
    (NULLs never collide, on SQLite and PostgreSQL alike)."""

    __tablename__ = "reconciliation_jobs"
    __table_args__ = (
        UniqueConstraint("deployment_id", "active_scope", name="uq_reconciliation_jobs_active_scope"),
        UniqueConstraint("deployment_id", "slot", name="uq_reconciliation_jobs_slot"),
        Index("ix_reconciliation_jobs_status", "deployment_id", "status", "created_at"),
        Index("ix_reconciliation_jobs_charity", "deployment_id", "charity_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    # The scope: a campaign (with its charity), a charity, or (both NULL) everything.
    charity_id: Mapped[str | None] = mapped_column(String(66))
    campaign_id: Mapped[str | None] = mapped_column(String(66))
    active_scope: Mapped[str | None] = mapped_column(String(80))
    # queued -> running -> done | failed
    status: Mapped[str] = mapped_column(String(16))
    slot: Mapped[int | None] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(100))
    progress: Mapped[str | None] = mapped_column(String(200))  # while it runs: its stage
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    requested_by: Mapped[str] = mapped_column(String(32))  # the API key's id
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The block the chain was checked at and the outcome; `result` is the full answer (JSON).
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    clean: Mapped[bool | None] = mapped_column(Boolean)
    difference_count: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    # True: re-read every event from the node; False: only the blocks after the checked
    # ranges (reconciled_ranges), whose digests stand for the rest.
    full: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class ReconciledRange(Base):
    """A block range of the deployment that a reconciliation read from the node: the
    SHA-256 of its events as the node gave them (in the `events` table's form) and the
    hash of its last block. An incremental reconciliation re-reads only the blocks after
    the last range: it checks the ranges are still canonical (the last one's block hash;
    each block's hash covers its parents) and that the mirror's events in each still hash
    to its digest, and re-derives the records from those events (ledger_api/audit/reconcile.py)."""

    __tablename__ = "reconciled_ranges"
    __table_args__ = (UniqueConstraint("deployment_id", "first_block", name="uq_reconciled_ranges_first"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    first_block: Mapped[int] = mapped_column(BigInteger)
    last_block: Mapped[int] = mapped_column(BigInteger)
    last_block_hash: Mapped[str] = mapped_column(String(66))
    event_count: Mapped[int] = mapped_column(Integer)
    events_digest: Mapped[str] = mapped_column(String(64))
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConsoleSession(Base):
    """A signed-in session of the console (ledger_api/console/sessions.py): the SHA-256 of
    its token (the token itself is only in the browser's cookie), the API key it was
    opened with (revoking the key ends it), and the times its expiry is counted from."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    role: Mapped[str] = mapped_column(String(16))  # admin | charity | approver
    charity_id: Mapped[str | None] = mapped_column(String(66))  # 0x hex, for a charity key
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# ------------------------------------------------------------------ imports (ledger_api.imports)


class ImportProfile(Base):
    """A charity's named column mapping for a bank's statements, reused next month."""

    __tablename__ = "import_profiles"
    __table_args__ = (
        UniqueConstraint("deployment_id", "charity_id", "name", name="uq_import_profiles_name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    charity_id: Mapped[str] = mapped_column(String(66))
    name: Mapped[str] = mapped_column(String(64))
    mapping: Mapped[str] = mapped_column(Text)  # the Mapping's JSON
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StatementImport(Base):
    """An uploaded statement: its preview, then its commit's progress. The rows (with the
    donors' receipt secrets, never the payer references) are sealed with AES-GCM under a
    key derived from the deployment's secret, and deleted at `expires_at`."""

    __tablename__ = "statement_imports"
    __table_args__ = (Index("ix_statement_imports_charity", "deployment_id", "charity_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    charity_id: Mapped[str] = mapped_column(String(66))
    filename: Mapped[str] = mapped_column(String(200))
    # previewed -> queued -> running -> done | failed
    state: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)  # JSON: columns, totals, counts (no secrets)
    sealed_rows: Mapped[bytes] = mapped_column(LargeBinary)
    rows_sent: Mapped[int] = mapped_column(Integer, default=0)
    transactions: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # written by the running commit; an old one means its process died (imports.service)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ImportedReference(Base):
    """A bank transaction reference already imported for a charity, and the donation it
    became: the duplicate key. Its primary key makes importing one statement twice, even
    by two commits racing, record each bank transaction at most once."""

    __tablename__ = "imported_references"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    charity_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    bank_reference: Mapped[str] = mapped_column(String(200), primary_key=True)
    donation_id: Mapped[str] = mapped_column(String(32))
    import_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AccessLogRow(Base):
    """One authenticated read of non-public data (ledger_api/core/access_log.py): who,
    what, in which scope, with what outcome; hash-chained to the row before it, sealed
    each UTC day by a Merkle root on chain. Append-only: the migration adds triggers that
    refuse UPDATE and DELETE."""

    __tablename__ = "access_log"
    __table_args__ = (
        Index("ix_access_log_day", "day", "seq"),
        Index("ix_access_log_key", "key_id", "seq"),
        Index("ix_access_log_charity", "charity_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    day: Mapped[int] = mapped_column(Integer)  # UTC days since 1970-01-01
    key_id: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(200))  # the route template, never the raw URL
    charity_id: Mapped[str | None] = mapped_column(String(32))  # CH-..., None: every charity
    campaign_id: Mapped[str | None] = mapped_column(String(32))  # CP-...
    outcome: Mapped[str] = mapped_column(String(16))  # served | refused
    status: Mapped[int] = mapped_column(Integer)
    record_count: Mapped[int | None] = mapped_column(Integer)  # None: not known cheaply
    record_ids: Mapped[str | None] = mapped_column(Text)  # JSON list, at most 100 IDs
    records_digest: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of a longer list
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64), unique=True)


# ------------------------------------------------------------------ evidence at rest


class EvidenceFile(Base):
    """A document stored here (ledger_api/core/documents.py): what it is, who uploaded it
    for which disbursement, and whether the public may read it. A restricted original is
    sealed on disk under `key_id`; a withdrawn one has no bytes any more."""

    __tablename__ = "evidence_files"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    disbursement_id: Mapped[str] = mapped_column(String(66))  # 0x hex, the first it was uploaded for
    charity_id: Mapped[str] = mapped_column(String(66), index=True)
    visibility: Mapped[str] = mapped_column(String(16))  # public | restricted
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    key_id: Mapped[str | None] = mapped_column(String(32))  # the key a restricted file is sealed with
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# ------------------------------------------------------------------ webhooks


class WebhookEndpoint(Base):
    """A URL that is told of final records (ledger_api/webhooks/): whose key made it, the
    scope and event types it wants, its signing secret sealed with AES-GCM (the service
    must sign with it, so it cannot be hashed), and how far events have been queued for it."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_key", "key_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # wh_...
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    key_id: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[str] = mapped_column(Text)  # JSON list of event types
    charity_id: Mapped[str | None] = mapped_column(String(66))  # 0x hex; None: all the key may read
    campaign_id: Mapped[str | None] = mapped_column(String(66))
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # Events of blocks up to this one (all final) are queued for this endpoint.
    queued_block: Mapped[int] = mapped_column(BigInteger)


class WebhookDelivery(Base):
    """One event for one endpoint: queued once (the unique constraint), sent until it is
    delivered or its attempts run out, claimed by one dispatcher at a time (lease)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_event"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(80))  # 0x<tx hash>:<log index>[:retracted]
    type: Mapped[str] = mapped_column(String(40))
    block_number: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(Text)  # the JSON body, exactly as signed and sent
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed | cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retracted: Mapped[bool] = mapped_column(Boolean, default=False)  # its record.retracted is queued
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookAttempt(Base):
    """One try at sending a delivery: when, and the status code or the error."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        index=True,
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    duration_ms: Mapped[int] = mapped_column(Integer)
