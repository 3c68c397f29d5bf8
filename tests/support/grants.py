"""A three-hop grant chain on a deployed ledger, for any test to build on.

foundation (charity A, campaign A) -> county bureau (charity B, campaign B) -> school
(charity C, campaign C) -> the pupils' supplier (off the ledger). The foundation's donor
gives 1,000 of 2,033; each grant is recorded by its receiver as several donations of
uneven sizes, so the donor's share at each hop needs largest remainder (see EXPECTED).
The lead extends this with approvals and recipient confirmations: keep its IDs stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from web3.types import TxReceipt

from ledger_api.core.ids import grant_commitment
from tests.ledger import ZERO, Ledger, commitment, rid

GRANT_CHANNEL = b"grant".ljust(32, b"\0")

# The donor's exact integer share of each payment down the chain (largest remainder at
# every hop; see ledger_api/core/shares.py): of the bureau's grant to the school, 450 came
# through the first recorded part of the foundation's grant (601 of its 1,201 were the
# donor's; 900 of it went on) and 399 through the second (all of it went on).
EXPECTED = {
    "foundation-grant": 1000,  # the donor's whole donation, allocated to it
    "bureau-grant": 450 + 399,
    "school-supplier": 297 + 276 + 127,
}


@dataclass
class ThreeHops:
    led: Ledger
    op_c: str
    charity_c: bytes = rid("charity-school")
    campaign_c: bytes = rid("campaign-school")
    donor_donation: bytes = rid("foundation-donor")
    grants: dict[str, bytes] = field(default_factory=dict)  # label -> disbursement ID
    received: dict[str, list[bytes]] = field(default_factory=dict)  # grant label -> its donations
    receipts: list[TxReceipt] = field(default_factory=list)


def disbursement_input(
    led: Ledger,
    label: str,
    campaign: bytes,
    allocations: list[tuple[bytes, int]],
    recipient_campaign: bytes = ZERO,
    recipient_org: bytes = ZERO,
    recipient: str = "CN-ORG-1",
) -> tuple[Any, ...]:
    """A DisbursementInput tuple for disburse/proposeDisbursement/executeDisbursement."""
    amount = sum(a for _, a in allocations)
    return (
        rid(label),
        campaign,
        amount,
        recipient,
        "grant" if recipient_campaign != ZERO else "school-meals",
        ZERO,
        recipient_campaign,
        recipient_org,
        list(allocations),
    )


def grant_donation(donation_id: bytes, campaign: bytes, amount: int, source: bytes) -> tuple[Any, ...]:
    """A DonationInput recording part of the grant `source` (the commitment is the
    documented non-personal one the service uses)."""
    return (donation_id, campaign, amount, grant_commitment(source), GRANT_CHANNEL, ZERO)


def record_grant(
    led: Ledger, source: bytes, campaign: bytes, parts: dict[str, int], sender: str
) -> list[bytes]:
    ids = []
    for label, amount in parts.items():
        led.send(
            led.fn.recordGrantDonation(grant_donation(rid(label), campaign, amount, source), source), sender
        )
        ids.append(rid(label))
    return ids


def build_three_hops(led: Ledger) -> ThreeHops:
    """Charity C (the school) with operator accounts[4], and the three hops."""
    fn, w3 = led.fn, led.w3
    hops = ThreeHops(led, op_c=w3.eth.accounts[4])
    led.send(fn.registerCharity(hops.charity_c, "School C", ZERO), led.admin)
    led.send(fn.addOperator(hops.charity_c, hops.op_c), led.admin)
    led.send(fn.createCampaign(hops.campaign_c, hops.charity_c, "Campaign C", b"CNY", 10**9, ZERO), hops.op_c)

    # Hop 0: the foundation's donors; the grant to the bureau takes all of the donor's 1,000.
    donations = [
        (
            hops.donor_donation,
            led.campaign_a,
            1000,
            commitment("foundation donor"),
            b"bank".ljust(32, b"\0"),
            ZERO,
        ),
        (
            rid("foundation-2"),
            led.campaign_a,
            700,
            commitment("second donor"),
            b"bank".ljust(32, b"\0"),
            ZERO,
        ),
        (rid("foundation-3"), led.campaign_a, 333, commitment("third donor"), b"bank".ljust(32, b"\0"), ZERO),
    ]
    led.send(fn.recordDonations(donations), led.op_a)
    foundation_grant = disbursement_input(
        led,
        "foundation-grant",
        led.campaign_a,
        [(hops.donor_donation, 1000), (rid("foundation-2"), 700), (rid("foundation-3"), 300)],
        recipient_campaign=led.campaign_b,
    )
    hops.receipts.append(led.send(fn.disburse(foundation_grant), led.op_a))
    hops.grants["foundation-grant"] = rid("foundation-grant")

    # Hop 1: the bureau records the 2,000 as 1,201 + 799, has a donor of its own, and grants 2,000 on.
    hops.received["foundation-grant"] = record_grant(
        led, rid("foundation-grant"), led.campaign_b, {"bureau-in-1": 1201, "bureau-in-2": 799}, led.op_b
    )
    led.donate("bureau-local", 500, campaign=led.campaign_b, sender=led.op_b)
    bureau_grant = disbursement_input(
        led,
        "bureau-grant",
        led.campaign_b,
        [(rid("bureau-in-1"), 900), (rid("bureau-in-2"), 799), (rid("bureau-local"), 301)],
        recipient_campaign=hops.campaign_c,
    )
    hops.receipts.append(led.send(fn.disburse(bureau_grant), led.op_b))
    hops.grants["bureau-grant"] = rid("bureau-grant")

    # Hop 2: the school records it as 700 + 650 + 650 and pays the supplier 1,650.
    hops.received["bureau-grant"] = record_grant(
        led,
        rid("bureau-grant"),
        hops.campaign_c,
        {"school-in-1": 700, "school-in-2": 650, "school-in-3": 650},
        hops.op_c,
    )
    supplier = disbursement_input(
        led,
        "school-supplier",
        hops.campaign_c,
        [(rid("school-in-1"), 700), (rid("school-in-2"), 650), (rid("school-in-3"), 300)],
        recipient="Rice supplier, Huining",
    )
    hops.receipts.append(led.send(fn.disburse(supplier), hops.op_c))
    return hops
