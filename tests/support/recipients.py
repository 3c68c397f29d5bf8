"""Recipient organisations on a test ledger (contract 2.2.0): register one with its own
key, name it in a disbursement, confirm receipt with that key, in part or in full.

Built on `tests.ledger.Ledger` (the contract driven directly from the node's unlocked
accounts), so any chain test can add a recipient hop, such as the three-hop fixture that
follows money from a donation through a grant to an organisation's confirmation. Nothing
here goes through the service: the API's own tests post to the routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from web3.types import TxReceipt

from tests.ledger import ZERO, Ledger, rid

# A Unified Social Credit Code with a correct check character (GB 32100-2015), as the
# registrar would type it: a legal person (5), a social organisation (3).
USCC = "53100000500021676K"


@dataclass(frozen=True)
class RecipientOrg:
    """A registered recipient organisation: its ID on chain and the account it signs with."""

    recipient_id: bytes
    identifier: str
    name: str
    account: str


def register(
    led: Ledger,
    label: str,
    account: str,
    identifier: str = USCC,
    name: str | None = None,
) -> RecipientOrg:
    """Register a recipient organisation (the registrar is the ledger's admin account)."""
    org = RecipientOrg(rid(label), identifier, name or f"Organisation {label}", account)
    led.send(led.fn.registerRecipient(org.recipient_id, org.identifier, org.name, org.account), led.admin)
    return org


def disbursement_input(
    led: Ledger,
    label: str,
    allocations: Sequence[tuple[bytes, int]],
    recipient: RecipientOrg | None = None,
    campaign: bytes | None = None,
    recipient_campaign: bytes = ZERO,
    evidence: bytes = ZERO,
) -> tuple[object, ...]:
    """A DisbursementInput naming `recipient` (and, for a grant, `recipient_campaign`)."""
    return (
        rid(label),
        campaign or led.campaign_a,
        sum(amount for _, amount in allocations),
        recipient.name if recipient else "CN-ORG-1",
        "school-meals",
        evidence,
        recipient_campaign,
        recipient.recipient_id if recipient else ZERO,
        list(allocations),
    )


def disburse_to(
    led: Ledger,
    label: str,
    allocations: Sequence[tuple[bytes, int]],
    recipient: RecipientOrg,
    campaign: bytes | None = None,
    sender: str | None = None,
) -> TxReceipt:
    """`disburse` a payment that names the registered recipient organisation."""
    call = led.fn.disburse(disbursement_input(led, label, allocations, recipient, campaign))
    return led.send(call, sender or led.op_a)


def confirm(
    led: Ledger,
    org: RecipientOrg,
    label: str,
    disbursement: str,
    amount: int,
    statement: str = "received in full order",
    evidence: bytes = ZERO,
) -> TxReceipt:
    """The organisation confirms, from its own account, receipt of `amount` of the
    disbursement labelled `disbursement`."""
    call = led.fn.confirmReceipt(rid(label), rid(disbursement), amount, statement, evidence)
    return led.send(call, org.account)
