"""How a submitted write is shown: in every write's answer, and at GET /v1/transactions/{id}."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ledger_api.core.answers import Answer
from ledger_api.core.errors import WRITE_ERRORS, problems
from ledger_api.core.schemas import Hash32, Strict

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
    """A write's other answers: 200 when prepared for a self-custody charity to sign, 202
    when it is not mined and mirrored yet, and its problems."""
    return {
        200: {
            "model": Prepared,
            "description": "mode=prepare, for a charity that holds its own key: the calls to sign, "
            "nothing sent; submit them to POST /v1/relay.",
        },
        202: {
            "model": model,
            "description": "Sent (wait=false) or mined but not mirrored yet (`mirrored: false`); "
            "follow `transaction.href`.",
        },
        **problems(*WRITE_ERRORS),
    }


# ------------------------------------------------------------------ the relay

ADDRESS = r"^0x[0-9a-fA-F]{40}$"
# A batch of 500 donations is 96,068 bytes of call data; a little room above that.
MAX_CALL_DATA = 100_000
RELAY_BODY = 4 * (2 * MAX_CALL_DATA + 4_096)  # four signed calls (a batch of 2,000 donations)


class SignedCallMessage(Strict):
    """The SignedCall the charity signed: `typed_data.message` of a prepared write."""

    operator: str = Field(pattern=ADDRESS, description="The charity's operator account that signed.")
    data: str = Field(
        pattern=r"^0x([0-9a-fA-F]{2})+$",
        max_length=2 + 2 * MAX_CALL_DATA,
        description="The encoded call of a charity-record function.",
    )
    nonce: Hash32 = Field(description="A random bytes32 the signer chose (used once).")
    deadline: int = Field(ge=0, lt=2**64, description="Unix time after which the call is refused.")


class SignedCallSubmission(Strict):
    message: SignedCallMessage
    signature: str = Field(
        pattern=r"^0x([0-9a-fA-F]{2})+$",
        max_length=2 + 2 * 2048,
        description="The EIP-712 signature (65 bytes r, s, v for an ordinary key; an ERC-1271 "
        "wallet's own format).",
    )


class RelayRequest(Strict):
    signed_calls: list[SignedCallSubmission] = Field(min_length=1, max_length=4)


class Relayed(Answer):
    kind: str
    ids: list[str]
    function: str
    signed_by: str = Field(description="The charity's operator whose signature the contract checked.")
    relay_nonce: str


class RelayAnswer(WriteAnswer):
    """What a relayed write records, and the relayer's transactions that carried it."""

    records: list[Relayed]
    transactions: list[TransactionView]
    executions: list[TransactionView] | None = Field(
        default=None,
        description="When a relayed approval was a proposal's last one needed: the relayer's"
        " executeDisbursement, which records the disbursement.",
    )


class PreparedCall(Answer):
    """One call for the charity to sign (EIP-712 typed data, eth_signTypedData_v4's shape)."""

    function: str
    records: dict[str, Any]
    typed_data: dict[str, Any]
    digest: str = Field(description="The EIP-712 digest of `typed_data` (what the key signs).")


class Prepared(Answer):
    """A write for a self-custody charity, prepared (`mode=prepare`): nothing was sent."""

    mode: Literal["prepare"]
    records: dict[str, Any] = Field(
        description="The write's answer without its transactions (a donation's receipt secret "
        "included: it is in the signed commitment, and the service keeps no copy)."
    )
    signed_calls: list[PreparedCall]
