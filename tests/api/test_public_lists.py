"""Public lists over HTTP: campaigns with totals equal to the contract's views, donations
and disbursements paged by cursor in chain order with filters, the flow graph adding up,
charities with totals per currency; bad paging input is a 422, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.checks import campaign_view, problem, wait_for_mirror
from tests.api.service import Service

pytestmark = pytest.mark.anvil

AMOUNTS = [1_000, 7_000, 3_000, 9_000, 5_000, 2_000, 8_000]


@pytest.fixture
def world(service: Service) -> dict[str, Any]:
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    other_campaign = service.campaign(charity_id, key, currency="USD")
    donations = [
        service.donate(campaign_id, key, amount, donor=f"secret donor {i}")
        for i, amount in enumerate(AMOUNTS)
    ]
    service.donate(other_campaign, key, 4_200)
    wait_for_mirror(service)
    paid = []
    for amount, purpose in ((9_500, "rice"), (4_000, "stoves")):
        response = service.post(
            "/v1/disbursements",
            key,
            json={"campaign_id": campaign_id, "amount": amount, "recipient": "CN-1", "purpose": purpose},
        )
        assert response.status_code == 201, response.text
        paid.append(response.json())
        wait_for_mirror(service)
    evidence = service.post(
        f"/v1/disbursements/{paid[0]['id']}/evidence", key, files={"files": ("a.txt", b"inv")}
    )
    assert evidence.status_code == 201
    refund = service.post(
        f"/v1/donations/{donations[6]['id']}/refunds", key, json={"amount": 500, "reason": "asked"}
    )
    assert refund.status_code == 201
    wait_for_mirror(service)
    return {
        "charity_id": charity_id,
        "campaign_id": campaign_id,
        "other_campaign": other_campaign,
        "donations": donations,
        "disbursements": paid,
        "operator": service.operators[charity_id],
    }


def test_campaign_totals_equal_the_contract_views(service: Service, world: dict[str, Any]) -> None:
    body = service.get(f"/v1/campaigns/{world['campaign_id']}").json()
    view = campaign_view(service, world["campaign_id"])
    assert (body["received"], body["refunded"], body["disbursed"], body["available"]) == (
        view["received"],
        view["refunded"],
        view["disbursed"],
        view["available"],
    )
    assert (body["donation_count"], body["disbursement_count"]) == (len(AMOUNTS), 2)
    assert body["evidence_coverage"] == {
        "disbursements_with_evidence": 1,
        "share_of_disbursements": 0.5,
        "share_of_amount": round(9_500 / 13_500, 4),
    }


def _pages(service: Service, url: str, **extra: Any) -> tuple[list[str], int]:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **extra} | ({"cursor": cursor} if cursor else {})
        body = service.get(url, params=params).json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            return seen, pages


def test_donations_page_by_cursor_in_chain_order_without_gaps(
    service: Service, world: dict[str, Any]
) -> None:
    url = f"/v1/campaigns/{world['campaign_id']}/donations"
    seen, pages = _pages(service, url)
    assert seen == [d["id"] for d in world["donations"]] and pages == 3
    # Newest first: the same rows, reversed, and the cursor follows that order.
    newest, pages = _pages(service, url, order="newest")
    assert newest == seen[::-1] and pages == 3
    text = service.get(f"/v1/campaigns/{world['campaign_id']}/donations").text
    assert "secret donor" not in text and world["donations"][0]["receipt_secret"][2:] not in text


def test_filters_on_amount_and_time(service: Service, world: dict[str, Any]) -> None:
    url = f"/v1/campaigns/{world['campaign_id']}/donations"
    mid = service.get(url, params={"min_amount": 3_000, "max_amount": 8_000}).json()["items"]
    assert sorted(item["amount"] for item in mid) == sorted(a for a in AMOUNTS if 3_000 <= a <= 8_000)
    assert service.get(url, params={"since": "2999-01-01T00:00:00Z"}).json()["items"] == []
    assert len(service.get(url, params={"until": "2999-01-01T00:00:00Z"}).json()["items"]) == len(AMOUNTS)
    big = service.get(
        f"/v1/campaigns/{world['campaign_id']}/disbursements", params={"min_amount": 5_000}
    ).json()
    assert [item["id"] for item in big["items"]] == [world["disbursements"][0]["id"]]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 201},
        {"limit": 0},
        {"limit": "ten"},
        {"cursor": "garbage!"},
        {"cursor": "WzEsMl0x"},
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},
        {"min_amount": -1},
        {"min_amount": 1.5},
        {"order": "random"},
    ],
)
def test_bad_paging_input_is_422(service: Service, world: dict[str, Any], params: dict[str, Any]) -> None:
    problem(
        service.get(f"/v1/campaigns/{world['campaign_id']}/donations", params=params), 422, "invalid-request"
    )


def test_the_flow_graph_adds_up(service: Service, world: dict[str, Any]) -> None:
    flows = service.get(f"/v1/campaigns/{world['campaign_id']}/flows").json()
    view = campaign_view(service, world["campaign_id"])
    out: dict[str, int] = {}
    into: dict[str, int] = {}
    for edge in flows["edges"]:
        out[edge["from"]] = out.get(edge["from"], 0) + edge["amount"]
        into[edge["to"]] = into.get(edge["to"], 0) + edge["amount"]
    for source in flows["sources"]:
        assert out[source["id"]] == source["amount"]
    assert sum(s["amount"] for s in flows["sources"]) == view["received"]
    assert (
        sum(v for k, v in into.items() if k.startswith("disbursement:") or k == "other") == view["disbursed"]
    )
    assert into["refunded"] == view["refunded"] and into["unspent"] == view["available"]
    for target in flows["targets"]:
        assert into[target["id"]] == target["amount"]


def test_charities_list_and_detail(service: Service, world: dict[str, Any]) -> None:
    listed = service.get("/v1/charities").json()["items"]
    [mine] = [c for c in listed if c["id"] == world["charity_id"]]
    assert set(mine["totals_by_currency"]) == {"CNY", "USD"}
    assert mine["totals_by_currency"]["USD"]["received"] == 4_200
    detail = service.get(f"/v1/charities/{world['charity_id']}").json()
    assert detail["operators"] == [world["operator"]]
    assert {c["id"] for c in detail["campaigns"]} == {world["campaign_id"], world["other_campaign"]}
    campaigns = service.get("/v1/campaigns", params={"charity_id": world["charity_id"]}).json()["items"]
    assert [c["id"] for c in campaigns] == [world["campaign_id"], world["other_campaign"]]
    problem(service.get("/v1/charities/CH-0000-0000-0000-0000"), 404, "not-found")


def _forged(*position: int) -> str:
    """A cursor in the shape this service used to hand out (unsigned base64 JSON)."""
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode().rstrip("=")


def test_made_up_cursors_and_filters_past_the_database_are_422_everywhere(
    service: Service, world: dict[str, Any]
) -> None:
    """A cursor holding a huge integer, or an amount filter past 2**63 - 1, used to reach
    SQL and answer 500 (OverflowError on SQLite) on every list, page and the audit trail.
    Only cursors this service issued are taken back; amounts are bounded by the contract's
    MAX_AMOUNT, the most any record holds."""
    campaign, charity = world["campaign_id"], world["charity_id"]
    real = service.get(f"/v1/campaigns/{campaign}/donations", params={"limit": 2}).json()["next"]
    assert real
    tampered = real[:-2] + ("AA" if not real.endswith("AA") else "BB")
    cursors = [_forged(2**64, 0), _forged(2**63, 1), _forged(1, 2), tampered, real + "x"]
    auditor = service.post(
        "/v1/keys", "test-admin-key-0123456789abcdefghijklmnopqrstuvwxyz", json={"role": "auditor"}
    ).json()["key"]
    lists = [
        ("/v1/campaigns", None),
        ("/v1/charities", None),
        (f"/v1/campaigns/{campaign}/donations", None),
        (f"/v1/campaigns/{campaign}/disbursements", None),
        ("/v1/audit/trail", auditor),
    ]
    for path, key in lists:
        for cursor in cursors:
            problem(service.get(path, key, params={"cursor": cursor}), 422, "invalid-request")
    for path in (f"/v1/campaigns/{campaign}/donations", f"/v1/campaigns/{campaign}/disbursements"):
        for bound in (2**63, 2**64, 10**19, 10**24):
            for name in ("min_amount", "max_amount"):
                problem(service.get(path, params={name: bound}), 422, "invalid-request")
        everything = service.get(path, params={"min_amount": 0, "max_amount": 10**18})
        assert everything.status_code == 200, everything.text
    pages = [
        "/?charities={}",
        f"/campaigns/{campaign}?donations={{}}",
        f"/charities/{charity}?campaigns={{}}",
    ]
    for template in pages:
        for cursor in cursors:
            answer = service.get(template.format(cursor), headers={"accept": "text/html"})
            assert answer.status_code == 422, (template, answer.status_code)
            assert answer.headers["content-type"].startswith("text/html")
    # A real cursor still pages on.
    assert service.get(f"/v1/campaigns/{campaign}/donations", params={"cursor": real}).status_code == 200
