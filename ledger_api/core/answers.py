"""Answer schemas every domain shares: the chain reference of a mirrored record, a record's
name and ID, and the health answer.

Answers are built as these models and serialised without the fields a read did not set
(routes say `response_model_exclude_unset=True`), so a field that is only there sometimes
(an error, a count) is absent rather than null, as it always was. Amounts are integers in
minor units (JSON numbers of any size), never floats."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Answer(BaseModel):
    """The base of every answer schema: what the service says, nothing parsed from clients."""

    def body(self) -> dict[str, Any]:
        """The JSON body, for a route that answers a JSONResponse itself (its own status or
        headers): what FastAPI would serialise for `response_model_exclude_unset=True`."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class Proof(Answer):
    """Everything anyone needs to check a record against any node of the chain."""

    chain_id: int
    contract: str = Field(description="The ledger contract's address.")
    tx_hash: str
    block_number: int
    block_hash: str | None = Field(description="Null while the mirror does not hold the block.")
    log_index: int
    recorded_at: str | None = Field(description="The block's time (ISO 8601, UTC).")
    final: bool = Field(description="Whether the block is at or below the finalized height.")
    confirmations: int


class SignedBy(Answer):
    """Who signed a record: the charity's own key (self-custody: "signed by the charity's
    own key") or the platform ("signed by the platform on the charity's behalf"), from the
    heldByCharity flag the registrar put on chain in OperatorAdded for the record's
    operator. (The operator accounts themselves are on the charity's answer and page; the
    audit trail names each record's.)"""

    by: Literal["charity", "platform"]
    held_by_charity: bool


class Named(Answer):
    """A record shown by its ID and name."""

    id: str
    name: str


class MirrorPosition(Answer):
    """How far the SQL mirror has read the chain."""

    indexed_block: int
    finalized_block: int


class ChainHealth(Answer):
    chain_id: int
    contract_address: str
    deployment_block: int
    embedded: bool
    head_block: int | None = None
    error: str | None = None


class DatabaseHealth(Answer):
    status: Literal["ok", "unreachable"]
    dialect: str | None = None
    error: str | None = None


class IndexerHealth(Answer):
    confirmations: int
    in_process: bool
    running: bool | None = None
    reorgs: int | None = None
    status: Literal["ok", "behind", "stalled", "starting", "unknown", "not configured"]
    indexed_block: int | None = None
    finalized_block: int | None = None
    lag_blocks: int | None = None
    standing_by: bool | None = None
    stalled_seconds: int | None = None
    error: str | None = None


class Health(Answer):
    """/healthz: 200 with `ok`, 503 with `degraded` (and why, in the parts)."""

    status: Literal["ok", "degraded"]
    chain: ChainHealth
    database: DatabaseHealth | None = None
    indexer: IndexerHealth | None = None
