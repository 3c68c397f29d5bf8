"""Recording donations (singly or in batches) and refunds.

The donor reference (a name, an account number: whatever the charity uses) never leaves
this function: normalised (core.reference), it is hashed with 32 random bytes into the
donor commitment keccak256(salt || reference), the commitment goes on chain, the salt goes back to the
caller once as the donor's receipt secret, and neither is stored by the service.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from ledger_api.chain.abi import Call, encode, encode_donations
from ledger_api.chain.writer import TxState
from ledger_api.core import ids
from ledger_api.core.errors import InvalidRequest
from ledger_api.core.hexes import bytes32_or_zero, hex0x, pad32
from ledger_api.core.reference import commitment
from ledger_api.core.security import Principal, require_charity
from ledger_api.donations.schemas import DonationCreate
from ledger_api.transactions.service import Step, Writes

CHAIN_BATCH = 500  # the contract's MAX_BATCH


def _prepare(item: DonationCreate, campaign: bytes) -> tuple[dict[str, Any], tuple[Any, ...]]:
    donation_id = ids.new("donation")
    if item.source_disbursement_id is not None:
        # A grant has no donor to hand a secret to: its commitment is public and fixed.
        salt = None
        donor = ids.grant_commitment(ids.to_bytes32(item.source_disbursement_id, "disbursement"))
        channel = "grant" if item.channel == "unspecified" else item.channel
    else:
        assert item.donor_reference is not None
        salt = secrets.token_bytes(32)
        donor = commitment(salt, item.donor_reference)
        channel = item.channel
    onchain = (
        pad32(donation_id),  # ids.new makes canonical IDs
        campaign,
        item.amount,
        donor,
        pad32(channel),
        bytes32_or_zero(item.metadata_hash),
    )
    public = {
        "id": donation_id,
        "campaign_id": item.campaign_id,
        "amount": item.amount,
        "channel": channel,
        "donor_commitment": hex0x(onchain[3]),
    }
    if salt is not None:
        public["receipt_secret"] = hex0x(salt)
    else:
        public["source_disbursement_id"] = item.source_disbursement_id
    return public, onchain


def record(
    writes: Writes, principal: Principal, items: list[DonationCreate], wait: bool
) -> tuple[list[dict[str, Any]], list[TxState]]:
    """Record donations: one transaction per 500, all simulated before any is signed,
    so a batch is rejected whole or sent whole."""
    charities: dict[str, str] = {}
    for campaign in dict.fromkeys(item.campaign_id for item in items):  # in the batch's order
        charities[campaign] = writes.charity_of_campaign(campaign)
        # Another charity's campaign is "not found", as everywhere (not "mixed charities").
        require_charity(principal, charities[campaign], "campaign")
    charity_set = set(charities.values())
    if len(charity_set) != 1:
        raise InvalidRequest("all donations of one batch must belong to campaigns of the same charity")
    charity_hex = charity_set.pop()
    campaigns = {campaign: ids.to_bytes32(campaign, "campaign") for campaign in charities}
    grants = [item for item in items if item.source_disbursement_id is not None]
    if grants and len(items) > 1:
        raise InvalidRequest(
            "a grant is recorded as a donation on its own (POST /v1/donations), not in a batch"
        )
    prepared = [_prepare(item, campaigns[item.campaign_id]) for item in items]
    if grants:
        public, onchain = prepared[0]
        source = ids.to_bytes32(grants[0].source_disbursement_id or "", "disbursement")
        step = Step(
            encode("recordGrantDonation", onchain, source), {"kind": "donation", "ids": [public["id"]]}
        )
        states = writes.write(principal, charity_hex, "campaign", [step], wait)
        return [public], states
    if len(prepared) == 1:  # a single donation may share its transaction (group commit)
        public, onchain = prepared[0]
        (step,) = steps_for([onchain])
        states = writes.write_one(principal, charity_hex, "campaign", step, onchain, batch_call, wait)
        return [public], states
    states = writes.write(principal, charity_hex, "campaign", steps_for([o for _, o in prepared]), wait)
    return [public for public, _ in prepared], states


def batch_call(onchain: Sequence[tuple[Any, ...]]) -> Call:
    """The call recording these donations (on-chain tuples) in one transaction."""
    return encode("recordDonation", onchain[0]) if len(onchain) == 1 else encode_donations(list(onchain))


def steps_for(onchain: list[tuple[Any, ...]]) -> list[Step]:
    """One transaction per CHAIN_BATCH donations; each step names the donation IDs it records
    (the on-chain tuple's first field, the padded readable ID)."""
    steps = []
    for i in range(0, len(onchain), CHAIN_BATCH):
        chunk = onchain[i : i + CHAIN_BATCH]
        records = {"kind": "donation", "ids": [ids.from_bytes32(row[0]) for row in chunk]}
        steps.append(Step(batch_call(chunk), records))
    return steps


def refund(
    writes: Writes, principal: Principal, donation_id: str, amount: int, reason: str, wait: bool
) -> tuple[dict[str, Any], TxState]:
    donation = writes.view("donationOf", ids.to_bytes32(donation_id, "donation"), missing="donation")
    charity_hex = writes.charity_of_campaign(ids.from_bytes32(hex0x(donation[0])))
    refund_id = ids.new("refund")
    call = encode(
        "refundDonation", ids.to_bytes32(refund_id), ids.to_bytes32(donation_id, "donation"), amount, reason
    )
    (state,) = writes.write(
        principal, charity_hex, "donation", [Step(call, {"kind": "refund", "ids": [refund_id]})], wait
    )
    body = {
        "id": refund_id,
        "donation_id": donation_id,
        "amount": amount,
        "reason": reason,
        "transaction": writes.transaction_view(state),
    }
    return body, state
