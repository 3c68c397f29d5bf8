"""The disclosure calendar as a regulator asks it, through the real service on the embedded
chain, whose clock the test moves (the chain is the service's own, not shared): what the
issue requires, with the dates counted in the rule set's zone (Asia/Shanghai)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from web3 import Web3

from ledger_api.chain.abi import contract_error_of, encode
from ledger_api.core import ids
from ledger_api.transactions.service import Step
from tests.api.service import ADMIN_KEY, Service

SHANGHAI = ZoneInfo("Asia/Shanghai")
DOCUMENT = "ab" * 32


def travel(w3: Web3, when: datetime) -> None:
    """Move the service's own embedded chain to `when` (only ever forward) and mine there."""
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    tester.time_travel(int(when.timestamp()))
    tester.mine_blocks(1)


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=SHANGHAI)


def disclosure(service: Service, key: str, as_of: str, **scope: str) -> dict[str, Any]:
    answer = service.get("/v1/audit/disclosure", key, params={"as_of": as_of, **scope})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def obligations(report: dict[str, Any], campaign_id: str, rule: str) -> list[dict[str, Any]]:
    (campaign,) = [c for c in report["campaigns"] if c["campaign_id"] == campaign_id]
    return [o for o in campaign["obligations"] if o["rule"] == rule]


@pytest.fixture
def auditor(embedded_service: Service) -> str:
    made = embedded_service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"})
    assert made.status_code == 201, made.text
    return str(made.json()["key"])


def test_late_reports_and_a_missing_disposal_are_found_on_the_right_days(
    embedded_service: Service, auditor: str
) -> None:
    service, w3 = embedded_service, embedded_service.runtime.w3
    travel(w3, at("2027-01-05"))
    charity, key = service.charity()
    seven_months = service.campaign(charity, key)
    ended = service.campaign(charity, key)
    service.donate(ended, key, 50_000)
    for campaign, ends_on in ((seven_months, "2027-08-05"), (ended, "2027-01-31")):
        made = service.post(f"/v1/campaigns/{campaign}/end-date", key, json={"ends_on": ends_on})
        assert made.status_code == 201, made.text

    # Day 92 of a seven-month campaign with no report: the quarterly disclosure due on
    # 5 April (three calendar months after 5 January) is overdue.
    day92 = disclosure(service, auditor, "2027-04-07")
    first, upcoming = obligations(day92, seven_months, "periodic-report")
    assert (first["due_on"], first["status"], first["days_late"]) == ("2027-04-05", "overdue", 2)
    assert (upcoming["due_on"], upcoming["status"]) == ("2027-07-05", "due")  # and no third: it ends 5 August
    assert first["satisfied_by"] is None
    assert "至少每三个月" in first["cites"]["text"] and "民政部令第81号" in first["cites"]["document"]
    assert seven_months in day92["summary"]["late_campaigns"]

    # Closed at its end with funds left and no disposal record: due three months after
    # its end (30 April), overdue 90 days after it (1 May), with the final report.
    travel(w3, at("2027-01-31"))
    assert service.post(f"/v1/campaigns/{ended}/close", key).status_code == 201
    after90 = disclosure(service, auditor, "2027-05-01", campaign_id=ended)
    (disposal,) = obligations(after90, ended, "remaining-funds")
    assert (disposal["due_on"], disposal["status"]) == ("2027-04-30", "overdue")
    (final,) = obligations(after90, ended, "final-report")
    assert final["status"] == "overdue"
    assert after90["campaigns"][0]["remaining"] == 50_000
    assert after90["summary"]["late_campaigns"] == [ended]
    assert disclosure(service, auditor, "2027-04-30", campaign_id=ended)["campaigns"][0]["worst"] == "due"

    # A report on day 95 meets the first quarter late; the second quarter (due 5 July)
    # needs a disclosure of its own.
    travel(w3, at("2027-04-10"))
    report = {
        "kind": "periodic",
        "period_start": "2027-01-05",
        "period_end": "2027-04-04",
        "document_sha256": DOCUMENT,
    }
    made = service.post(f"/v1/campaigns/{seven_months}/reports", key, json=report)
    assert made.status_code == 201, made.text
    day95 = disclosure(service, auditor, "2027-04-10")
    first, second = obligations(day95, seven_months, "periodic-report")
    assert (first["status"], first["days_late"], first["satisfied_by"]["id"]) == (
        "met_late",
        5,
        made.json()["id"],
    )
    assert (second["due_on"], second["status"]) == ("2027-07-05", "due")
    # The past does not change: as of day 92 it was overdue, and still reads so.
    assert obligations(disclosure(service, auditor, "2027-04-07"), seven_months, "periodic-report")[0][
        "status"
    ] == ("overdue")

    # The campaign's page says the same to anyone, without script, in the reader's language.
    page = service.client.get(f"/campaigns/{seven_months}", params={"lang": "zh-CN"}).text
    assert "依据慈善组织信息公开办法（民政部令第81号）" in page and "{'en'" not in page  # noqa: RUF001
    assert 'data-rule="periodic-report" data-status="met_late"' in page and "逾期 5 天后履行" in page
    assert 'data-testid="scorecard"' in page

    # The disposal, recorded late, turns the obligation into met_late.
    disposed = service.post(
        f"/v1/campaigns/{ended}/disposals",
        key,
        json={"disposition": "returned_to_donors", "amount": 50_000},
    )
    assert disposed.status_code == 201, disposed.text
    travel(w3, at("2027-05-02"))
    later = disclosure(service, auditor, "2027-05-02", campaign_id=ended)
    (disposal,) = obligations(later, ended, "remaining-funds")
    assert (disposal["status"], disposal["satisfied_by"]["id"]) == ("met", disposed.json()["id"])


