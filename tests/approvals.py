"""Approvals in tests: a campaign under a k-of-n rule whose approvers are the chain's
unlocked dev accounts, disbursement inputs as the contract's DisbursementInput tuple, and
the proposal's input hash as the contract computes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak

from tests.ledger import ZERO, Ledger, rid

HOUR = 3600
INPUT_TYPE = "(bytes32,bytes32,uint256,string,string,bytes32,bytes32,bytes32,(bytes32,uint256)[])"


def approvers(ledger: Ledger, n: int = 3) -> list[str]:
    """`n` unlocked accounts that are neither the admin, an operator nor the stranger."""
    return list(ledger.w3.eth.accounts[4 : 4 + n])


def disbursement_input(
    label: str,
    allocations: Sequence[tuple[bytes, int]],
    campaign: bytes,
    recipient: str = "CN-ORG-1",
    purpose: str = "school-meals",
    amount: int | None = None,
) -> tuple[Any, ...]:
    total = sum(a for _, a in allocations) if amount is None else amount
    return (
        rid(label),
        campaign,
        total,
        recipient,
        purpose,
        ZERO,
        ZERO,
        ZERO,
        [tuple(a) for a in allocations],
    )


def input_hash(value: tuple[Any, ...]) -> bytes:
    """keccak256(abi.encode(DisbursementInput)), as proposeDisbursement stores it."""
    return keccak(abi_encode([INPUT_TYPE], [value]))


def rule(
    ledger: Ledger,
    names: Sequence[str],
    threshold: int,
    validity: int = 24 * HOUR,
    campaign: bytes | None = None,
) -> None:
    ledger.send(
        ledger.fn.setApprovalRule(campaign or ledger.campaign_a, list(names), threshold, validity),
        ledger.op_a,
    )
