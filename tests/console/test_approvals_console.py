"""Approvals before payout in the console, over HTTP on the real service: a charity's
staff register two approvers and a 2-of-2 rule on a campaign's page, propose a payout with
the usual form (it waits, it is not paid), and each approver signs in with the key the
page showed once, sees what waits for it, approves or rejects with a public reason; the
second approval pays it. An approver's session reaches no charity page, and another
charity neither sees nor acts on these proposals."""

from __future__ import annotations

import html
import re

from eth_account import Account
from eth_account.signers.local import LocalAccount
from lxml import html as lxml_html

from tests.api.checks import wait_for_mirror
from tests.console.conftest import Ledger, Staff, sign_in
from tests.console.test_self_custody import COMMAND, relay_form, signature, typed_data

KEY = re.compile(r'data-testid="key">(lk_[A-Za-z0-9_-]+)<')


def _register(staff: Staff, campaign: str, label: str) -> tuple[str, str]:
    """Register an approver on the campaign's page; (its account, its key shown once)."""
    answer = staff.post(f"/console/campaigns/{campaign}/approvers", {"label": label, "account": ""})
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert "shown once" in answer.text
    found = KEY.search(answer.text)
    assert found, answer.text
    page = lxml_html.fromstring(staff.client.get(f"/console/campaigns/{campaign}").text)
    [box] = page.xpath(f'//input[@name="approver"][following-sibling::label[1][normalize-space()="{label}"]]')
    return str(box.get("value")), found.group(1)


def _proposals(staff: Staff) -> dict[str, str]:
    """What waits on an approver's page: proposal ID -> its progress text."""
    doc = lxml_html.fromstring(staff.client.get("/console/approvals").text)
    return {
        str(item.get("data-proposal")): item.xpath('.//*[@data-testid="progress"]')[0].text_content()
        for item in doc.xpath('//*[@data-testid="waiting-proposal"]')
    }


def _propose(staff: Staff, campaign: str, amount: str, purpose: str) -> str:
    sent = staff.post(
        f"/console/campaigns/{campaign}/disbursements",
        {"amount": amount, "recipient": "County School No. 3", "purpose": purpose, "allocation": "fifo"},
    )
    assert sent.status_code == 303, sent.text
    location = sent.headers["location"]
    assert f"/console/campaigns/{campaign}?proposed=DB-" in location, location
    return location.split("proposed=")[1].split("#")[0]


