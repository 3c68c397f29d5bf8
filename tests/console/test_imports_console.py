# Chinese sentences below use full-width punctuation, which RUF001 takes for look-alikes.
# ruff: noqa: RUF001
"""Bank statement imports in the console (over HTTP, SQLite, the embedded chain): a GB18030
statement with a title block previews with every row's verdict, commits with a progress
page that reloads itself until done, downloads its report, checks against the ledger,
and the same file again records nothing; the mapping is saved as a profile; another
charity's import is not found; every post needs its CSRF token."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from ledger_api.core.models import StatementImport
from tests.console.conftest import Ledger, Staff, sign_in
from tests.imports.statements import csv_text, rows

VERDICTS = re.compile(r'data-verdict="(\w+)"><span class="label">[^<]*</span> <span class="amount">([^<]*)<')
MAPPING = {
    "date": "交易日期",
    "bank_reference": "交易流水号",
    "payer_reference": "对方户名",
    "credit": "收入金额",
    "debit": "支出金额",
    "balance": "余额",
    "units": "major",
}


def _an_hour_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


def _upload(staff: Staff, data: bytes, **fields: str) -> object:
    return staff.client.post(
        "/console/imports",
        data={"csrf": staff.csrf, **fields},
        files={"file": ("october.csv", data, "text/csv")},
    )


def test_a_statement_previews_commits_with_progress_and_imports_once(ledger: Ledger) -> None:
    service = ledger.service
    staff = sign_in(service, ledger.key, "zh-CN")
    campaign = service.campaign(ledger.charity, ledger.key)
    body = rows(40, prefix="C")
    body.insert(5, ["2026-10-06", "BAD0001", "某人", "1234.567", "", "", "捐款", ""])
    body.insert(9, ["2026-10-07", "OUT0001", "房租", "", "2,000.00", "99.00", "支付房租", ""])
    data = csv_text(body).encode("gb18030")
    # Without the token: refused, nothing kept.
    forged = staff.client.post("/console/imports", data=MAPPING, files={"file": ("x.csv", data)})
    assert forged.status_code == 403
    assert "october.csv" not in staff.client.get("/console/imports").text
    # A mapping that names a column the file lacks: the file's own headings are shown.
    wrong = _upload(staff, data, **{**MAPPING, "credit": "金额"}, campaign_id=campaign)
    assert wrong.status_code == 422 and 'data-testid="headings"' in wrong.text and "收入金额" in wrong.text
    uploaded = _upload(staff, data, **MAPPING, campaign_id=campaign, save_as="工商银行")
    assert uploaded.status_code == 303, uploaded.text
    page = uploaded.headers["location"]
    preview = staff.client.get(page)
    assert preview.status_code == 200 and preview.headers["cache-control"] == "no-store"
    assert dict(VERDICTS.findall(preview.text)) == {"invalid": "1", "outgoing": "1", "record": "40"}
    assert "待记录" in preview.text and "无法读取" in preview.text  # the verdicts in Chinese
    # Its line in the file: three title lines, the headings, then the sixth row.
    assert re.findall(r'data-verdict="invalid" data-line="(\d+)"', preview.text) == ["10"]
    assert "第 10 行 收入金额 列：金额有 3 位小数，该币种最多 2 位。" in preview.text
    assert 'http-equiv="refresh"' not in preview.text  # nothing runs yet
    assert ledger.service.get(f"/v1/campaigns/{campaign}").json()["received"] == 0  # nothing sent
    with service.runtime.engine.connect() as connection:
        sealed = connection.execute(
            select(StatementImport.sealed_rows).where(StatementImport.id == page.rsplit("/", 1)[1])
        ).scalar_one()
    committed = staff.post(f"{page}/commit")
    assert committed.status_code == 303
    seen = []
    for _ in range(120):
        shown = staff.client.get(page).text
        state = re.search(r'data-state="(\w+)"', shown)
        assert state is not None
        seen.append((state.group(1), 'http-equiv="refresh" content="2"' in shown))
        if state.group(1) in ("done", "failed"):
            break
        time.sleep(0.25)
    assert seen[-1] == ("done", False), seen
    assert all(refresh for state, refresh in seen if state in ("queued", "running"))
    received = sum(1000 + i % 1000 for i in range(40))
    assert ledger.service.get(f"/v1/campaigns/{campaign}").json()["received"] == received
    report = staff.client.get(f"{page}/report.csv")
    assert report.status_code == 200 and report.headers["cache-control"] == "no-store"
    assert report.text.count(",recorded,") == 40
    check = staff.client.get(f"{page}/check")
    assert f'data-testid="ledger-received" data-value="{received}"' in check.text
    assert f'data-testid="statement-credits" data-value="{received}"' in check.text
    # A commit whose process died (left `running`, its heartbeat an hour old, its rows
    # sealed as claimed but not recorded): the page she watches takes it over and resumes
    # it, and the resumed commit finds every donation on the chain and sends none again.
    import_id = page.rsplit("/", 1)[1]
    engine = service.runtime.engine
    with engine.begin() as connection:
        connection.execute(
            update(StatementImport)
            .where(StatementImport.id == import_id)
            .values(state="running", sealed_rows=sealed, rows_sent=0, heartbeat_at=_an_hour_ago())
        )
    for _ in range(240):
        state = re.search(r'data-state="(\w+)"', staff.client.get(page).text)
        assert state is not None
        if state.group(1) != "running":
            break
        time.sleep(0.25)
    assert state.group(1) == "done"
    assert ledger.service.get(f"/v1/campaigns/{campaign}").json()["received"] == received
    assert staff.client.get(f"{page}/report.csv").text.count(",recorded,") == 40
    # Next month's upload with the saved profile: the same file records nothing new.
    again = _upload(staff, data, profile="工商银行")
    assert again.status_code == 303
    shown = staff.client.get(again.headers["location"]).text
    assert dict(VERDICTS.findall(shown)) == {"duplicate": "40", "invalid": "1", "outgoing": "1"}
    # Another charity's staff: not found, on every import route.
    other = sign_in(service, ledger.other_key)
    for path in (page, f"{page}/report.csv", f"{page}/check"):
        assert other.client.get(path).status_code == 404, path
    assert other.post(f"{page}/commit").status_code == 404
    assert other.post(f"{page}/delete").status_code == 404
    assert "工商银行" not in other.client.get("/console/imports").text
    other.client.close()
    staff.client.close()


def test_a_usual_bank_statement_needs_no_column_typed_and_an_unusual_one_shows_its_headings(
    ledger: Ledger,
) -> None:
    """She chooses the file and the campaign and types nothing else: the bank's headings
    (交易日期, 收入金额, 对方户名, 交易流水号...) are recognised. A file whose headings are
    not the usual ones comes back with its headings listed beside the form, the columns
    that were recognised filled in, and the one still missing marked at its field."""
    service = ledger.service
    staff = sign_in(service, ledger.key, "zh-CN")
    campaign = service.campaign(ledger.charity, ledger.key)
    data = csv_text(rows(6, prefix="G")).encode("gb18030")
    uploaded = _upload(staff, data, campaign_id=campaign, save_as="自动识别")
    assert uploaded.status_code == 303, uploaded.text
    preview = staff.client.get(uploaded.headers["location"]).text
    assert dict(VERDICTS.findall(preview)) == {"record": "6"}
    # A name the API could not fetch (a slash) is refused at its field, nothing previewed.
    slashed = _upload(staff, data, campaign_id=campaign, save_as="工商/银行")
    assert slashed.status_code == 422
    assert re.search(r'id="map-save_as"[^>]*aria-invalid="true"', slashed.text), slashed.text
    # What was recognised is saved as the profile, as if she had typed it.
    answer = service.get("/v1/import-profiles/自动识别", ledger.key)
    assert answer.status_code == 200, answer.text
    saved = answer.json()["mapping"]
    assert {saved[name] for name in ("date", "bank_reference", "payer_reference", "credit", "debit")} == {
        "交易日期",
        "交易流水号",
        "对方户名",
        "收入金额",
        "支出金额",
    }
    # Her own bank calls the payer 汇款人: the rest is recognised, that one is asked for.
    odd = csv_text(rows(3, prefix="H")).replace("对方户名", "汇款人", 1).encode("gb18030")
    missing = _upload(staff, odd, campaign_id=campaign)
    assert missing.status_code == 422
    assert 'data-testid="headings"' in missing.text and "汇款人" in missing.text
    assert re.search(r'id="map-payer_reference"[^>]*aria-invalid="true"', missing.text), missing.text
    assert re.search(r'id="map-credit"[^>]*value="收入金额"', missing.text)
    # Naming it herself is enough.
    named = _upload(staff, odd, campaign_id=campaign, payer_reference="汇款人")
    assert named.status_code == 303, named.text
    assert dict(VERDICTS.findall(staff.client.get(named.headers["location"]).text)) == {"record": "3"}
    staff.client.close()


def test_a_file_that_is_no_statement_is_refused_in_her_language(ledger: Ledger) -> None:
    """A PDF renamed .csv, an empty file and a statement too wide are refused at the file
    field in words, in Chinese and in English, and nothing is kept."""
    service = ledger.service
    campaign = service.campaign(ledger.charity, ledger.key)
    pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\x00<< /Type /Catalog >>\x00endobj\n" * 20
    for lang, binary, empty in (
        ("zh-CN", "这不是 CSV 或 Excel 对账单", "文件是空的。"),
        ("en", "This is not a CSV or Excel statement", "The file is empty."),
    ):
        staff = sign_in(service, ledger.key, lang)
        kept = staff.client.get("/console/imports").text.count("october.csv")
        refused = _upload(staff, pdf, campaign_id=campaign)
        assert refused.status_code == 422
        assert re.search(r'id="map-file"[^>]*aria-invalid="true"', refused.text)
        assert binary in refused.text, refused.text
        blank = _upload(staff, b"   \n", campaign_id=campaign)
        assert blank.status_code == 422 and empty in blank.text
        assert staff.client.get("/console/imports").text.count("october.csv") == kept  # nothing kept
        staff.client.close()
