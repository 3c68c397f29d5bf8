"""Campaigns: created and closed by their charity's operator."""

from __future__ import annotations

from typing import Any

from ledger_api.campaigns.schemas import CampaignCreate
from ledger_api.chain.abi import encode
from ledger_api.chain.writer import TxState
from ledger_api.core import ids
from ledger_api.core.hexes import bytes32_or_zero, unhex
from ledger_api.core.security import Principal
from ledger_api.transactions.service import Step, Writes


def create(
    writes: Writes, principal: Principal, body: CampaignCreate, wait: bool
) -> tuple[dict[str, Any], TxState]:
    charity_hex = ids.to_hex(body.charity_id, "charity")
    campaign_id = ids.new("campaign")
    metadata = bytes32_or_zero(body.metadata_hash)
    call = encode(
        "createCampaign",
        ids.to_bytes32(campaign_id),
        unhex(charity_hex),
        body.name,
        body.currency.encode(),
        body.goal,
        metadata,
    )
    (state,) = writes.write(
        principal, charity_hex, "charity", [Step(call, {"kind": "campaign", "ids": [campaign_id]})], wait
    )
    created = {
        "id": campaign_id,
        "charity_id": body.charity_id,
        "name": body.name,
        "currency": body.currency,
        "goal": body.goal,
        "transaction": writes.transaction_view(state),
    }
    return created, state


def close(
    writes: Writes, principal: Principal, campaign_id: str, wait: bool
) -> tuple[dict[str, Any], TxState]:
    charity_hex = writes.charity_of_campaign(campaign_id)
    call = encode("closeCampaign", ids.to_bytes32(campaign_id, "campaign"))
    (state,) = writes.write(
        principal,
        charity_hex,
        "campaign",
        [Step(call, {"kind": "campaign-closed", "ids": [campaign_id]})],
        wait,
    )
    return {"id": campaign_id, "closed": True, "transaction": writes.transaction_view(state)}, state
