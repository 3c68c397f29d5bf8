"""The write path end to end, over HTTP: a charity records a campaign, donations, a
disbursement allocated first in, first out, evidence, and a refund; the chain holds
exactly that, signed by the charity's own operator account."""

from __future__ import annotations

import pytest

from ledger_api.core import ids
from tests.api.service import Service

pytestmark = pytest.mark.anvil


def test_a_charity_records_its_fund_flows(service: Service) -> None:
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    donations = [service.donate(campaign_id, key, amount) for amount in (10_000, 20_000, 30_000)]
    response = service.post(
        "/v1/disbursements",
        key,
        json={"campaign_id": campaign_id, "amount": 35_000, "recipient": "CN-USCC-9111", "purpose": "meals"},
    )
    assert response.status_code == 201, response.text
    disbursement = response.json()
    assert disbursement["allocations"] == [
        {"donation_id": donations[0]["id"], "amount": 10_000},
        {"donation_id": donations[1]["id"], "amount": 20_000},
        {"donation_id": donations[2]["id"], "amount": 5_000},
    ]
    contract = service.contract
    for donation, allocated in zip(donations, (10_000, 20_000, 5_000), strict=True):
        view = contract.functions.donationOf(ids.to_bytes32(donation["id"])).call()
        assert (view[1], view[2]) == (donation["amount"], allocated)
    # The on-chain sender is the charity's own operator account.
    for tx_hash in [
        disbursement["transaction"]["tx_hash"],
        *(d["transaction"]["tx_hash"] for d in donations),
    ]:
        assert service.runtime.w3.eth.get_transaction(tx_hash)["from"] == service.operators[charity_id]
