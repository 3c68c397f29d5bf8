"""Disclosure deadlines in the console, over HTTP on the real service and chain: the
dashboard lists an overdue obligation first; a report uploaded on the campaign's page has
its SHA-256 anchored on chain (the file is not kept); recording a disposal of remaining
funds meets that obligation; bad input is refused at its field and changes nothing;
another charity's campaign is not found; a form without its CSRF token is refused."""

from __future__ import annotations

import hashlib

from eth_account import Account
from eth_account.signers.local import LocalAccount
from lxml import html as lxml_html

from ledger_api.core import ids
from tests.api.checks import wait_for_mirror
from tests.api.service import ADMIN_KEY
from tests.console.conftest import Ledger, Staff, sign_in
from tests.console.test_self_custody import relay_form, signature, typed_data

REPORT = "Quarterly report: 120 children fed, CN¥9,000.00 spent. 季度报告".encode()


def _obligations(staff: Staff, campaign: str) -> dict[str, str]:
    page = lxml_html.fromstring(staff.client.get(f"/console/campaigns/{campaign}").text)
    return {
        str(row.get("data-rule")): str(row.get("data-status"))
        for row in page.xpath('//*[@data-testid="obligation"]')
    }


def _close(staff: Staff, campaign: str) -> None:
    closed = staff.post(f"/console/campaigns/{campaign}/close")
    assert closed.status_code == 303, closed.text


def _field_error(answer_text: str, name: str) -> str:
    page = lxml_html.fromstring(answer_text)
    [field] = page.xpath(f'//*[@name="{name}"][@aria-invalid="true"]')
    [error] = page.xpath(f'//*[@id="{field.get("id")}-error"]')
    return str(error.text_content())


