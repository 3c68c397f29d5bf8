"""SQLAlchemy models. The schema itself is created by the migrations in `migrations/`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, String, UniqueConstraint, func
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
