"""Approvals before payout: approver accounts, a campaign's rule, proposals and votes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ledger_api.core.answers import Answer
from ledger_api.core.schemas import ChainText, Strict, Text
from ledger_api.transactions.schemas import TransactionView, WriteAnswer

ADDRESS = r"^0x[0-9a-fA-F]{40}$"
Address = Annotated[str, Field(pattern=ADDRESS, description="An Ethereum account, 0x and 40 hex digits.")]
MAX_APPROVERS = 20  # the contract's MAX_APPROVERS
ProposalStatus = Literal["pending", "approved", "rejected", "executed", "expired"]


class ApproverCreate(Strict):
    label: Text(200) = Field(  # type: ignore[valid-type]
        description='The role or name the charity knows the approver by ("Finance officer",'
        ' "Community representative"). Kept here only, never on chain.'
    )
    account: Address | None = Field(
        default=None,
        description="The approver's own account (it signs its approvals with its own key and"
        " submits them to POST /v1/relay). Without it, the platform makes and holds a key for"
        " the approver, who approves with its API key alone.",
    )


class Approver(Answer):
    account: str
    label: str
    held_by_platform: bool


class ApproverRegistered(Approver):
    key_id: str
    key: str = Field(
        description="The approver's API key (role `approver`): shown once, give it to the approver."
    )


class ApproverList(Answer):
    items: list[Approver]


class RuleSet(Strict):
    approvers: list[Address] = Field(
        min_length=1,
        max_length=MAX_APPROVERS,
        description="Approver accounts this charity registered (POST /v1/charities/{id}/approvers).",
    )
    threshold: int = Field(ge=1, le=MAX_APPROVERS, description="How many must approve each disbursement.")
    validity_hours: int = Field(
        default=168, ge=1, le=8760, description="How long a proposal may collect its approvals."
    )


class RuleAnswer(WriteAnswer):
    campaign_id: str
    approvers: list[str]
    threshold: int
    validity_seconds: int
    transaction: TransactionView


class Rejection(Strict):
    reason: ChainText(256) = Field(  # type: ignore[valid-type]
        description="Public, on chain for ever: say why, not who."
    )


class Vote(Answer):
    voter: str
    label: str | None = Field(
        default=None, description="The charity's name for the approver (its console only)."
    )
    vote: Literal["approve", "reject"]
    reason: str | None = None
    at: str | None = Field(default=None, description="The block time of the vote (UTC, ISO 8601).")
    tx_hash: str
    block_number: int


class Proposal(Answer):
    id: str
    campaign_id: str
    amount: int
    recipient: str
    purpose: str
    proposer: str
    proposed_at: str | None
    rule_version: int
    threshold: int
    approvers: int = Field(description="How many approvers the rule named (the n of k of n).")
    approvals: int
    status: ProposalStatus = Field(
        description="pending; approved (enough approvals, not executed yet); rejected; executed"
        " (a disbursement now); expired (pending past expires_at: it can never be paid)."
    )
    expires_at: str
    votes: list[Vote]
    executor: str | None = None
    executed_tx: str | None = None
    tx_hash: str


class ProposalList(Answer):
    items: list[Proposal]


class VoteRecorded(WriteAnswer):
    id: str
    vote: Literal["approve", "reject"]
    transaction: TransactionView
    execution: TransactionView | None = Field(
        default=None,
        description="When this approval was the last one needed: the executeDisbursement that"
        " recorded the disbursement.",
    )


class Executed(WriteAnswer):
    id: str
    transaction: TransactionView
