"""Grants over HTTP: a disbursement to another campaign on the ledger, recorded by the
receiving charity as donations naming it, three hops down (foundation -> bureau -> school
-> supplier); the foundation donor's trace at depth 3 with exact shares at every hop; the
contract's grant errors as named 409s, the service's own checks as 422s. On the embedded
chain and on anvil."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from ledger_api.audit import iati
from ledger_api.core import ids
from ledger_api.core.hexes import hex0x
from tests.api.checks import contract_error, problem, wait_for_mirror
from tests.api.service import ADMIN_KEY, Service, serve, settings_for
from tests.api.test_self_custody import own_key_charity
from tests.test_cli import _ledger


@pytest.fixture(params=["eth-tester", pytest.param("anvil", marks=pytest.mark.anvil)])
def any_chain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    rpc_url = request.getfixturevalue("anvil").url if request.param == "anvil" else None
    with serve(settings_for(tmp_path, rpc_url, f"sqlite:///{tmp_path / 'ledger.db'}")) as running:
        yield running


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def _disburse(
    service: Service, key: str, campaign: str, allocations: list[tuple[str, int]], **extra: Any
) -> httpx.Response:
    return service.post(
        "/v1/disbursements",
        key,
        json={
            "campaign_id": campaign,
            "amount": sum(a for _, a in allocations),
            "recipient": extra.pop("recipient", "CN-USCC-ONWARD"),
            "purpose": "grant",
            "allocations": [{"donation_id": d, "amount": a} for d, a in allocations],
            **extra,
        },
    )


def _record_grant(service: Service, key: str, campaign: str, source: str, amount: int) -> httpx.Response:
    return service.post(
        "/v1/donations",
        key,
        json={"campaign_id": campaign, "amount": amount, "source_disbursement_id": source},
    )


def test_three_hops_over_http_with_exact_shares(any_chain: Service) -> None:
    service = any_chain
    foundation, f_key = service.charity("Foundation")
    bureau, b_key = service.charity("County Education Bureau")
    school, s_key = service.charity("Huining No. 2 School")
    cf, cb, cs = (service.campaign(c, k) for c, k in ((foundation, f_key), (bureau, b_key), (school, s_key)))
    donor = service.donate(cf, f_key, 1000, donor="foundation donor")["id"]
    second = service.donate(cf, f_key, 700)["id"]
    third = service.donate(cf, f_key, 333)["id"]

    # A campaign cannot grant to itself: the service says so before anything is signed.
    problem(_disburse(service, f_key, cf, [(donor, 10)], recipient_campaign_id=cf), 422, "invalid-request")

    g1 = _ok(
        _disburse(service, f_key, cf, [(donor, 1000), (second, 700), (third, 300)], recipient_campaign_id=cb)
    )
    assert g1["recipient_campaign_id"] == cb
    # The bureau records it as two donations; a third would overdraw it; the school may not.
    parts = [_ok(_record_grant(service, b_key, cb, g1["id"], amount)) for amount in (1201, 799)]
    assert "receipt_secret" not in parts[0]
    assert parts[0]["source_disbursement_id"] == g1["id"] and parts[0]["channel"] == "grant"
    assert parts[0]["donor_commitment"] == hex0x(ids.grant_commitment(ids.to_bytes32(g1["id"])))
    overdrawn = contract_error(_record_grant(service, b_key, cb, g1["id"], 1), "GrantOverdrawn")
    assert overdrawn["error"]["args"]["available"] == 0 and overdrawn["error"]["args"]["requested"] == 1
    contract_error(_record_grant(service, s_key, cs, g1["id"], 1), "GrantNotAddressed")
    # Another charity's key cannot record into the bureau's campaign at all.
    problem(_record_grant(service, s_key, cb, g1["id"], 1), 404, "not-found")
    # A grant and a donor are not both given.
    bad = service.post(
        "/v1/donations",
        b_key,
        json={"campaign_id": cb, "amount": 1, "source_disbursement_id": g1["id"], "donor_reference": "x"},
    )
    problem(bad, 422, "invalid-request")

    local = service.donate(cb, b_key, 500)["id"]
    g2 = _ok(
        _disburse(
            service,
            b_key,
            cb,
            [(parts[0]["id"], 900), (parts[1]["id"], 799), (local, 301)],
            recipient_campaign_id=cs,
        )
    )
    school_in = [_ok(_record_grant(service, s_key, cs, g2["id"], amount))["id"] for amount in (700, 650, 650)]
    supplier = _ok(
        _disburse(
            service,
            s_key,
            cs,
            [(school_in[0], 700), (school_in[1], 650), (school_in[2], 300)],
            recipient="Rice supplier, Huining",
        )
    )
    wait_for_mirror(service)

    plain = _ok(service.get(f"/v1/donations/{donor}"))
    assert "hops" not in plain  # the default answer is today's
    trace = _ok(service.get(f"/v1/donations/{donor}", params={"depth": 3}))
    hops = trace["hops"]
    assert [h["depth"] for h in hops] == [1, 2, 3]
    shares = [{d["id"]: d["donor_share"] for d in h["disbursements"]} for h in hops]
    assert shares == [{g1["id"]: 1000}, {g2["id"]: 450 + 399}, {supplier["id"]: 297 + 276 + 127}]
    assert {d["id"]: d["donor_share"] for d in hops[1]["donations"]} == {
        parts[0]["id"]: 601,
        parts[1]["id"]: 399,
    }
    assert [d["donor_share"] for d in hops[2]["donations"]] == [297, 276, 276]
    assert hops[2]["disbursements"][0]["charity"]["name"] == "Huining No. 2 School"
    assert hops[0]["disbursements"][0]["recipient_campaign"]["id"] == cb
    for hop in hops:  # the shares add up exactly at every hop
        assert hop["entered"] == sum(d["donor_share"] for d in hop["donations"])
        assert hop["entered"] == sum(d["donor_share"] for d in hop["disbursements"]) + hop["unspent"]
    for before, after in itertools.pairwise(hops):
        granted = sum(d["donor_share"] for d in before["disbursements"] if d["recipient_campaign"])
        assert after["entered"] + after["not_recorded"] == granted
    # Deeper than the chain goes: the same three hops. Out of range: a 422.
    assert _ok(service.get(f"/v1/donations/{donor}", params={"depth": 5}))["hops"] == hops
    for depth in (6, -1):
        problem(service.get(f"/v1/donations/{donor}", params={"depth": depth}), 422, "invalid-request")


def test_a_grant_not_recorded_in_full_is_an_anomaly_for_both_charities(any_chain: Service) -> None:
    service = any_chain
    foundation, f_key = service.charity("Foundation")
    bureau, b_key = service.charity("County Education Bureau")
    other, o_key = service.charity("Unrelated Fund")
    cf, cb = service.campaign(foundation, f_key), service.campaign(bureau, b_key)
    service.campaign(other, o_key)
    auditor = _ok(service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}))["key"]
    donation = service.donate(cf, f_key, 100)["id"]
    grant = _ok(_disburse(service, f_key, cf, [(donation, 100)], recipient_campaign_id=cb))["id"]
    _ok(_record_grant(service, b_key, cb, grant, 40))
    wait_for_mirror(service)
    # eth-tester's blocks run a second apart however fast they come, so its clock can be
    # ahead of ours: wait until the grant's block is in the past ("0 days old").
    head = service.runtime.w3.eth.get_block("latest")["timestamp"]
    while time.time() <= head:
        time.sleep(0.1)

    def reported(charity: str, **params: Any) -> list[dict[str, Any]]:
        answer = _ok(service.get("/v1/audit/anomalies", auditor, params={"charity_id": charity, **params}))
        assert answer["counts"]["grant_unrecorded"] == len(
            [i for i in answer["items"] if i["kind"] == "grant_unrecorded"]
        )
        return [i for i in answer["items"] if i["kind"] == "grant_unrecorded"]

    for charity in (foundation, bureau):
        (item,) = reported(charity, grant_days=0)
        assert item["record"] == {"kind": "disbursement", "id": grant}
        assert item["campaign_id"] == cb and item["charity_id"] == bureau
        assert item["amount"] == 60
        assert "has recorded 0.40 CNY of it" in item["detail"]
        assert reported(charity) == []  # not 14 days old yet
    assert reported(other, grant_days=0) == []
    _ok(_record_grant(service, b_key, cb, grant, 60))  # recorded in full: no longer reported
    wait_for_mirror(service)
    assert reported(bureau, grant_days=0) == []


def test_the_iati_export_links_the_paying_and_receiving_activities(any_chain: Service) -> None:
    service = any_chain
    foundation, f_key = service.charity("Foundation")
    bureau, b_key = service.charity("County Education Bureau")
    cf, cb = service.campaign(foundation, f_key), service.campaign(bureau, b_key)
    auditor = _ok(service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}))["key"]
    donation = service.donate(cf, f_key, 100)["id"]
    grant = _ok(_disburse(service, f_key, cf, [(donation, 100)], recipient_campaign_id=cb))["id"]
    incoming = _ok(_record_grant(service, b_key, cb, grant, 100))["id"]
    wait_for_mirror(service)

    exported = service.get("/v1/audit/export", auditor, params={"format": "iati"})
    assert exported.status_code == 200, exported.text
    assert iati.validate(exported.content) == []
    root = etree.fromstring(exported.content)
    identifiers = {
        campaign: next(
            a.findtext("iati-identifier")
            for a in root.iter("iati-activity")
            if a.findtext("iati-identifier").endswith(campaign)
        )
        for campaign in (cf, cb)
    }
    paid = root.xpath(f'//transaction[@ref="{grant}"]/receiver-org')[0]
    assert paid.get("receiver-activity-id") == identifiers[cb]
    assert paid.findtext("narrative") == "County Education Bureau"
    received = root.xpath(f'//transaction[@ref="{incoming}"]/provider-org')[0]
    assert received.get("provider-activity-id") == identifiers[cf]
    assert received.findtext("narrative") == "Foundation"
    # An ordinary donation still comes from an anonymous donor.
    plain = root.xpath(f'//transaction[@ref="{donation}"]/provider-org')[0]
    assert plain.get("provider-activity-id") is None


def test_the_command_line_records_a_grant_received(any_chain: Service) -> None:
    service = any_chain
    foundation, f_key = service.charity("Foundation")
    bureau, b_key = service.charity("County Education Bureau")
    cf, cb = service.campaign(foundation, f_key), service.campaign(bureau, b_key)
    donation = service.donate(cf, f_key, 100)["id"]
    grant = _ok(_disburse(service, f_key, cf, [(donation, 100)], recipient_campaign_id=cb))["id"]
    base = ["donate", "--campaign-id", cb, "--amount", "100", "--key", b_key, "--api", service.base]

    both = _ledger(*base, "--source-disbursement", grant, "--donor-reference", "someone")
    assert both.returncode == 2 and b"one of them" in both.stderr
    recorded = _ledger(*base, "--source-disbursement", grant)
    assert recorded.returncode == 0, recorded.stderr
    answer = json.loads(recorded.stdout)
    assert answer["source_disbursement_id"] == grant and "receipt_secret" not in answer
    again = _ledger(*base, "--source-disbursement", grant)
    assert again.returncode != 0 and b"GrantOverdrawn" in again.stderr


def three_hops_over_http(service: Service) -> dict[str, Any]:
    """Foundation -> bureau -> school -> supplier through the API, with the amounts of
    tests/support/grants.py (EXPECTED there holds the donor's shares); for page tests."""
    made: dict[str, Any] = {}
    charities = [
        service.charity(name) for name in ("Foundation", "County Education Bureau", "Huining No. 2 School")
    ]
    (_, f_key), (_, b_key), (_, s_key) = charities
    cf, cb, cs = (service.campaign(c, k) for c, k in charities)
    donor = service.donate(cf, f_key, 1000, donor="foundation donor")["id"]
    others = [service.donate(cf, f_key, amount)["id"] for amount in (700, 333)]
    g1 = _ok(
        _disburse(
            service, f_key, cf, [(donor, 1000), (others[0], 700), (others[1], 300)], recipient_campaign_id=cb
        )
    )
    parts = [_ok(_record_grant(service, b_key, cb, g1["id"], amount))["id"] for amount in (1201, 799)]
    local = service.donate(cb, b_key, 500)["id"]
    g2 = _ok(
        _disburse(
            service, b_key, cb, [(parts[0], 900), (parts[1], 799), (local, 301)], recipient_campaign_id=cs
        )
    )
    school = [_ok(_record_grant(service, s_key, cs, g2["id"], amount))["id"] for amount in (700, 650, 650)]
    supplier = _ok(
        _disburse(
            service,
            s_key,
            cs,
            [(school[0], 700), (school[1], 650), (school[2], 300)],
            recipient="Rice supplier, Huining",
        )
    )
    wait_for_mirror(service)
    made.update(donor=donor, grants=[g1["id"], g2["id"]], supplier=supplier["id"], campaigns=[cf, cb, cs])
    return made


def test_a_self_custody_charity_signs_its_grant_and_its_receipt_with_its_own_key(any_chain: Service) -> None:
    """disburse and recordGrantDonation are signable: prepared, signed here, relayed."""
    service = any_chain
    payer = own_key_charity(service.base, "Foundation (own key)")
    receiver = own_key_charity(service.base, "Bureau (own key)")
    cf, cb = payer.campaign(), receiver.campaign()
    donation, _ = payer.write("/v1/donations", {"campaign_id": cf, "amount": 500, "donor_reference": "d"})
    body = {
        "campaign_id": cf,
        "amount": 500,
        "recipient": "Bureau",
        "purpose": "grant",
        "allocations": [{"donation_id": donation["id"], "amount": 500}],
        "recipient_campaign_id": cb,
    }
    prepared = payer.prepare("/v1/disbursements", body)
    assert [c["function"] for c in prepared["signed_calls"]] == ["disburse"]
    relayed = payer.relay(payer.sign(prepared))
    assert relayed.status_code == 201, relayed.text
    grant = prepared["records"]["id"]
    # The bureau's key may not sign for the foundation's campaign, nor the reverse.
    problem(receiver.post("/v1/disbursements", body, params={"mode": "prepare"}), 404, "not-found")
    received = receiver.prepare(
        "/v1/donations", {"campaign_id": cb, "amount": 500, "source_disbursement_id": grant}
    )
    assert [c["function"] for c in received["signed_calls"]] == ["recordGrantDonation"]
    answer = receiver.relay(receiver.sign(received))
    assert answer.status_code == 201, answer.text
    assert answer.json()["records"][0]["signed_by"] == receiver.account.address
    wait_for_mirror(service)
    trace = _ok(service.get(f"/v1/donations/{donation['id']}", params={"depth": 2}))
    assert [h["disbursements"] for h in trace["hops"]][1] == []
    assert trace["hops"][1]["donations"][0]["id"] == received["records"]["id"]
    assert trace["hops"][1]["entered"] == 500


def test_a_grant_cycle_is_followed_to_the_depth_asked_and_no_further(any_chain: Service) -> None:
    """A -> B -> A -> B: money that comes back is a new donation each time, so the trace
    ends at the depth asked; every hop still adds up exactly."""
    service = any_chain
    (a, a_key), (b, b_key) = service.charity("A"), service.charity("B")
    ca, cb = service.campaign(a, a_key), service.campaign(b, b_key)
    donation = service.donate(ca, a_key, 999)["id"]
    source, amount, pay_from, key, to = donation, 999, ca, a_key, cb
    keys = {ca: a_key, cb: b_key}
    for _ in range(4):  # A->B, B->A, A->B, B->A, each passing on two thirds of what came in
        amount = amount * 2 // 3
        grant = _ok(_disburse(service, key, pay_from, [(source, amount)], recipient_campaign_id=to))["id"]
        source = _ok(_record_grant(service, keys[to], to, grant, amount))["id"]
        pay_from, key, to = to, keys[to], pay_from
    wait_for_mirror(service)
    for depth in (1, 3, 5):
        hops = _ok(service.get(f"/v1/donations/{donation}", params={"depth": depth}))["hops"]
        assert len(hops) == min(depth, 5)
        for hop in hops:
            assert hop["entered"] == sum(d["donor_share"] for d in hop["disbursements"]) + hop["unspent"]
    hops = _ok(service.get(f"/v1/donations/{donation}", params={"depth": 5}))["hops"]
    assert [h["entered"] for h in hops] == [999, 666, 444, 296, 197]
    assert hops[4]["disbursements"] == []  # the last donation was not passed on