def test_a_correction_without_a_reason_is_impossible(embedded_service: Service) -> None:
    service = embedded_service
    charity, key = service.charity()
    campaign = service.campaign(charity, key)
    donation = service.donate(campaign, key, 1_000)["id"]
    for reason in ("", "   "):
        refused = service.post(
            f"/v1/charities/{charity}/corrections",
            key,
            json={"original_kind": "donation", "original_id": donation, "reason": reason},
        )
        assert refused.status_code == 422, refused.text
    # Nor on chain, whoever asks: the contract refuses an empty reason.
    contract, operator = service.contract, service.operators[charity]
    with pytest.raises(Exception) as refused_on_chain:
        contract.functions.recordCorrection(
            ids.to_bytes32(ids.new("correction")),
            ids.to_bytes32(charity),
            1,
            ids.to_bytes32(donation),
            bytes(32),
            "",
        ).call({"from": operator})
    error = contract_error_of(refused_on_chain.value)
    assert error is not None and error.name == "InvalidTextLength", refused_on_chain.value
    made = service.post(
        f"/v1/charities/{charity}/corrections",
        key,
        json={
            "original_kind": "donation",
            "original_id": donation,
            "reason": "amount typed twice: see CR note",
        },
    )
    assert made.status_code == 201, made.text
    trail = service.get(f"/v1/campaigns/{campaign}/disclosures")
    assert trail.status_code == 200, trail.text
    rules = {o["rule"]: o for o in trail.json()["obligations"]}
    assert rules["corrections-explained"]["satisfied_by"]["id"] == made.json()["id"]


