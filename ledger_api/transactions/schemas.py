"""How a submitted write is shown: in every write's answer, and at GET /v1/transactions/{id}."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ledger_api.core.answers import Answer
from ledger_api.core.errors import WRITE_ERRORS, problems

TransactionStatus = Literal["queued", "sent", "mined", "failed"]


class TransactionView(Answer):
    id: str
    href: str
    status: TransactionStatus = Field(description="queued: signed, not yet taken by the node.")
    tx_hash: str | None
    chain_id: int
    contract: str
    block_number: int | None
    block_hash: str | None
    error: dict[str, Any] | None = Field(
        default=None, description='Why it failed: the decoded custom error, {"name": ..., "args": {...}}.'
    )


class Transaction(TransactionView):
    """A transaction with what it records, its nonce and the account that signed it."""

    records: dict[str, Any] = Field(description='What it records: {"kind": ..., "ids": [...]}.')
    nonce: int
    signer: str


class WriteAnswer(Answer):
    """What every write answers besides its records."""

    mirrored: Literal[False] | None = Field(
        default=None,
        description="Present (false) only in a 202: mined, but the mirror has not indexed it yet.",
    )


def write_responses(model: type[WriteAnswer]) -> dict[int | str, dict[str, Any]]:
    """A write's other answers: 202 when it is not mined and mirrored yet, and its problems."""
    return {
        202: {
            "model": model,
            "description": "Sent (wait=false) or mined but not mirrored yet (`mirrored: false`); "
            "follow `transaction.href`.",
        },
        **problems(*WRITE_ERRORS),
    }
