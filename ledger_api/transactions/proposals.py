"""Proposed disbursements: the input the service keeps for each, and their execution.

The chain keeps only a proposal's keccak256(abi.encode(DisbursementInput)); the contract
executes exactly that input and nothing else (ProposalMismatch). So when the service
proposes a disbursement it first stores the whole input (`proposal_inputs`, `keep`), and
once the proposal has its approvals anyone may execute it: the service does, from the
registrar account that relays signed calls (it pays the gas; the disbursement's operator
is the proposer all the same, and ProposalExecuted names the registrar as executor).

Automatic execution: after an approval the service sent or relayed is mined and mirrored,
`execute_if_ready` asks the chain (proposalOf, not the mirror, which may lag) whether the
proposal is pending with approvals >= threshold and not expired, and if so executes it.
POST /v1/proposals/{id}/execute does the same on demand (for approvals that reached the
chain some other way).

This sits in the transactions layer because the relay, which carries the approvals of
approvers holding their own keys, must be able to execute too.
"""

from __future__ import annotations

import json
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ledger_api.chain.abi import encode
from ledger_api.chain.writer import TxState
from ledger_api.core import ids
from ledger_api.core.db import insert_ignore
from ledger_api.core.errors import Conflict, NotFound
from ledger_api.core.hexes import hex0x, unhex
from ledger_api.core.models import ProposalInput
from ledger_api.transactions.service import Step, Writes

# The ABI type of ICharityLedger.DisbursementInput.
INPUT_TYPE = "(bytes32,bytes32,uint256,string,string,bytes32,bytes32,bytes32,(bytes32,uint256)[])"
STATUS = {0: "none", 1: "pending", 2: "rejected", 3: "executed"}

DisbursementInput = tuple[bytes, bytes, int, str, str, bytes, bytes, bytes, list[tuple[bytes, int]]]


def input_hash(value: DisbursementInput) -> bytes:
    """keccak256(abi.encode(input)), as proposeDisbursement stores it."""
    return keccak(abi_encode([INPUT_TYPE], [value]))


def to_json(value: DisbursementInput) -> str:
    d, c, amount, recipient, purpose, evidence, rc, ro, allocations = value
    return json.dumps(
        {
            "disbursementId": hex0x(d),
            "campaignId": hex0x(c),
            "amount": amount,
            "recipient": recipient,
            "purpose": purpose,
            "evidenceHash": hex0x(evidence),
            "recipientCampaignId": hex0x(rc),
            "recipientOrgId": hex0x(ro),
            "allocations": [[hex0x(donation), a] for donation, a in allocations],
        },
        separators=(",", ":"),
    )


def from_json(text: str) -> DisbursementInput:
    v = json.loads(text)
    return (
        unhex(v["disbursementId"]),
        unhex(v["campaignId"]),
        int(v["amount"]),
        v["recipient"],
        v["purpose"],
        unhex(v["evidenceHash"]),
        unhex(v["recipientCampaignId"]),
        unhex(v["recipientOrgId"]),
        [(unhex(d), int(a)) for d, a in v["allocations"]],
    )


def keep(writes: Writes, charity_hex: str, proposer: str, value: DisbursementInput) -> None:
    """Store a proposal's whole input before its proposal is sent (or prepared for a
    self-custody charity to sign): a proposal on chain without its input could never be
    paid. Keyed by the disbursement ID, which the chain also refuses twice."""
    with writes.engine.begin() as connection:
        insert_ignore(
            connection,
            ProposalInput.__table__,  # type: ignore[arg-type]
            [
                {
                    "deployment_id": writes.deployment_id,
                    "disbursement_id": hex0x(value[0]),
                    "charity_id": charity_hex,
                    "campaign_id": hex0x(value[1]),
                    "input_hash": hex0x(input_hash(value)),
                    "input": to_json(value),
                    "proposer": proposer,
                }
            ],
        )


def stored(writes: Writes, disbursement_hex: str) -> ProposalInput | None:
    with Session(writes.engine) as session:
        row = session.scalars(
            select(ProposalInput).where(
                ProposalInput.deployment_id == writes.deployment_id,
                ProposalInput.disbursement_id == disbursement_hex,
            )
        ).one_or_none()
        session.expunge_all()
    return row


def on_chain(writes: Writes, disbursement: bytes) -> dict[str, Any]:
    """proposalOf as a dict; NotFound for no such proposal."""
    view = writes.view("proposalOf", disbursement, missing="proposal")
    campaign, proposer, hashed, version, threshold, approvals, expires_at, status = view
    return {
        "campaign_id": hex0x(campaign),
        "proposer": proposer,
        "input_hash": hex0x(hashed),
        "rule_version": version,
        "threshold": threshold,
        "approvals": approvals,
        "expires_at": expires_at,
        "status": STATUS.get(status, str(status)),
    }


def ready(writes: Writes, proposal: dict[str, Any]) -> bool:
    now = int(writes.w3.eth.get_block("latest")["timestamp"])
    return (
        proposal["status"] == "pending"
        and proposal["approvals"] >= proposal["threshold"]
        and now <= proposal["expires_at"]
    )


def execute(writes: Writes, disbursement_id: str, wait: bool) -> TxState:
    """Execute a proposal from its stored input: 404 when the service holds no input for
    it, 409 when the chain says it cannot be executed (not pending, approvals missing,
    expired: the contract's error, from the simulation)."""
    disbursement = ids.to_bytes32(disbursement_id, "disbursement")
    row = stored(writes, hex0x(disbursement))
    if row is None:
        raise NotFound("proposal not found (the service keeps the inputs of the proposals it relayed)")
    value = from_json(row.input)
    if hex0x(input_hash(value)) != row.input_hash:  # never send an input that was altered here
        raise Conflict("the stored input of this proposal does not match its hash; it was not sent")
    call = encode("executeDisbursement", value)
    gas = writes.simulate(writes.service_account, call)
    records = {"kind": "disbursement", "ids": [ids.from_bytes32(disbursement)], "function": call.fn_name}
    # Sent by the registrar for the charity (its outbox row is the charity's to read).
    (state,) = writes.submit(writes.service_account, row.charity_id, [Step(call, records, gas)], wait=False)
    with writes.engine.begin() as connection:
        connection.execute(
            update(ProposalInput)
            .where(
                ProposalInput.deployment_id == writes.deployment_id,
                ProposalInput.disbursement_id == hex0x(disbursement),
            )
            .values(execution=state.id)
        )
    (settled,) = writes.settle([state], wait)
    return settled


def execute_if_ready(writes: Writes, disbursement_id: str, wait: bool) -> TxState | None:
    """Execute the proposal if the chain says it now can be, and the service holds its
    input; None otherwise (not enough approvals yet, or not ours to execute)."""
    disbursement = ids.to_bytes32(disbursement_id, "disbursement")
    if stored(writes, hex0x(disbursement)) is None:
        return None
    if not ready(writes, on_chain(writes, disbursement)):
        return None
    return execute(writes, disbursement_id, wait)
