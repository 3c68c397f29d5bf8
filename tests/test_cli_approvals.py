"""Approvals from a terminal, against the real service on the embedded chain: the charity
adds approvers and sets a campaign's rule; a platform-held approver approves with its API
key alone, one holding its own key signs its approval on its own machine (`--keystore`);
the last approval pays the proposal; `ledger proposals list` shows where each stands."""

from __future__ import annotations

import json
from pathlib import Path

from tests.api.service import Service
from tests.test_cli_signing import _ledger, embedded  # noqa: F401 (the fixture)


def test_approvers_vote_from_the_terminal_and_the_last_approval_pays(
    embedded: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    service = embedded
    api = ["--api", service.base]
    charity, key = service.charity()
    campaign = service.campaign(charity, key)
    service.donate(campaign, key, 1_000)
    added = _ledger("add-approver", "--charity-id", charity, "--label", "Treasurer", "--key", key, *api)
    assert added.returncode == 0, added.stderr
    treasurer = json.loads(added.stdout)
    key_file = tmp_path / "supervisor.json"
    made = _ledger("keys", "new-charity-key", "--out", str(key_file))
    assert made.returncode == 0, made.stderr
    own = made.stdout.decode().strip()
    added = _ledger(
        "add-approver", "--charity-id", charity, "--label", "Supervisor", "--account", own, "--key", key, *api
    )
    assert added.returncode == 0, added.stderr
    supervisor = json.loads(added.stdout)
    ruled = _ledger(
        "approval-rule",
        "--campaign-id",
        campaign,
        "--approver",
        treasurer["account"],
        "--approver",
        own,
        "--threshold",
        "2",
        "--key",
        key,
        *api,
    )
    assert ruled.returncode == 0, ruled.stderr
    proposed = service.post(
        "/v1/disbursements",
        key,
        json={"campaign_id": campaign, "amount": 400, "recipient": "CN-ORG-1", "purpose": "books"},
    ).json()
    assert proposed["status"] == "proposed"
    proposal = proposed["id"]

    waiting = _ledger("proposals", "list", "--waiting", "--key", treasurer["key"], *api)
    assert waiting.returncode == 0 and proposal in waiting.stdout.decode()
    first = _ledger("proposals", "approve", proposal, "--key", treasurer["key"], *api)
    assert first.returncode == 0, first.stderr
    # Signed on the supervisor's machine: the service never sees its key.
    second = _ledger(
        "proposals", "approve", proposal, "--keystore", str(key_file), "--key", supervisor["key"], *api
    )
    assert second.returncode == 0, second.stderr
    relayed = json.loads(second.stdout)["relayed"]
    assert relayed["executions"][0]["status"] == "mined"
    assert own not in service.runtime.keystore.addresses()
    listed = _ledger("proposals", "list", "--campaign-id", campaign, *api)
    assert listed.returncode == 0 and "executed" in listed.stdout.decode()
    assert service.get(f"/v1/campaigns/{campaign}").json()["disbursed"] == 400
    again = _ledger("proposals", "approve", proposal, "--key", treasurer["key"], *api)
    assert again.returncode != 0 and "ProposalNotPending" in again.stderr.decode()
