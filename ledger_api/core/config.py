"""Settings, read once from the environment (variables prefixed `LEDGER_`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]
# Placeholder secrets that only development may run with.
DEV_PASSPHRASE = "dev-only-insecure-passphrase"


class InsecureSettings(RuntimeError):
    pass


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    env: Literal["development", "production"] = "development"
    # JSON-RPC URL of the chain node; empty means the in-process eth-tester chain.
    rpc_url: str | None = None
    # Seconds before a call to the node counts as failed (a write then answers 503).
    rpc_timeout: float = Field(default=5.0, gt=0)
    # SQLAlchemy URL; SQLite file by default, PostgreSQL in production.
    database_url: str = f"sqlite:///{ROOT / 'var' / 'ledger.db'}"
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
    # Where uploaded evidence documents are stored, by SHA-256.
    evidence_path: Path = ROOT / "var" / "evidence"
    # How long a write waits for its transaction to be mined before answering 504
    # (the transaction stays queued and is tracked; GET /v1/transactions/{id}).
    write_timeout: float = Field(default=30.0, gt=0)
    # Default thresholds of GET /v1/audit/anomalies (each can be given per request).
    anomaly_evidence_days: int = Field(default=30, ge=0)
    anomaly_recipient_share: float = Field(default=0.5, gt=0, le=1)
    anomaly_large_share: float = Field(default=0.25, gt=0, le=1)
    anomaly_pending_minutes: int = Field(default=30, ge=1)
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
    # Finished jobs (and their results) kept per deployment; older ones are deleted.
    reconcile_keep: int = Field(default=1000, ge=1)
    # The address the public reaches the pages at, for the links printed on receipts (their
    # QR codes); unset: the address of the request (behind a proxy, set this).
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    @property
    def embedded_chain(self) -> bool:
        return not self.rpc_url

    def check_secrets(self) -> None:
        """Outside development, refuse to run on placeholder secrets."""
        if self.env == "development":
            return
        problems = []
        if self.keystore_passphrase.get_secret_value() in ("", DEV_PASSPHRASE):
            problems.append("LEDGER_KEYSTORE_PASSPHRASE is unset or the development placeholder")
        admin = self.admin_key.get_secret_value() if self.admin_key else ""
        if len(admin) < 32:
            problems.append("LEDGER_ADMIN_KEY must be set to a random value of at least 32 characters")
        if problems:
            raise InsecureSettings("refusing to start in production: " + "; ".join(problems))

    @property
    def effective_confirmations(self) -> int:
        if self.confirmations is not None:
            return self.confirmations
        return 0 if self.embedded_chain else 12


@lru_cache
def get_settings() -> Settings:
    return Settings()
