"""Approvals before payout over HTTP, on the embedded chain and on anvil: a charity names
approvers (keys the platform holds, and one that holds its own), puts a campaign under a
2-of-3 rule, and records a disbursement as it always does: it becomes a proposal that is
paid, and counts, only after two approvers other than the proposer approve it; the last
approval (here one signed with the approver's own key and relayed) executes it. A
rejected proposal can never be paid, and nobody approves twice or for another charity."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.api.service import Service, serve, settings_for
from tests.api.test_self_custody import sign_as

PROBLEM = "urn:charity-ledger:problem:"


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("anvil-postgresql", marks=[pytest.mark.anvil, pytest.mark.postgres]),
    ]
)
def node_service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    rpc_url = None if request.param == "embedded" else request.getfixturevalue("anvil").url
    if request.param.endswith("postgresql"):
        database_url = request.getfixturevalue("postgres_url")
    else:
        database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with serve(settings_for(tmp_path, rpc_url, database_url)) as running:
        yield running


def _approver(
    service: Service, charity: str, key: str, label: str, account: str | None = None
) -> dict[str, Any]:
    body = {"label": label, **({"account": account} if account else {})}
    created = service.post(f"/v1/charities/{charity}/approvers", key, json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


def _error(response: Any) -> str:
    body = response.json()
    return str(body.get("error", {}).get("name") or body["type"].removeprefix(PROBLEM))


def test_a_disbursement_under_a_rule_is_paid_only_after_two_approvals(node_service: Service) -> None:
    service = node_service
    charity, key = service.charity()
    campaign = service.campaign(charity, key)
    service.donate(campaign, key, 1_000)
    treasurer = _approver(service, charity, key, "Treasurer")
    chair = _approver(service, charity, key, "Board chair")
    own: LocalAccount = Account.create()
    supervisor = _approver(service, charity, key, "Community representative", own.address)
    assert (treasurer["held_by_platform"], supervisor["held_by_platform"]) == (True, False)
    listed = service.get(f"/v1/charities/{charity}/approvers", key).json()["items"]
    assert {a["label"] for a in listed} == {"Treasurer", "Board chair", "Community representative"}

    rule_url = f"/v1/campaigns/{campaign}/approval-rule"
    accounts = [treasurer["account"], chair["account"], supervisor["account"]]
    bad = service.client.put(
        rule_url, headers={"Authorization": f"Bearer {key}"}, json={"approvers": accounts[:1], "threshold": 2}
    )
    assert bad.status_code == 422 and "needs at least 2 approvers" in bad.text
    stranger = service.client.put(
        rule_url,
        headers={"Authorization": f"Bearer {key}"},
        json={"approvers": [Account.create().address], "threshold": 1},
    )
    assert stranger.status_code == 422 and "register them first" in stranger.text
    ruled = service.client.put(
        rule_url, headers={"Authorization": f"Bearer {key}"}, json={"approvers": accounts, "threshold": 2}
    )
    assert ruled.status_code == 201, ruled.text

    # Staff record the payout as always; it becomes a proposal and counts for nothing yet.
    proposed = service.post(
        "/v1/disbursements",
        key,
        json={"campaign_id": campaign, "amount": 600, "recipient": "CN-ORG-1", "purpose": "school-meals"},
    )
    assert proposed.status_code == 201, proposed.text
    proposal = proposed.json()["id"]
    assert proposed.json()["status"] == "proposed"
    assert proposed.json()["approval"]["threshold"] == 2 and proposed.json()["approval"]["approvers"] == 3
    assert service.get(f"/v1/campaigns/{campaign}").json()["disbursed"] == 0
    assert service.get(f"/v1/disbursements/{proposal}").status_code == 404

    waiting = service.get("/v1/proposals", treasurer["key"], params={"waiting_for": "me"}).json()["items"]
    assert [p["id"] for p in waiting] == [proposal] and waiting[0]["status"] == "pending"

    # The charity's own key cannot approve; the treasurer approves once, not twice.
    refused = service.post(f"/v1/proposals/{proposal}/approve", key)
    assert refused.status_code == 403
    first = service.post(f"/v1/proposals/{proposal}/approve", treasurer["key"])
    assert first.status_code == 201, first.text
    assert "execution" not in first.json()
    again = service.post(f"/v1/proposals/{proposal}/approve", treasurer["key"])
    assert again.status_code == 409 and _error(again) == "AlreadyApproved"
    assert service.get("/v1/proposals", treasurer["key"], params={"waiting_for": "me"}).json()["items"] == []

    # The supervisor holds its own key: it signs the approval, the relay carries it, and
    # as the second approval it executes the proposal.
    plain = service.post(f"/v1/proposals/{proposal}/approve", supervisor["key"])
    assert plain.status_code == 409 and _error(plain) == "signature-required"
    prepared = service.post(
        f"/v1/proposals/{proposal}/approve", supervisor["key"], params={"mode": "prepare"}
    )
    assert prepared.status_code == 200, prepared.text
    signed = [sign_as(call["typed_data"], own) for call in prepared.json()["signed_calls"]]
    relayed = service.post("/v1/relay", supervisor["key"], json={"signed_calls": signed})
    assert relayed.status_code == 201, relayed.text
    assert relayed.json()["executions"][0]["status"] == "mined"

    shown = service.get(f"/v1/proposals/{proposal}").json()
    assert shown["status"] == "executed" and shown["approvals"] == 2
    assert [(v["voter"], v["vote"]) for v in shown["votes"]] == [
        (treasurer["account"], "approve"),
        (supervisor["account"], "approve"),
    ]
    assert all(v["label"] is None for v in shown["votes"])  # the charity's labels are not public
    labelled = service.get(f"/v1/campaigns/{campaign}/proposals", key).json()["items"][0]["votes"]
    assert [v["label"] for v in labelled] == ["Treasurer", "Community representative"]
    paid = service.get(f"/v1/disbursements/{proposal}")
    assert paid.status_code == 200 and paid.json()["amount"] == 600
    assert service.get(f"/v1/campaigns/{campaign}").json()["disbursed"] == 600

    # A second proposal, rejected: never paid, not approvable after.
    second = service.post(
        "/v1/disbursements",
        key,
        json={"campaign_id": campaign, "amount": 300, "recipient": "CN-ORG-2", "purpose": "uniforms"},
    ).json()["id"]
    service.post(f"/v1/proposals/{second}/approve", treasurer["key"])
    rejected = service.post(
        f"/v1/proposals/{second}/reject", chair["key"], json={"reason": "no quote attached"}
    )
    assert rejected.status_code == 201, rejected.text
    late = service.post(f"/v1/proposals/{second}/approve", chair["key"])
    assert late.status_code == 409 and _error(late) == "ProposalNotPending"
    forced = service.post(f"/v1/proposals/{second}/execute", key)
    assert forced.status_code == 409 and _error(forced) == "ProposalNotPending"
    assert service.get(f"/v1/proposals/{second}").json()["status"] == "rejected"
    assert service.get(f"/v1/campaigns/{campaign}").json()["disbursed"] == 600

    # Another charity's approver is told the proposal does not exist.
    other, other_key = service.charity("Other Trust")
    outsider = _approver(service, other, other_key, "Their treasurer")
    third = service.post(
        "/v1/disbursements",
        key,
        json={"campaign_id": campaign, "amount": 50, "recipient": "CN-ORG-3", "purpose": "books"},
    ).json()["id"]
    assert service.post(f"/v1/proposals/{third}/approve", outsider["key"]).status_code == 404
    assert (
        service.post(f"/v1/charities/{charity}/approvers", other_key, json={"label": "x"}).status_code == 404
    )

    # The pages: the campaign shows the proposals not paid as such (never in its totals),
    # the paid one says who proposed and approved it, under which rule; in both languages.
    page = service.get(f"/campaigns/{campaign}").text
    assert f'data-proposal="{second}" data-status="rejected"' in page
    assert "Rejected by" in page and "no quote attached" in page
    assert f'data-proposal="{proposal}"' not in page  # paid: a disbursement now
    zh = service.get(f"/campaigns/{campaign}", headers={"Accept-Language": "zh-CN"}).text
    assert "已驳回，永不支付" in zh and "待审批的支出提案" in zh  # noqa: RUF001
    paid_page = service.get(f"/disbursements/{proposal}").text
    assert "Approvals before payout" in paid_page and "needs" not in paid_page
    assert "2 of 3 approvers" in paid_page
    assert treasurer["account"] in paid_page and supervisor["account"] in paid_page
    assert (
        "支付前审批" in service.get(f"/disbursements/{proposal}", headers={"Accept-Language": "zh-CN"}).text
    )

    # The audit trail has every step, each with who took it.
    trail = service.get("/v1/audit/trail", key, params={"campaign_id": campaign}).json()["items"]
    steps = [(item.get("event") or item.get("name"), item.get("sender")) for item in trail]
    names = {name for name, _ in steps}
    assert {
        "ApprovalRuleSet",
        "ApproverNamed",
        "DisbursementProposed",
        "DisbursementApproved",
        "DisbursementRejected",
        "ProposalExecuted",
        "DisbursementRecorded",
    } <= names, names
    assert ("DisbursementRejected", chair["account"]) in steps
    assert ("DisbursementApproved", supervisor["account"]) in steps