def test_dates_out_of_range_are_refused_and_a_far_end_date_on_chain_breaks_nothing(
    embedded_service: Service, auditor: str
) -> None:
    service = embedded_service
    charity, key = service.charity()
    campaign = service.campaign(charity, key)
    report = {
        "kind": "final",
        "period_start": "0001-01-01",
        "period_end": "9999-12-31",
        "document_sha256": DOCUMENT,
    }
    for path, body in (
        ("reports", report),
        ("end-date", {"ends_on": "1969-12-31"}),
        ("end-date", {"ends_on": "9999-12-31"}),
        ("reports", {**report, "period_start": "2027-02-01", "period_end": "2027-01-01"}),
        ("disposals", {"disposition": "moved_to_campaign", "amount": 0}),
        ("disposals", {"disposition": "kept_under_rule", "amount": 0}),
    ):
        refused = service.post(f"/v1/campaigns/{campaign}/{path}", key, json=body)
        assert refused.status_code == 422, (path, body, refused.text)
    assert service.get("/v1/audit/disclosure", auditor, params={"as_of": "9999-12-31"}).status_code == 422
    # A self-custody charity signs its own records, past the API's checks: the contract
    # refuses a date a mirror could not store (after 2199: SQL keeps signed 64-bit times,
    # and one such record would stop the indexer for everyone), and takes the last second.
    writes = service.runtime.writes
    assert writes is not None
    operator, charity_hex = service.operators[charity], ids.to_hex(charity)
    for ends_at, accepted in (
        (2**64 - 1, False),
        (2**63, False),
        (7_258_118_400, False),
        (7_258_118_399, True),
    ):
        step = Step(
            encode("setCampaignEnd", ids.to_bytes32(campaign), ends_at, "far"), {"kind": "campaign-end"}
        )
        if accepted:
            writes.submit(operator, charity_hex, [step], True)
        else:
            with pytest.raises(Exception, match="InvalidPeriod"):
                writes.submit(operator, charity_hex, [step], True)
    answer = service.get(f"/v1/campaigns/{campaign}/disclosures")
    assert answer.status_code == 200, answer.text
    assert answer.json()["ends_on"] == "2200-01-01"  # the last second of 2199 UTC, in Shanghai
    assert disclosure(service, auditor, "2027-01-01")["summary"]["campaigns"] >= 1
    # A disposal on an open campaign is the contract's refusal, told plainly.
    refused = service.post(
        f"/v1/campaigns/{campaign}/disposals", key, json={"disposition": "returned_to_donors", "amount": 0}
    )
    assert refused.status_code == 409, refused.text
    assert "CampaignNotClosed" in refused.text


def test_a_report_uploaded_here_is_anchored_and_served_to_anyone(embedded_service: Service) -> None:
    service = embedded_service
    charity, key = service.charity()
    campaign = service.campaign(charity, key)
    _, other_key = service.charity("Another Fund")
    document = "第一季度报告: 收到 12,000 元, 支出 8,000 元 (no names)\n".encode()
    fields = {"kind": "periodic", "period_start": "2026-11-01", "period_end": "2027-01-31"}
    files = {"file": ("q1.txt", document, "text/plain")}
    url = f"/v1/campaigns/{campaign}/reports/document"
    sha = hashlib.sha256(document).hexdigest()
    # Another charity's key learns nothing, a bad period or an empty file is refused, and
    # none of them stores anything.
    refused = service.post(url, other_key, data=fields, files=files)
    assert refused.status_code == 404, refused.text
    bad = service.post(url, key, data={**fields, "period_end": "2026-10-01"}, files=files)
    assert bad.status_code == 422, bad.text
    empty = service.post(url, key, data=fields, files={"file": ("q1.txt", b"", "text/plain")})
    assert empty.status_code == 422, empty.text
    assert service.get(f"/v1/evidence/{sha}").status_code == 404
    made = service.post(url, key, data=fields, files=files)
    assert made.status_code == 201, made.text
    assert made.json()["document_sha256"] == sha and made.json()["document_href"] == f"/v1/evidence/{sha}"
    served = service.get(f"/v1/evidence/{sha}")
    assert served.status_code == 200 and served.content == document
    listed = service.get(f"/v1/campaigns/{campaign}/disclosures").json()
    periodic = [o for o in listed["obligations"] if o["rule"] == "periodic-report"]
    assert periodic[0]["satisfied_by"]["id"] == made.json()["id"]
    (report,) = listed["reports"]
    assert (report["document_sha256"], report["period_start"], report["period_end"]) == (
        sha,
        "2026-11-01",
        "2027-01-31",
    )
