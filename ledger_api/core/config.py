"""Settings, read once from the environment (variables prefixed `LEDGER_`)."""

from __future__ import annotations

import hmac
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ledger_api.core.paths import ROOT

# Placeholder secrets that only development may run with.
DEV_PASSPHRASE = "dev-only-insecure-passphrase"


class InsecureSettings(RuntimeError):
    pass


class Settings(BaseSettings):
    # Errors never echo a value: some of these are secrets.
    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore", hide_input_in_errors=True)

    env: Literal["development", "production"] = "development"
    # JSON-RPC URL of the chain node; empty means the in-process eth-tester chain.
    rpc_url: str | None = None
    # Seconds before a call to the node counts as failed (a write then answers 503).
    rpc_timeout: float = Field(default=5.0, gt=0)
    # SQLAlchemy URL; SQLite file by default, PostgreSQL in production.
    database_url: str = f"sqlite:///{ROOT / 'var' / 'ledger.db'}"
    # PostgreSQL streaming replicas the public reads may use (comma-separated SQLAlchemy
    # URLs); writes, the indexer, audits and the access log stay on
    # LEDGER_DATABASE_URL. Empty: every read goes to the primary.
    read_database_urls: Annotated[list[str], NoDecode] = []
    # A replica whose mirror is more than this many blocks behind the primary's is skipped.
    replica_max_lag_blocks: int = Field(default=2, ge=0)
    # How often each replica's lag is measured; a measurement older than three of these
    # counts as none (the replica is skipped until the next one).
    replica_poll_seconds: float = Field(default=1.0, gt=0)
    # An existing ledger deployment to use; empty means deploy one (dev chains only).
    contract_address: str | None = None
    # Blocks behind the head before a record counts as final. Unset: 12 on a real node,
    # 0 on the embedded chain (one process mines it; it cannot reorganise).
    confirmations: int | None = Field(default=None, ge=0)
    # /healthz says "degraded" when the mirror is further than this behind the head.
    max_lag_blocks: int = Field(default=64, ge=0)
    # Run the indexer inside the API process (one writer per deployment is enforced by a lock).
    run_indexer: bool = True
    # Encrypted keystore (eth-account's JSON format) of the accounts the service signs with.
    keystore_path: Path = ROOT / "var" / "keystore"
    keystore_passphrase: SecretStr = SecretStr(DEV_PASSPHRASE)
    # The admin API key; unset in development: `ledger dev` makes one and prints it.
    admin_key: SecretStr | None = None
    # Signs what the service hands out and takes back (page cursors); required outside
    # development. Unset in development: derived from the keystore passphrase.
    secret_key: SecretStr | None = None
    # uvicorn's line per request (LEDGER_ACCESS_LOG=true). Off by default: each line names
    # the client's IP address and the page it read (a donation's ID), which together say
    # who looked at which donation (PRIVACY.md). Reads of non-public data are recorded in
    # the access log table instead, without addresses.
    access_log: bool = False
    # Where uploaded evidence documents are stored, by SHA-256.
    evidence_path: Path = ROOT / "var" / "evidence"
    # The keys restricted evidence is sealed with: `id:base64key,...` (32-byte AES keys; the
    # first seals, all open). Unset: one key derived from the secret key (id `derived`).
    evidence_keys: SecretStr | None = None
    # How long a write waits for its transaction to be mined before answering 504
    # (the transaction stays queued and is tracked; GET /v1/transactions/{id}).
    write_timeout: float = Field(default=30.0, gt=0)
    # Group commit (transactions/coalesce.py): single donations of one charity arriving
    # together are sent as one recordDonations transaction of at most this many (1: each
    # its own transaction; 500 is the contract's batch limit), gathered for at most
    # `coalesce_window` seconds after the first of them arrives.
    coalesce_max: int = Field(default=100, ge=1, le=500)
    coalesce_window: float = Field(default=0.002, ge=0, le=1)
    # Default thresholds of GET /v1/audit/anomalies (each can be given per request).
    anomaly_evidence_days: int = Field(default=30, ge=0)
    anomaly_recipient_share: float = Field(default=0.5, gt=0, le=1)
    anomaly_large_share: float = Field(default=0.25, gt=0, le=1)
    anomaly_pending_minutes: int = Field(default=30, ge=1)
    # A grant to another campaign on the ledger not recorded in full by its receiver.
    anomaly_grant_days: int = Field(default=14, ge=0)
    # A proposal whose last needed approval came this soon after it was proposed.
    anomaly_fast_approval_minutes: int = Field(default=10, ge=0)
    # A disbursement to a registered recipient organisation not confirmed in full by it
    # this many days after it was recorded.
    anomaly_receipt_days: int = Field(default=30, ge=0)
    # The disclosure rule set the calendar applies (ledger_api/disclosure/rulesets/): a
    # shipped one by id (cn-mca-81, iati-quarterly) or the path of a deployment's own JSON.
    disclosure_rules: str = "cn-mca-81"
    # Reconciliations run as background jobs (ledger_api/audit/jobs.py): at most this many
    # at once per deployment, across every API process sharing the database (each runs
    # one worker thread). One re-reads the whole chain and makes a view call per record
    # (~35 ms each on the embedded chain), so more at once only share the same chain.
    reconcile_concurrency: int = Field(default=1, ge=1, le=16)
    # A running job's process writes a heartbeat this often; a job whose heartbeat is
    # older than reconcile_stale_seconds belonged to a process that died: it is queued
    # again once, then marked failed.
    reconcile_heartbeat_seconds: float = Field(default=5.0, gt=0)
    reconcile_stale_seconds: float = Field(default=60.0, gt=0)
    # An import's commit writes a heartbeat every 10 s; one whose heartbeat is older than
    # this belonged to a process that died: the next GET of the import (API or console)
    # takes it over and resumes it (ledger_api/imports/service.py).
    import_stale_seconds: float = Field(default=60.0, ge=1)
    # Finished jobs (and their results) kept per deployment; older ones are deleted.
    reconcile_keep: int = Field(default=1000, ge=1)
    # The address the public reaches the pages at, for the links printed on receipts (their
    # QR codes). Required in production; in development, unset means the request's address.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    # The chain's name as the pages and GET /v1/contract show it ("Ethereum mainnet",
    # "Charities consortium chain"). Unset: named from the chain id (core/networks.py).
    network_name: str | None = Field(
        default=None, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"
    )
    # A JSON-RPC URL of the chain that anyone may use to check the ledger (shown on the
    # pages and in GET /v1/contract; published, so never one carrying a private key). Unset:
    # on the embedded chain, the service's own read-only /rpc; against a node, none.
    public_rpc_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    # The time zone the public pages show times in, an IANA name (Asia/Shanghai, UTC,
    # Europe/London); every time shown names it. Unset: Chinese pages in Asia/Shanghai,
    # English pages in UTC. The JSON API always answers ISO 8601 times in UTC.
    timezone: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Operations. Seconds a connection may take to send a whole request head (request line
    # and headers), counted from when it opened or from the previous answer on it; a slower
    # client (slowloris) is disconnected. uvicorn has no such limit of its own.
    header_timeout: float = Field(default=10.0, gt=0)
    # Seconds a request body may go without a byte arriving before the connection is closed.
    body_timeout: float = Field(default=30.0, gt=0)
    # A bearer token that may read /metrics (as admin and auditor keys may), for Prometheus's
    # `authorization: credentials_file`; at least 32 characters.
    metrics_token: SecretStr | None = Field(default=None, min_length=32)
    # Webhooks (ledger_api/webhooks/). Send to loopback, private and link-local addresses
    # and over plain http: development and tests only (production refuses to start with it).
    webhooks_allow_private: bool = False
    # Run the webhook dispatcher inside the API process (several processes may: each
    # delivery is claimed by one). `ledger webhooks run` runs one on its own.
    run_webhooks: bool = True
    # Seconds before the first retry; each next waits twice as long, at most 6 hours,
    # for webhook_max_attempts attempts in all (14: about a day), then the delivery fails.
    webhook_retry_base: float = Field(default=30.0, gt=0)
    webhook_max_attempts: int = Field(default=14, ge=1, le=50)
    # Seconds an attempt may take (connect, send, answer) before it counts as failed.
    webhook_timeout: float = Field(default=5.0, gt=0, le=30)
    # How often the dispatcher looks for final records and due deliveries.
    webhook_poll_seconds: float = Field(default=2.0, gt=0)

    @field_validator("read_database_urls", mode="before")
    @classmethod
    def _replica_urls(cls, value: str | list[str]) -> list[str]:
        """Comma-separated in the environment; each a PostgreSQL URL (a SQLite file has no
        replicas, and a typo should stop the start rather than send reads nowhere)."""
        urls = [u.strip() for u in value.split(",")] if isinstance(value, str) else list(value)
        urls = [u for u in urls if u]
        for url in urls:
            if not url.startswith("postgresql"):
                raise ValueError("each LEDGER_READ_DATABASE_URLS entry must be a postgresql:// URL")
        return urls

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if value.strip() not in available_timezones():  # names only: never a path to a file
            raise ValueError(f"{value[:100]!r} is not an IANA time zone name such as Asia/Shanghai")
        return value.strip()

    @property
    def embedded_chain(self) -> bool:
        return not self.rpc_url

    def check_secrets(self) -> None:
        """Outside development, refuse to run on placeholder secrets (or without the public
        address, which receipts print instead of the request's Host header)."""
        if self.env == "development":
            return
        problems = []
        if self.keystore_passphrase.get_secret_value() in ("", DEV_PASSPHRASE):
            problems.append("LEDGER_KEYSTORE_PASSPHRASE is unset or the development placeholder")
        admin = self.admin_key.get_secret_value() if self.admin_key else ""
        if len(admin) < 32:
            problems.append("LEDGER_ADMIN_KEY must be set to a random value of at least 32 characters")
        secret = self.secret_key.get_secret_value() if self.secret_key else ""
        if len(secret) < 32:
            problems.append("LEDGER_SECRET_KEY must be set to a random value of at least 32 characters")
        if not self.public_url:
            # Otherwise receipts would print (in their QR codes) whatever Host a request named.
            problems.append("LEDGER_PUBLIC_URL must be set to the address the public reaches the pages at")
        if self.webhooks_allow_private:
            problems.append("LEDGER_WEBHOOKS_ALLOW_PRIVATE is for development only")
        if problems:
            raise InsecureSettings("refusing to start in production: " + "; ".join(problems))

    def signing_key(self, purpose: str) -> bytes:
        """A key for one purpose (e.g. "cursor"), derived from LEDGER_SECRET_KEY (in
        development without it, from the keystore passphrase): the same in every process
        of a deployment, different for every purpose."""
        secret = self.secret_key or self.keystore_passphrase
        return hmac.new(secret.get_secret_value().encode(), f"ledger {purpose}".encode(), "sha256").digest()

    @property
    def effective_confirmations(self) -> int:
        if self.confirmations is not None:
            return self.confirmations
        return 0 if self.embedded_chain else 12


@lru_cache
def get_settings() -> Settings:
    return Settings()
