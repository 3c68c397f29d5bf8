"""Read-your-writes: a write's 201 means the public reads already show it. The service
waits, after the transaction is mined, until the SQL mirror has indexed its block (the
in-process indexer is nudged to look at once), so a donor, a charity or a script that
reads right after a write never gets a 404 or stale totals. On anvil the indexer polls
every 0.5 s: without the wait, each read below would race it."""

from __future__ import annotations

import hashlib

import pytest

from tests.api.service import Service

pytestmark = pytest.mark.anvil


def test_every_write_is_readable_the_moment_it_answers_201(service: Service) -> None:
    charity_id, key = service.charity()
    assert service.get(f"/v1/charities/{charity_id}").status_code == 200
    for round_ in range(3):
        campaign_id = service.campaign(charity_id, key)
        assert service.get(f"/v1/campaigns/{campaign_id}").status_code == 200
        donation = service.donate(campaign_id, key, 10_000, donor=f"donor {round_}")
        traced = service.get(f"/v1/donations/{donation['id']}")
        assert traced.status_code == 200, traced.text
        assert service.get(f"/v1/campaigns/{campaign_id}").json()["received"] == 10_000
        paid = service.post(
            "/v1/disbursements",
            key,
            json={"campaign_id": campaign_id, "amount": 4_000, "recipient": "CN-USCC-1", "purpose": "rice"},
        )
        assert paid.status_code == 201, paid.text
        assert "mirrored" not in paid.json()
        assert service.get(f"/v1/disbursements/{paid.json()['id']}").status_code == 200
        assert service.get(f"/v1/donations/{donation['id']}").json()["allocated"] == 4_000
        document = f"invoice {round_} for rice".encode()
        uploaded = service.post(
            f"/v1/disbursements/{paid.json()['id']}/evidence", key, files={"files": ("i.txt", document)}
        )
        assert uploaded.status_code == 201, uploaded.text
        found = service.get(f"/v1/evidence/{hashlib.sha256(document).hexdigest()}")
        assert found.status_code == 200 and found.content == document, found.text
        refunded = service.post(
            f"/v1/donations/{donation['id']}/refunds", key, json={"amount": 1_000, "reason": "asked"}
        )
        assert refunded.status_code == 201, refunded.text
        assert service.get(f"/v1/donations/{donation['id']}").json()["refunded"] == 1_000
        batch = service.post(
            "/v1/donations/batch",
            key,
            json={
                "donations": [
                    {"campaign_id": campaign_id, "amount": 5, "donor_reference": f"b{i}"} for i in range(3)
                ]
            },
        )
        assert batch.status_code == 201, batch.text
        for item in batch.json()["donations"]:
            assert service.get(f"/v1/donations/{item['id']}").status_code == 200
        closed = service.post(f"/v1/campaigns/{campaign_id}/close", key)
        assert closed.status_code == 201, closed.text
        assert service.get(f"/v1/campaigns/{campaign_id}").json()["closed"] is True


def test_a_write_the_mirror_does_not_reach_in_time_is_202_not_201(service: Service) -> None:
    """With no indexer to catch up (stopped here), a mined write cannot be read yet: it
    answers 202 and says so, instead of a 201 whose reads would 404."""
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    assert service.runtime.indexer is not None
    service.runtime.indexer.stop()
    service.runtime.settings = service.runtime.settings.model_copy(update={"write_timeout": 1.0})
    answer = service.post(
        "/v1/donations", key, json={"campaign_id": campaign_id, "amount": 5, "donor_reference": "late"}
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["mirrored"] is False
    assert answer.json()["transaction"]["status"] == "mined"
