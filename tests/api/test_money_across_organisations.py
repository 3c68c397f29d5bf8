"""Issue 16's whole story over HTTP, as a donor lives it: a donor gives to a foundation,
which grants to a county education bureau, whose campaign pays out only with two
approvals, which grants to a school, which pays a registered rice supplier, which
confirms receipt with its own key. The donor's trace three organisations down shows, at
every hop, their exact integer share of each payment, who proposed and approved the
bureau's payout, the school's evidence and the supplier's confirmation; the donation page
shows the same in both languages, and `ledger verify --depth 3` rebuilds all of it from
the chain, then names each lie an intruder writes into the mirror. On the embedded chain
and on anvil."""

from __future__ import annotations

import hashlib
import itertools
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import delete, update

from indexer import models as m
from ledger_api.core import ids
from tests.api.checks import wait_for_mirror
from tests.api.service import ADMIN_KEY, Service, serve, settings_for
from tests.api.test_approvals import _approver
from tests.api.test_grants import _disburse, _ok, _record_grant
from tests.api.test_recipients import confirm
from tests.support.recipients import USCC

LEDGER = Path(sys.executable).parent / "ledger"
SUPPLIER_KEY = Account.from_key(b"\x47" * 32)  # the supplier's own key, on its own computer


@pytest.fixture(params=["eth-tester", pytest.param("anvil", marks=pytest.mark.anvil)])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    rpc_url = request.getfixturevalue("anvil").url if request.param == "anvil" else None
    with serve(settings_for(tmp_path, rpc_url, f"sqlite:///{tmp_path / 'ledger.db'}")) as running:
        yield running