def test_two_approvers_approve_and_reject_from_the_console(ledger: Ledger) -> None:
    service = ledger.service
    campaign = service.campaign(ledger.charity, ledger.key)
    service.donate(campaign, ledger.key, 100_000)
    wait_for_mirror(service)
    staff = sign_in(service, ledger.key)

    before = lxml_html.fromstring(staff.client.get(f"/console/campaigns/{campaign}").text)
    assert before.xpath('//*[@data-testid="no-rule"]')
    treasurer, treasurer_key = _register(staff, campaign, "Treasurer")
    chair, chair_key = _register(staff, campaign, "Board chair <script>alert(1)</script>")
    shown = staff.client.get(f"/console/campaigns/{campaign}").text
    assert "<script>alert(1)</script>" not in shown
    assert "Board chair &lt;script&gt;alert(1)&lt;/script&gt;" in shown

    # A threshold above the approvers ticked is refused at its field; then 2 of 2.
    too_many = staff.post(
        f"/console/campaigns/{campaign}/approval-rule",
        {"approver": treasurer, "threshold": "2", "validity": "7", "unit": "days"},
    )
    assert too_many.status_code == 422
    [threshold] = lxml_html.fromstring(too_many.text).xpath('//input[@name="threshold"]')
    assert threshold.get("aria-invalid") == "true"
    ruled = staff.client.post(
        f"/console/campaigns/{campaign}/approval-rule",
        data={
            "csrf": staff.csrf,
            "approver": [treasurer, chair],
            "threshold": "2",
            "validity": "7",
            "unit": "days",
        },
    )
    assert ruled.status_code == 303, ruled.text
    page = staff.client.get(ruled.headers["location"])
    [rule] = lxml_html.fromstring(page.text).xpath('//*[@data-testid="rule"]')
    assert (rule.get("data-threshold"), rule.get("data-approvers")) == ("2", "2")
    assert "within 168 hours" in rule.text_content()
    assert "becomes a proposal, paid only once 2 of its 2 approvers approve it" in page.text

    # Staff propose with the usual form: it waits, nothing is paid or counted.
    first = _propose(staff, campaign, "250.00", "Winter coats")
    proposed_page = staff.client.get(f"/console/campaigns/{campaign}?proposed={first}")
    assert "waiting for 2 of 2 approvals" in proposed_page.text
    assert service.get(f"/v1/campaigns/{campaign}").json()["disbursed"] == 0
    second = _propose(staff, campaign, "99.50", "Textbooks")

    # The charity's own session cannot approve: the approval pages are not its.
    assert staff.post(f"/console/proposals/{first}/approve").status_code == 404
    assert staff.client.get("/console/approvals").status_code == 404

    # The treasurer signs in, lands on its page, approves the first.
    one = sign_in(service, treasurer_key)
    landing = one.client.get("/console")
    assert landing.status_code == 303 and landing.headers["location"] == "/console/approvals"
    waiting = _proposals(one)
    assert set(waiting) == {first, second}
    assert "0 of 2 approvals" in waiting[first] and "needs 2 of 2 approvers" in waiting[first]
    listed = one.client.get("/console/approvals").text
    assert "CN¥250.00" in listed and "Winter coats" in listed and "County School No. 3" in listed
    assert listed.count('data-testid="approve"') == 2
    approved = one.post(f"/console/proposals/{first}/approve")
    assert approved.status_code == 303 and approved.headers["location"] == "/console/approvals?done=approved"
    after = one.client.get(approved.headers["location"])
    assert "Your approval is on the ledger" in after.text
    assert set(_proposals(one)) == {second}
    [decided] = lxml_html.fromstring(after.text).xpath('//*[@data-testid="decided-proposal"]')
    assert decided.get("data-proposal") == first and "You approved it" in decided.text_content()
    # Approving twice: the contract's AlreadyApproved, in words.
    again = one.post(f"/console/proposals/{first}/approve")
    assert again.status_code == 409
    assert "already approved this proposal" in again.text
    assert service.get(f"/v1/campaigns/{campaign}").json()["disbursed"] == 0

    # An approver's session reaches no charity page.
    for path in (
        f"/console/campaigns/{campaign}",
        "/console/imports",
        f"/console/disbursements/{first}",
    ):
        assert one.client.get(path).status_code == 404, path
    assert one.post(f"/console/campaigns/{campaign}/disbursements", {"amount": "1"}).status_code == 404
    assert one.post(f"/console/campaigns/{campaign}/approvers", {"label": "x"}).status_code == 404
    assert one.client.get("/console/registrar").status_code in (403, 404)

    # The chair signs in in Chinese: a rejection without a reason is refused at its field,
    # then with one; then approves the first, which pays it.
    two = sign_in(service, chair_key, "zh-CN")
    home = two.client.get("/console/approvals").text
    assert "等待我审批" in home
    empty = two.post(f"/console/proposals/{second}/reject", {"reason": "  "})
    assert empty.status_code == 422
    [reason] = lxml_html.fromstring(empty.text).xpath(
        f'//form[@action="/console/proposals/{second}/reject"]//textarea'
    )
    assert reason.get("aria-invalid") == "true"
    assert "必填" in empty.text
    too_long = two.post(f"/console/proposals/{second}/reject", {"reason": "x" * 300})
    assert too_long.status_code == 422
    rejected = two.post(f"/console/proposals/{second}/reject", {"reason": "报价单缺失 <b>"})
    assert rejected.status_code == 303, rejected.text
    assert "已驳回" in two.client.get(rejected.headers["location"]).text
    late = two.post(f"/console/proposals/{second}/approve")
    assert late.status_code == 409 and "已有结果" in late.text
    paid = two.post(f"/console/proposals/{first}/approve")
    assert paid.status_code == 303 and paid.headers["location"] == "/console/approvals?done=paid"
    assert "已支付" in two.client.get(paid.headers["location"]).text
    wait_for_mirror(service)
    assert service.get(f"/v1/campaigns/{campaign}").json()["disbursed"] == 25_000
    public = service.get(f"/disbursements/{first}").text
    assert "Approvals before payout" in public and treasurer in public and chair in public

    # The charity's page shows each proposal's outcome, with its approvers' labels.
    outcome = lxml_html.fromstring(staff.client.get(f"/console/campaigns/{campaign}").text)
    statuses = {
        p.get("data-proposal"): p.get("data-status") for p in outcome.xpath('//*[@data-testid="proposal"]')
    }
    assert statuses == {first: "executed", second: "rejected"}
    [gone] = outcome.xpath(f'//*[@data-proposal="{second}"]')
    assert "报价单缺失 <b>" in gone.text_content() and "Board chair" in gone.text_content()


