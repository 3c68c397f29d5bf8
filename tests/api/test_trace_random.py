"""Traces and totals agree with the contract's view functions for every donation and
campaign, after a random sequence of donations, batches, refunds and disbursements
(automatic and explicit) across two campaigns, some of which the contract rejects."""

from __future__ import annotations

import random

import pytest

from tests.api.checks import campaign_view, donation_view, reconciled, wait_for_mirror
from tests.api.service import ADMIN_KEY, Service

pytestmark = pytest.mark.anvil


@pytest.mark.parametrize("seed", [7, 2026])
def test_traces_and_totals_agree_with_the_contract(service: Service, seed: int) -> None:
    rng = random.Random(seed)
    charity_id, key = service.charity()
    campaigns = [service.campaign(charity_id, key), service.campaign(charity_id, key)]
    donations: list[str] = []
    for _ in range(40):
        action = rng.random()
        campaign = rng.choice(campaigns)
        if action < 0.35 or not donations:
            donations.append(service.donate(campaign, key, rng.randint(1, 50_000))["id"])
        elif action < 0.45:
            batch = [
                {"campaign_id": campaign, "amount": rng.randint(1, 20_000), "donor_reference": f"d{i}"}
                for i in range(rng.randint(2, 6))
            ]
            response = service.post("/v1/donations/batch", key, json={"donations": batch})
            assert response.status_code == 201, response.text
            donations += [d["id"] for d in response.json()["donations"]]
        elif action < 0.6:
            donation = rng.choice(donations)
            amount = rng.randint(1, 20_000)  # may exceed what is left: then a 409, nothing changes
            response = service.post(
                f"/v1/donations/{donation}/refunds", key, json={"amount": amount, "reason": "r"}
            )
            assert response.status_code in (201, 409), response.text
        elif action < 0.85:
            wait_for_mirror(service)  # automatic allocation reads the mirror
            body = {
                "campaign_id": campaign,
                "amount": rng.randint(1, 60_000),
                "recipient": "CN-1",
                "purpose": "p",
            }
            response = service.post("/v1/disbursements", key, json=body)
            assert response.status_code in (201, 409), response.text
        else:
            donation = rng.choice(donations)
            left = donation_view(service, donation)["remaining"]
            amount = rng.randint(1, left + 100) if left else 1  # sometimes more than is left
            mine = service.get(f"/v1/donations/{donation}")
            campaign = mine.json()["campaign"]["id"] if mine.status_code == 200 else campaign
            body = {
                "campaign_id": campaign,
                "amount": amount,
                "recipient": "CN-2",
                "purpose": "explicit",
                "allocations": [{"donation_id": donation, "amount": amount}],
            }
            response = service.post("/v1/disbursements", key, json=body)
            assert response.status_code in (201, 409), response.text
    wait_for_mirror(service)
    for donation in donations:
        trace = service.get(f"/v1/donations/{donation}").json()
        view = donation_view(service, donation)
        assert (trace["amount"], trace["allocated"], trace["refunded"], trace["remaining"]) == (
            view["amount"],
            view["allocated"],
            view["refunded"],
            view["remaining"],
        ), donation
        assert sum(a["amount"] for a in trace["allocations"]) == view["allocated"]
        assert sum(r["amount"] for r in trace["refunds"]) == view["refunded"]
    for campaign in campaigns:
        body = service.get(f"/v1/campaigns/{campaign}").json()
        view = campaign_view(service, campaign)
        for field in (
            "received",
            "refunded",
            "disbursed",
            "available",
            "donation_count",
            "disbursement_count",
        ):
            assert body[field] == view[field], (campaign, field)
    # And the service's own reconciliation agrees: every record and total matches the chain.
    auditor = service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}).json()["key"]
    answer = reconciled(service, auditor)
    assert answer["clean"] is True, answer["differences"]
    assert answer["views_checked"]["donations"] == len(donations)