def test_an_overdue_final_report_is_listed_first_and_a_report_upload_anchors_its_hash(ledger: Ledger) -> None:
    service = ledger.service
    staff = sign_in(service, ledger.key)
    home = lxml_html.fromstring(staff.client.get("/console").text)
    assert home.xpath('//*[@data-testid="no-deadlines"]')  # nothing yet: said plainly

    campaign = service.campaign(ledger.charity, ledger.key)
    service.donate(campaign, ledger.key, 50_000)
    ended = staff.post(f"/console/campaigns/{campaign}/end-date", {"ends_on": "2025-01-31", "reason": ""})
    assert ended.status_code == 303, ended.text
    _close(staff, campaign)
    wait_for_mirror(service)

    home = lxml_html.fromstring(staff.client.get("/console").text)
    [item] = home.xpath('//*[@data-testid="deadline"]')
    assert item.get("data-status") == "overdue"
    assert item.get("data-campaign") == campaign
    text = " ".join(item.text_content().split())
    assert "A full report within three months of the end" in text
    assert "due 2025-04-30" in text and "days late" in text
    [link] = item.xpath(".//a")
    assert link.get("href") == f"/console/campaigns/{campaign}#report-heading"
    zh = sign_in(service, ledger.key, "zh-CN")
    zh_home = zh.client.get("/console").text
    assert "结束后三个月内全面公开" in zh_home and "已逾期" in zh_home
    assert _obligations(staff, campaign)["final-report"] == "overdue"

    # A changed end date needs its reason, said at the field; nothing changes.
    no_reason = staff.post(f"/console/campaigns/{campaign}/end-date", {"ends_on": "2025-02-28"})
    assert no_reason.status_code == 422
    assert "say why it changes" in _field_error(no_reason.text, "reason")

    # A date the ledger cannot take is said at its field.
    too_early = staff.post(
        f"/console/campaigns/{campaign}/end-date", {"ends_on": "1999-12-31", "reason": "typo"}
    )
    assert too_early.status_code == 422
    assert "between 2000-01-01 and 2199-12-31" in _field_error(too_early.text, "ends_on")
    not_a_date = staff.post(
        f"/console/campaigns/{campaign}/end-date", {"ends_on": "31/01/2025", "reason": "x"}
    )
    assert "YYYY-MM-DD" in _field_error(not_a_date.text, "ends_on")

    # The report file is uploaded; only its SHA-256 goes on chain.
    sha = hashlib.sha256(REPORT).hexdigest()
    sent = staff.post(
        f"/console/campaigns/{campaign}/reports",
        {"kind": "final", "period_start": "2025-01-01", "period_end": "2025-01-31"},
        files={"file": ("report.txt", REPORT, "text/plain")},
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"].endswith("?reported=1#disclosure-heading")
    wait_for_mirror(service)
    logs = service.contract.events.ReportPublished.get_logs(from_block=0)
    [log] = [entry for entry in logs if entry.args.campaignId == ids.to_bytes32(campaign)]
    assert log.args.documentHash.hex().removeprefix("0x") == sha
    public = service.get(f"/v1/campaigns/{campaign}/disclosures").json()
    [final] = [o for o in public["obligations"] if o["rule"] == "final-report"]
    assert final["status"] == "met_late"
    report_id = ids.from_bytes32(log.args.reportId)
    assert final["satisfied_by"]["id"] == report_id
    page = lxml_html.fromstring(staff.client.get(f"/console/campaigns/{campaign}").text)
    [listed] = page.xpath('//*[@data-testid="reports"]/li')
    assert listed.get("data-sha256") == sha
    assert "2025-01-01 – 2025-01-31" in listed.text_content()  # noqa: RUF001
    assert not lxml_html.fromstring(staff.client.get("/console").text).xpath('//*[@data-testid="deadline"]')


def test_a_disposal_through_the_form_meets_the_remaining_funds_obligation(ledger: Ledger) -> None:
    service = ledger.service
    staff = sign_in(service, ledger.key)
    campaign = service.campaign(ledger.charity, ledger.key)
    other = service.campaign(ledger.charity, ledger.key)
    service.donate(campaign, ledger.key, 12_345)
    wait_for_mirror(service)
    before = lxml_html.fromstring(staff.client.get(f"/console/campaigns/{campaign}").text)
    assert before.xpath('//*[@data-testid="disposal-open"]')  # open: no disposal form yet
    _close(staff, campaign)
    wait_for_mirror(service)
    page = lxml_html.fromstring(staff.client.get(f"/console/campaigns/{campaign}").text)
    [amount] = page.xpath('//form[@data-testid="disposal-form"]//input[@name="amount"]')
    assert amount.get("value") == "123.45"  # prefilled with what the campaign holds
    targets = page.xpath('//form[@data-testid="disposal-form"]//select[@name="target"]/option/@value')
    assert other in targets and campaign not in targets
    assert _obligations(staff, campaign)["remaining-funds"] == "due"

    # Bad input: kept under a rule with no rule, a move to a campaign not the charity's.
    no_rule = staff.post(
        f"/console/campaigns/{campaign}/disposals",
        {"disposition": "kept_under_rule", "amount": "123.45", "rule": "  "},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert no_rule.status_code == 422
    assert _field_error(no_rule.text, "rule") == "Fill in this field."
    foreign = service.campaign(ledger.other_charity, ledger.other_key)
    moved = staff.post(
        f"/console/campaigns/{campaign}/disposals",
        {"disposition": "moved_to_campaign", "amount": "123.45", "target": foreign},
    )
    assert moved.status_code == 422
    assert "other campaigns in the same currency" in _field_error(moved.text, "target")
    wait_for_mirror(service)
    assert not service.contract.events.RemainingFundsDisposed.get_logs(from_block=0)
    assert _obligations(staff, campaign)["remaining-funds"] == "due"

    decision = b"Board decision 2026-11: return the rest to donors"
    done = staff.post(
        f"/console/campaigns/{campaign}/disposals",
        {"disposition": "returned_to_donors", "amount": "123.45", "target": other, "rule": "ignored"},
        files={"file": ("decision.pdf", decision, "application/pdf")},
    )
    assert done.status_code == 303, done.text
    wait_for_mirror(service)
    [log] = service.contract.events.RemainingFundsDisposed.get_logs(from_block=0)
    assert log.args.amount == 12_345 and log.args.disposition == 0
    assert log.args.documentHash.hex().removeprefix("0x") == hashlib.sha256(decision).hexdigest()
    assert _obligations(staff, campaign)["remaining-funds"] == "met"

    # A report whose period ends before it starts is refused at its field; nothing is anchored.
    reversed_period = staff.post(
        f"/console/campaigns/{campaign}/reports",
        {"kind": "periodic", "period_start": "2026-03-31", "period_end": "2026-01-01"},
        files={"file": ("r.txt", b"report", "text/plain")},
    )
    assert reversed_period.status_code == 422
    assert _field_error(reversed_period.text, "period_end") == "The period ends before it starts."
    wait_for_mirror(service)
    assert not [
        log
        for log in service.contract.events.ReportPublished.get_logs(from_block=0)
        if log.args.campaignId == ids.to_bytes32(campaign)
    ]


def test_a_disposal_on_an_open_campaign_is_explained_in_both_languages(ledger: Ledger) -> None:
    service = ledger.service
    campaign = service.campaign(ledger.charity, ledger.key)
    for lang, said in (("en", "close it first"), ("zh-CN", "请先关闭项目")):
        staff = sign_in(service, ledger.key, lang)
        answer = staff.post(
            f"/console/campaigns/{campaign}/disposals",
            {"disposition": "returned_to_donors", "amount": "0"},
        )
        assert answer.status_code == 409, answer.text
        [refusal] = lxml_html.fromstring(answer.text).xpath('//*[@data-testid="refusal"]')
        assert said in refusal.text_content()


def test_another_charitys_campaign_is_not_found_and_csrf_is_required(ledger: Ledger) -> None:
    service = ledger.service
    staff = sign_in(service, ledger.key)
    foreign = service.campaign(ledger.other_charity, ledger.other_key)
    for path, data in (
        ("end-date", {"ends_on": "2026-01-31"}),
        ("reports", {"kind": "final", "period_start": "2026-01-01", "period_end": "2026-01-31"}),
        ("disposals", {"disposition": "returned_to_donors", "amount": "0"}),
    ):
        files = {} if path == "end-date" else {"files": {"file": ("r.txt", b"x", "text/plain")}}
        answer = staff.post(f"/console/campaigns/{foreign}/{path}", data, **files)
        assert answer.status_code == 404, (path, answer.text)
    mine = service.campaign(ledger.charity, ledger.key)
    no_csrf = staff.client.post(f"/console/campaigns/{mine}/end-date", data={"ends_on": "2026-01-31"})
    assert no_csrf.status_code == 403
    no_csrf_upload = staff.client.post(
        f"/console/campaigns/{mine}/reports",
        data={"kind": "final", "period_start": "2026-01-01", "period_end": "2026-01-31"},
        files={"file": ("r.txt", b"x", "text/plain")},
    )
    assert no_csrf_upload.status_code == 403
    wait_for_mirror(service)
    public = service.get(f"/v1/campaigns/{mine}/disclosures").json()
    assert public["ends_on"] is None
    assert not [
        log
        for log in service.contract.events.ReportPublished.get_logs(from_block=0)
        if log.args.campaignId == ids.to_bytes32(mine)
    ]


def test_a_self_custody_charity_signs_its_report_on_the_sign_page(ledger: Ledger) -> None:
    """The report form prepares the call (nothing sent); the charity's own signature is
    relayed, and the file's SHA-256 is on chain."""
    service = ledger.service
    account: LocalAccount = Account.create()
    created = service.post(
        "/v1/charities",
        ADMIN_KEY,
        json={"name": "Hill Library", "custody": "self", "operator": account.address},
    )
    assert created.status_code == 201, created.text
    key = service.post("/v1/keys", ADMIN_KEY, json={"role": "charity", "charity_id": created.json()["id"]})
    staff = sign_in(service, key.json()["key"])
    prepared = staff.post("/console/campaigns", {"name": "Reading room", "currency": "CNY", "goal": "100"})
    (typed,) = typed_data(prepared.text)
    relayed = staff.post("/console/relay", relay_form(prepared.text, [signature(typed, account)]))
    assert relayed.status_code == 303, relayed.text
    campaign = service.get("/v1/campaigns?limit=200").json()["items"]
    (mine,) = [c["id"] for c in campaign if c["name"] == "Reading room"]

    document = b"Reading room, first quarter"
    sign_page = staff.post(
        f"/console/campaigns/{mine}/reports",
        {"kind": "periodic", "period_start": "2026-01-01", "period_end": "2026-03-31"},
        files={"file": ("q1.pdf", document, "application/pdf")},
    )
    assert sign_page.status_code == 200, sign_page.text
    (typed,) = typed_data(sign_page.text)
    assert typed["message"]["operator"] == account.address  # type: ignore[index]
    wait_for_mirror(service)
    assert not [
        log
        for log in service.contract.events.ReportPublished.get_logs(from_block=0)
        if log.args.campaignId == ids.to_bytes32(mine)
    ]
    relayed = staff.post("/console/relay", relay_form(sign_page.text, [signature(typed, account)]))
    assert relayed.status_code == 303, relayed.text
    wait_for_mirror(service)
    [log] = [
        log
        for log in service.contract.events.ReportPublished.get_logs(from_block=0)
        if log.args.campaignId == ids.to_bytes32(mine)
    ]
    assert log.args.documentHash == hashlib.sha256(document).digest()