def test_a_foundation_donor_follows_the_money_three_organisations_down(service: Service) -> None:
    foundation, f_key = service.charity("Foundation")
    bureau, b_key = service.charity("County Education Bureau")
    school, s_key = service.charity("Huining No. 2 School")
    cf, cb, cs = (service.campaign(c, k) for c, k in ((foundation, f_key), (bureau, b_key), (school, s_key)))

    # The bureau's campaign pays out only with two approvals, never the proposer's.
    treasurer = _approver(service, bureau, b_key, "Treasurer")
    supervisor = _approver(service, bureau, b_key, "Community representative")
    ruled = service.client.put(
        f"/v1/campaigns/{cb}/approval-rule",
        headers={"Authorization": f"Bearer {b_key}"},
        json={"approvers": [treasurer["account"], supervisor["account"]], "threshold": 2},
    )
    assert ruled.status_code == 201, ruled.text
    # The supplier is a registered organisation with its public code and its own key.
    supplier_org = _ok(
        service.post(
            "/v1/recipients",
            ADMIN_KEY,
            json={"identifier": USCC, "name": "Huining Rice Co-operative", "account": SUPPLIER_KEY.address},
        )
    )

    donor = service.donate(cf, f_key, 1000, donor="foundation donor")["id"]
    others = [service.donate(cf, f_key, amount)["id"] for amount in (700, 333)]
    g1 = _ok(
        _disburse(
            service, f_key, cf, [(donor, 1000), (others[0], 700), (others[1], 300)], recipient_campaign_id=cb
        )
    )
    parts = [_ok(_record_grant(service, b_key, cb, g1["id"], amount))["id"] for amount in (1201, 799)]
    local = service.donate(cb, b_key, 500)["id"]
    wait_for_mirror(service)

    # The bureau's grant to the school is a proposal until both approvers approve.
    proposed = _ok(
        _disburse(
            service, b_key, cb, [(parts[0], 900), (parts[1], 799), (local, 301)], recipient_campaign_id=cs
        )
    )
    assert proposed["status"] == "proposed"
    g2 = proposed["id"]
    assert service.get(f"/v1/disbursements/{g2}").status_code == 404  # nothing paid yet
    _ok(service.post(f"/v1/proposals/{g2}/approve", treasurer["key"]))
    last = _ok(service.post(f"/v1/proposals/{g2}/approve", supervisor["key"]))
    assert last["execution"]["status"] == "mined", last
    wait_for_mirror(service)
    assert _ok(service.get(f"/v1/disbursements/{g2}"))["amount"] == 2000

    school_in = [_ok(_record_grant(service, s_key, cs, g2, amount))["id"] for amount in (700, 650, 650)]
    wait_for_mirror(service)
    paid = _ok(
        _disburse(
            service,
            s_key,
            cs,
            [(school_in[0], 700), (school_in[1], 650), (school_in[2], 300)],
            recipient="Huining Rice Co-operative",
            recipient_org_id=supplier_org["id"],
        )
    )
    invoice = b"%PDF-1.4\n% rice, March: 1,650.00\n%%EOF\n"
    uploaded = service.post(
        f"/v1/disbursements/{paid['id']}/evidence",
        s_key,
        files={"files": ("invoice.pdf", invoice, "application/pdf")},
    )
    assert uploaded.status_code in (200, 201, 202), uploaded.text
    wait_for_mirror(service)
    confirmed = confirm(service, SUPPLIER_KEY, paid["id"], 1650, "received CNY 16.50 for rice, March")
    assert confirmed.status_code in (201, 202), confirmed.text
    wait_for_mirror(service)

    trace = _ok(service.get(f"/v1/donations/{donor}", params={"depth": 3}))
    hops = trace["hops"]
    assert [h["depth"] for h in hops] == [1, 2, 3]
    # Exact integer shares, adding up at every hop (largest remainder).
    assert [{d["id"]: d["donor_share"] for d in h["disbursements"]} for h in hops] == [
        {g1["id"]: 1000},
        {g2: 849},
        {paid["id"]: 700},
    ]
    for hop in hops:
        assert hop["entered"] == sum(d["donor_share"] for d in hop["donations"])
        assert hop["entered"] == sum(d["donor_share"] for d in hop["disbursements"]) + hop["unspent"]
    for before, after in itertools.pairwise(hops):
        granted = sum(d["donor_share"] for d in before["disbursements"] if d["recipient_campaign"])
        assert after["entered"] + after["not_recorded"] == granted

    # Who proposed and approved the bureau's payout, and when.
    bureau_payout = hops[1]["disbursements"][0]
    approval = bureau_payout["approval"]
    assert approval["threshold"] == 2
    assert [v["account"] for v in approval["approvals"]] == [treasurer["account"], supervisor["account"]]
    assert approval["proposer"] not in {treasurer["account"], supervisor["account"]}
    assert approval["proof"]["tx_hash"] and all(v["at"] for v in approval["approvals"])
    assert hops[0]["disbursements"][0]["approval"] is None  # the foundation needs none

    # The school's payment: its evidence, and the supplier's confirmation with its own key.
    school_payout = hops[2]["disbursements"][0]
    assert school_payout["charity"]["name"] == "Huining No. 2 School"
    assert [e["sha256"] for e in school_payout["evidence"]] == [hashlib.sha256(invoice).hexdigest()]
    receipt = school_payout["receipt"]
    assert (receipt["state"], receipt["confirmed"]) == ("full", 1650)
    assert receipt["recipient"]["identifier"] == USCC
    assert receipt["confirmations"][0]["account"] == SUPPLIER_KEY.address
    assert receipt["confirmations"][0]["statement"] == "received CNY 16.50 for rice, March"

    # Each grant's own donor-side record says the same as the hop that reached it: the
    # bureau's grant-in donation shows its payout's approvals, the school's shows the
    # supplier's confirmation and the invoice.
    own = _ok(service.get(f"/v1/donations/{parts[0]}"))["allocations"][0]["disbursement"]
    assert own["id"] == g2 and own["approval"] == approval and own["receipt"] is None
    own = _ok(service.get(f"/v1/donations/{school_in[0]}"))["allocations"][0]["disbursement"]
    assert own["id"] == paid["id"] and own["receipt"] == receipt and own["approval"] is None
    assert own["evidence"] == school_payout["evidence"]

    # The page says the same, in both languages, without JavaScript.
    for language, approved, confirmed_by in (
        ("en", "Approved by", "Receipt confirmed by Huining Rice Co-operative"),
        ("zh-CN", "批准", "收款方 Huining Rice Co-operative"),
    ):
        page = service.get(f"/donations/{donor}", params={"depth": 3}, headers={"Accept-Language": language})
        assert page.status_code == 200
        html = page.text
        assert html.count('data-testid="hop"') == 3
        assert 'data-testid="hop-approval"' in html and approved in html
        assert treasurer["account"] in html and supervisor["account"] in html
        assert 'data-testid="hop-receipt" data-state="full"' in html and confirmed_by in html
        assert 'data-testid="hop-evidence"' in html and "invoice.pdf" in html

    # The donor checks all of it against the chain with the verifier, trusting nothing the
    # service computed: every hop rebuilt from the chain, every share recomputed.
    def verify() -> subprocess.CompletedProcess[str]:
        rpc = service.runtime.settings.rpc_url or f"{service.base}/rpc"
        command = [str(LEDGER), "verify", donor, "--depth", "3", "--api", service.base, "--rpc-url", rpc]
        return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)

    def mismatches(run: subprocess.CompletedProcess[str]) -> list[str]:
        assert run.returncode == 1, run.stdout + run.stderr
        return [line for line in run.stdout.splitlines() if line.startswith("MISMATCH")]

    checked = verify()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    said = checked.stdout
    for claim in (
        r"ok +hop 3 payments \(amount, donor's share, granted to\): \"1 as on chain\"",
        r"ok +hop 2 unspent \(recomputed from the chain\): \d+",
        rf"ok +hop 2 payment {g2} approval rule: \"executed: 2 distinct approvals of 2, none the proposer",
        rf"ok +hop 2 payment {g2} approvals complete",
        rf"ok +hop 3 payment {paid['id']} confirmation 1 signed by",
        rf"ok +hop 3 payment {paid['id']} confirmations complete",
        rf"ok +hop 3 payment {paid['id']} evidence {hashlib.sha256(invoice).hexdigest()} document SHA-256",
        rf"ok +hop 3 payment {paid['id']} recipient identifier",
    ):
        assert re.search(claim, said, re.MULTILINE), (claim, said)

    # An intruder with the database rewrites the mirror three ways; the verifier names each.
    engine = service.runtime.engine
    with engine.begin() as connection:  # the school's grant donations, their sum kept
        for donation_id, amount in ((school_in[0], 800), (school_in[1], 550)):
            connection.execute(
                update(m.GrantDonation)
                .where(m.GrantDonation.donation_id == ids.to_hex(donation_id))
                .values(amount=amount)
            )
    assert any("hop 3" in line and "donor's share" in line for line in mismatches(verify()))
    with engine.begin() as connection:  # one of the bureau payout's two approvals hidden
        connection.execute(delete(m.ProposalVote).where(m.ProposalVote.voter == supervisor["account"]))
    lines = mismatches(verify())
    assert any(f"payment {g2} approvals complete" in line for line in lines), lines
    assert any(f"payment {g2} approval rule" in line for line in lines), lines
    with engine.begin() as connection:  # the supplier's statement reworded
        connection.execute(update(m.ReceiptConfirmation).values(statement="received CNY 6.50 for rice"))
    assert any(f"payment {paid['id']} confirmation 1 statement" in line for line in mismatches(verify()))