def test_the_charity_withdraws_and_another_charity_cannot_touch_its_proposals(ledger: Ledger) -> None:
    service = ledger.service
    campaign = service.campaign(ledger.charity, ledger.key)
    service.donate(campaign, ledger.key, 10_000)
    wait_for_mirror(service)
    staff = sign_in(service, ledger.key)
    account, key = _register(staff, campaign, "Auditor on the board")
    ruled = staff.post(
        f"/console/campaigns/{campaign}/approval-rule",
        {"approver": account, "threshold": "1", "validity": "48", "unit": "hours"},
    )
    assert ruled.status_code == 303, ruled.text
    proposal = _propose(staff, campaign, "10", "Stationery")
    # A payout to a private person, proposed: its secret is shown now, as no slip can be
    # printed before it is paid (and the person's details never come back).
    private = staff.post(
        f"/console/campaigns/{campaign}/disbursements",
        {
            "amount": "5",
            "recipient_person": "Zhang Wei 110101199001011234",
            "purpose": "Bus fare",
            "allocation": "fifo",
        },
    )
    assert private.status_code == 201, private.text
    assert re.search(r'data-testid="recipient-secret">0x[0-9a-f]{64}<', private.text)
    assert 'data-testid="proposed"' in private.text and "110101199001011234" not in private.text

    other = sign_in(service, ledger.other_key)
    assert other.client.get(f"/console/campaigns/{campaign}").status_code == 404
    assert (
        other.post(
            f"/console/campaigns/{campaign}/proposals/{proposal}/withdraw", {"reason": "no"}
        ).status_code
        == 404
    )
    assert other.post(f"/console/campaigns/{campaign}/approvers", {"label": "Mole"}).status_code == 404
    # Another charity's approver neither sees nor approves it.
    other_campaign = service.campaign(ledger.other_charity, ledger.other_key)
    _, outsider_key = _register(other, other_campaign, "Their treasurer")
    outsider = sign_in(service, outsider_key)
    assert proposal not in _proposals(outsider)
    assert outsider.post(f"/console/proposals/{proposal}/approve").status_code == 404
    assert outsider.post(f"/console/proposals/{proposal}/reject", {"reason": "x"}).status_code == 404

    # The charity withdraws it: a reason is required, then it is rejected for good.
    path = f"/console/campaigns/{campaign}/proposals/{proposal}/withdraw"
    bare = staff.post(path, {"reason": ""})
    assert bare.status_code == 422
    [field] = lxml_html.fromstring(bare.text).xpath(f'//form[@action="{path}"]//textarea')
    assert field.get("aria-invalid") == "true"
    withdrawn = staff.post(path, {"reason": "Bought with a donated voucher instead"})
    assert withdrawn.status_code == 303, withdrawn.text
    page = staff.client.get(withdrawn.headers["location"]).text
    assert "Withdrawn: this proposal will never be paid" in page
    approver = sign_in(service, key)
    assert proposal not in _proposals(approver)  # the private one still waits
    assert approver.post(f"/console/proposals/{proposal}/approve").status_code == 409


def test_an_approver_with_its_own_key_signs_its_approval_and_the_relay_pays_it(ledger: Ledger) -> None:
    service = ledger.service
    campaign = service.campaign(ledger.charity, ledger.key)
    service.donate(campaign, ledger.key, 5_000)
    wait_for_mirror(service)
    staff = sign_in(service, ledger.key)
    own: LocalAccount = Account.create()
    registered = staff.post(
        f"/console/campaigns/{campaign}/approvers",
        {"label": "Community representative", "account": own.address},
    )
    assert registered.status_code == 201, registered.text
    assert own.address in registered.text and "sign each approval" in registered.text
    key = KEY.search(registered.text)
    assert key
    ruled = staff.post(
        f"/console/campaigns/{campaign}/approval-rule",
        {"approver": own.address, "threshold": "1", "validity": "2", "unit": "days"},
    )
    assert ruled.status_code == 303, ruled.text
    proposal = _propose(staff, campaign, "30", "Desks")

    approver = sign_in(service, key.group(1))
    assert 'data-testid="own-key"' in approver.client.get("/console/approvals").text
    prepared = approver.post(f"/console/proposals/{proposal}/approve")
    assert prepared.status_code == 200, prepared.text
    assert "Sign your approval with your own key" in prepared.text
    (command,) = COMMAND.findall(prepared.text)
    assert html.unescape(command).startswith("ledger sign --keystore approver-key.json '{")
    (typed,) = typed_data(prepared.text)
    assert service.get(f"/v1/campaigns/{campaign}").json()["disbursed"] == 0
    relayed = approver.post("/console/relay", relay_form(prepared.text, [signature(typed, own)]))
    assert relayed.status_code == 303 and relayed.headers["location"] == "/console/approvals", relayed.text
    wait_for_mirror(service)
    assert service.get(f"/v1/proposals/{proposal}").json()["status"] == "executed"
    assert service.get(f"/v1/campaigns/{campaign}").json()["disbursed"] == 3_000
