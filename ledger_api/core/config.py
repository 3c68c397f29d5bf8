"""Settings, read once from the environment (variables prefixed `LEDGER_`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    env: Literal["development", "production"] = "development"
    # JSON-RPC URL of the chain node; empty means the in-process eth-tester chain.
    rpc_url: str | None = None
    # SQLAlchemy URL; SQLite file by default, PostgreSQL in production.
    database_url: str = f"sqlite:///{ROOT / 'var' / 'ledger.db'}"
    # An existing ledger deployment to use; empty means deploy one (dev chains only).
    contract_address: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    @property
    def embedded_chain(self) -> bool:
        return not self.rpc_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
