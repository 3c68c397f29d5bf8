"""The console in a real headless Chromium: a bookkeeper signs in with her charity's key,
creates a campaign, records a donation and prints its receipt, pays out first in first
out and uploads the invoice, all with JavaScript disabled; then the public pages show
exactly those records. Every console page, in both languages, has no serious or critical
axe-core violation and fits a 390 px phone and a 1280 px screen."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger_api.chain import signed_calls
from ledger_api.core.hexes import unhex
from tests.api.service import ADMIN_KEY, Service, serve, settings_for
from tests.browser import test_pages_in_chromium as public
from tests.browser.test_pages_in_chromium import LAYOUT, shot
from tests.imports.statements import csv_text, rows

browser = public.browser  # the same headless Chromium fixture (module-scoped)
INVOICE = b"%PDF-1.4 invoice 2026-031: 150 kg rice, 1,500.00 yuan"
PHOTO = b"\x89PNG\r\n\x1a\n delivery photo"


@pytest.fixture(scope="module")
def charity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str, str]]:
    tmp = tmp_path_factory.mktemp("console-browser")
    with serve(settings_for(tmp, None, f"sqlite:///{tmp / 'ledger.db'}")) as service:
        charity_id, key = service.charity("Sunrise Children Fund 朝阳儿童基金")
        yield service, charity_id, key


def submit(page: Any, form: str) -> Any:
    with page.expect_navigation() as navigation:
        page.locator(f"form[data-testid='{form}'] [type=submit]").click()
    return navigation.value


def sign_in(page: Any, base: str, key: str) -> None:
    page.goto(base + "/console")
    assert page.url.endswith("/console/sign-in")
    page.fill("#key", key)
    assert submit(page, "sign-in").status == 200


def test_a_bookkeeper_records_a_month_without_javascript_and_the_public_pages_agree(
    browser: Any, charity: tuple[Service, str, str], tmp_path: Any
) -> None:
    service, _, key = charity
    context = browser.new_context(
        java_script_enabled=False, locale="en-GB", viewport={"width": 1280, "height": 900}
    )
    try:
        page = context.new_page()
        sign_in(page, service.base, key)
        assert page.url == service.base + "/console"
        page.fill("#campaign-name", "Rice for the canteen")
        page.select_option("#campaign-currency", "CNY")
        page.fill("#campaign-goal", "20,000")
        assert submit(page, "new-campaign").status == 200
        campaign = re.search(r"/console/campaigns/(CP-[0-9A-Z-]+)", page.url).group(1)  # type: ignore[union-attr]
        donations = []
        for amount, donor, channel in (
            ("¥1,200.00", "Wang Fang 王芳", "wechat-pay"),
            ("800", "Li Lei", "bank-transfer"),
        ):
            page.fill("#donation-amount", amount)
            page.fill("#donation-donor_reference", donor)
            page.select_option("#donation-channel", channel)
            assert submit(page, "new-donation").status == 200
            receipt = page.get_by_test_id("receipt")
            assert receipt.is_visible()
            secret = page.get_by_test_id("receipt-secret").inner_text()
            assert re.fullmatch(r"0x[0-9a-f]{64}", secret)
            assert page.get_by_test_id("receipt-reference").inner_text() == donor
            donation = page.locator(".receipt-id").inner_text()
            donations.append(donation)
            if len(donations) == 1:
                pdf = page.pdf(format="A5")  # what the print button of the browser makes
                assert (
                    pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") + pdf.count(b"/Type /Page/") >= 1
                )
                shot(page, "console-receipt")
            page.get_by_role("link", name="Back to the campaign").click()
        # Pay out 1,500 first in first out: all of the first donation, 300 of the second.
        page.fill("#disbursement-amount", "1,500")
        page.fill("#disbursement-recipient", "Golden Grain Co. CN-USCC-91110000")
        page.fill("#disbursement-purpose", "150 kg rice")
        assert submit(page, "new-disbursement").status == 200
        disbursement = page.get_by_test_id("disbursement-id").inner_text()
        funded = page.get_by_test_id("funded-by").inner_text()
        assert donations[0] in funded and donations[1] in funded
        # Evidence: two files at once.
        invoice, photo = tmp_path / "invoice-031.pdf", tmp_path / "delivery.png"
        invoice.write_bytes(INVOICE)
        photo.write_bytes(PHOTO)
        page.set_input_files("#files", [str(invoice), str(photo)])
        assert submit(page, "evidence-form").status == 201
        uploaded = page.get_by_test_id("uploaded").inner_text()
        hashes = [hashlib.sha256(INVOICE).hexdigest(), hashlib.sha256(PHOTO).hexdigest()]
        for name, kind, sha in (
            ("invoice-031.pdf", "application/pdf", hashes[0]),
            ("delivery.png", "image/png", hashes[1]),
        ):
            assert name in uploaded and kind in uploaded and sha in uploaded
        shot(page, "console-evidence")
        # The public pages show exactly those records.
        page.goto(f"{service.base}/disbursements/{disbursement}")
        text = page.locator("main").inner_text()
        assert "CN¥1,500.00" in text and "Golden Grain Co. CN-USCC-91110000" in text and "150 kg rice" in text
        assert all(sha in page.content() for sha in hashes)
        page.goto(f"{service.base}/campaigns/{campaign}")
        assert page.get_by_test_id("received").first.get_attribute("data-value") == "200000"
        trace = service.get(f"/v1/donations/{donations[0]}").json()
        assert trace["amount"] == 120_000 and trace["channel"] == "wechat-pay"
        assert [(a["disbursement"]["id"], a["amount"]) for a in trace["allocations"]] == [
            (disbursement, 120_000)
        ]
        second = service.get(f"/v1/donations/{donations[1]}").json()
        assert second["amount"] == 80_000 and [a["amount"] for a in second["allocations"]] == [30_000]
        page.goto(f"{service.base}/donations/{donations[0]}")
        assert "Golden Grain Co. CN-USCC-91110000" in page.content()
    finally:
        context.close()


Check = Callable[[Any, str], None]


def walk(page: Any, base: str, key: str, check: Check) -> None:
    """Every console page a charity's staff sees (with its error states), then the
    registrar's; `check` runs on each."""
    page.goto(base + "/console/sign-in")
    check(page, "sign-in")
    page.fill("#key", "lk_wrong")
    submit(page, "sign-in")
    check(page, "sign-in-error")
    page.fill("#key", key)
    submit(page, "sign-in")
    check(page, "dashboard")
    page.fill("#campaign-name", "Winter coats")
    page.fill("#campaign-goal", "1.234")  # the goal's decimals are fine; now a field error:
    page.fill("#campaign-goal", "12.345")
    submit(page, "new-campaign")
    check(page, "dashboard-error")
    page.fill("#campaign-goal", "5,000")
    submit(page, "new-campaign")
    check(page, "campaign")
    campaign_url = page.url.split("?")[0]
    page.fill("#donation-amount", "1234.567")
    page.fill("#donation-donor_reference", "Zhang Wei")
    submit(page, "new-donation")
    check(page, "donation-error")
    page.fill("#donation-amount", "500")
    submit(page, "new-donation")
    check(page, "receipt")
    page.goto(campaign_url)
    page.fill("#disbursement-amount", "900")
    page.fill("#disbursement-recipient", "Warm Co")
    page.fill("#disbursement-purpose", "Coats")
    submit(page, "new-disbursement")
    check(page, "disbursement-refused")
    page.fill("#disbursement-amount", "100")
    submit(page, "new-disbursement")
    check(page, "disbursement")
    page.set_input_files("#files", [{"name": "bill.txt", "mimeType": "text/plain", "buffer": b"bill 100"}])
    submit(page, "evidence-form")
    check(page, "evidence-uploaded")
    page.goto(campaign_url)
    # A form sent without its CSRF token (made by a script here): the 403 page.
    with page.expect_navigation():
        page.evaluate(
            """() => { const f = document.createElement("form"); f.method = "post";
            f.action = "/console/campaigns"; document.body.append(f); f.submit(); }"""
        )
    check(page, "forbidden")
    page.goto(campaign_url)
    page.locator("a[href$='/refund']").first.click()
    page.wait_for_load_state()
    check(page, "refund")
    page.fill("#refund-amount", "9999")
    page.fill("#refund-reason", "asked")
    submit(page, "refund")
    check(page, "refund-refused")
    page.locator("form[action='/console/sign-out'] [type=submit]").click()
    page.wait_for_load_state()
    page.fill("#key", ADMIN_KEY)
    submit(page, "sign-in")
    check(page, "registrar")
    page.fill("#issue-charity_id", "CH-0000-0000-0000-0000")
    submit(page, "issue")
    check(page, "registrar-error")
    page.locator("form[action='/console/sign-out'] [type=submit]").click()
    page.wait_for_load_state()


def checker(lang: str, width: int, seen: list[str]) -> Check:
    """What every console page must pass: its language, no serious or critical axe-core
    violation, nothing wider than the screen; a screenshot (tests/output, not committed)."""

    def check(page: Any, name: str) -> None:
        where = (name, lang, width)
        assert page.locator("html").get_attribute("lang") == lang, where
        assert public._axe_serious(page) == [], where  # what the public pages' test asks of them
        layout = page.evaluate(LAYOUT)
        assert layout["scroll"] <= layout["width"] == width, (where, layout["scroll"])
        assert layout["outside"] == [], (where, layout["outside"])
        seen.append(name)
        if lang == "en" or width == 390:
            shot(page, f"console-{name}-{lang}-{width}")

    return check


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_every_console_page_is_accessible_and_fits_a_phone_and_a_desktop(
    browser: Any, charity: tuple[Service, str, str], lang: str
) -> None:
    service, _, key = charity
    seen: list[str] = []
    for width in (1280, 390):
        # axe is injected by the test: the console's CSP allows no script, so it is bypassed.
        context = browser.new_context(locale=lang, bypass_csp=True, viewport={"width": width, "height": 844})

        try:
            walk(context.new_page(), service.base, key, checker(lang, width, seen))
        finally:
            context.close()
    assert len(seen) == 2 * 15, seen


# The wallet is the only fake here: a stand-in for the browser extension's window.ethereum
# (EIP-1193) whose signing calls back into Python, where eth-account signs with the
# charity's real key. The page, its CSP, its script, the relay and the chain are real.
WALLET = """
window.ethereum = {
  request: async ({method, params}) => {
    if (method === "eth_requestAccounts") { return [await window.walletAccount()]; }
    if (method === "eth_signTypedData_v4") { return await window.walletSign(params[0], params[1]); }
    throw new Error("unsupported " + method);
  },
};
"""


@pytest.fixture(scope="module")
def own_key(charity: tuple[Service, str, str]) -> tuple[LocalAccount, str, str]:
    """A self-custody charity of the same service: its own account, its ID and API key."""
    service = charity[0]
    account: LocalAccount = Account.create()
    created = service.post(
        "/v1/charities",
        ADMIN_KEY,
        json={"name": "Hill Library", "custody": "self", "operator": account.address},
    )
    assert created.status_code == 201, created.text
    charity_id = created.json()["id"]
    key = service.post("/v1/keys", ADMIN_KEY, json={"role": "charity", "charity_id": charity_id})
    return account, charity_id, key.json()["key"]


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_sign_page_is_accessible_and_fits(
    browser: Any, charity: tuple[Service, str, str], own_key: tuple[LocalAccount, str, str], lang: str
) -> None:
    service = charity[0]
    seen: list[str] = []
    for width in (1280, 390):
        context = browser.new_context(locale=lang, bypass_csp=True, viewport={"width": width, "height": 844})
        try:
            page = context.new_page()
            sign_in(page, service.base, own_key[2])
            page.fill("#campaign-name", f"Atlas {width}")
            page.fill("#campaign-goal", "100")
            assert submit(page, "new-campaign").status == 200
            checker(lang, width, seen)(page, "sign")
        finally:
            context.close()
    assert seen == ["sign", "sign"]


def test_a_self_custody_charity_signs_with_its_browser_wallet(
    browser: Any, charity: tuple[Service, str, str], own_key: tuple[LocalAccount, str, str]
) -> None:
    service = charity[0]
    account, charity_id, key = own_key
    signed: list[str] = []

    def wallet_sign(address: str, typed_json: str) -> str:
        assert address.lower() == account.address.lower()
        typed = json.loads(typed_json)  # what eth_signTypedData_v4 is given: the page's typed data
        message, domain = typed["message"], typed["domain"]
        call = signed_calls.SignedCall(
            message["operator"], unhex(message["data"]), unhex(message["nonce"]), int(message["deadline"])
        )
        signed.append(message["nonce"])
        return "0x" + signed_calls.sign(call, domain["chainId"], domain["verifyingContract"], account).hex()

    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    try:
        context.expose_function("walletAccount", lambda: account.address)
        context.expose_function("walletSign", wallet_sign)
        context.add_init_script(WALLET)
        page = context.new_page()
        errors: list[str] = []
        # A script error, or anything the page's CSP refused (the favicon's 404 is not one).
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
        sign_in(page, service.base, key)
        page.fill("#campaign-name", "Library books")
        page.fill("#campaign-goal", "3,000")
        answer = submit(page, "new-campaign")
        assert answer.status == 200
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        wallet = page.get_by_test_id("wallet")
        assert wallet.is_visible()  # the script ran under the page's own CSP and found a wallet
        shot(page, "console-sign")
        with page.expect_navigation():
            page.locator("#wallet-sign").click()
        page.wait_for_url(re.compile(r"/console$"))
        assert signed and errors == []
        campaigns = service.get(f"/v1/campaigns?charity_id={charity_id}").json()["items"]
        assert ("Library books", 300_000) in [(c["name"], c["goal"]) for c in campaigns]
        assert "Library books" in page.get_by_test_id("campaigns").inner_text()
    finally:
        context.close()


FOCUSED = "() => { const e = document.activeElement; return e.id || e.getAttribute('href') || e.tagName; }"


def test_keyboard_only_sign_in_and_error_summary_lead_to_the_field(
    browser: Any, charity: tuple[Service, str, str]
) -> None:
    """Without a mouse and without JavaScript: the sign-in page's tab order is skip link,
    home, the two languages, the key, the button; Enter signs in and sends a form; the
    error summary's link puts the focus in the field that is wrong."""
    service, _, key = charity
    context = browser.new_context(
        java_script_enabled=False, locale="en-GB", viewport={"width": 1280, "height": 900}
    )
    try:
        page = context.new_page()
        page.goto(service.base + "/console/sign-in")
        order = []
        for _ in range(6):
            page.keyboard.press("Tab")
            order.append(page.evaluate(FOCUSED))
        assert order == [
            "#main",
            "/",
            "/console/sign-in?lang=zh-CN",
            "/console/sign-in?lang=en",
            "key",
            "BUTTON",
        ]
        page.keyboard.press("Shift+Tab")
        page.keyboard.type(key)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url == service.base + "/console"
        page.focus("#campaign-name")
        page.keyboard.type("Keyboard campaign")
        page.keyboard.press("Tab")  # the currency (CNY already chosen)
        page.keyboard.press("Tab")
        page.keyboard.type("12.345")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        summary = page.locator("[data-testid=error-summary] a")
        assert summary.get_attribute("href") == "#campaign-goal"
        summary.focus()
        page.keyboard.press("Enter")
        assert page.evaluate(FOCUSED) == "campaign-goal"
        page.keyboard.press("Control+A")
        page.keyboard.type("12.34")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "/console/campaigns/CP-" in page.url
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_a_month_of_donations_from_a_bank_statement_without_javascript(
    browser: Any, charity: tuple[Service, str, str], lang: str, tmp_path: Any
) -> None:
    """Upload a GB18030 statement, map its columns, read the preview, commit, follow the
    progress page (it reloads itself: no script), check against the statement; axe and
    the 390/1280 px fit on each of these pages (checked in a second context, with the CSP
    bypassed for axe only)."""
    service, charity_id, key = charity
    campaign = service.campaign(charity_id, key)
    statement = tmp_path / "icbc-october.csv"
    body = rows(25, prefix=f"{lang[:2].upper()}")
    body.insert(2, ["2026-10-06", f"BAD-{lang}", "某人", "1234.567", "", "", "捐款", ""])
    statement.write_bytes(csv_text(body).encode("gb18030"))
    pages: list[tuple[str, str]] = []
    context = browser.new_context(
        java_script_enabled=False, locale=lang, viewport={"width": 1280, "height": 900}
    )
    try:
        page = context.new_page()
        sign_in(page, service.base, key)
        page.goto(service.base + "/console/imports")
        pages.append(("imports", page.url))
        page.set_input_files("#map-file", str(statement))
        for name, heading in (
            ("date", "交易日期"),
            ("bank_reference", "交易流水号"),
            ("payer_reference", "对方户名"),
            ("credit", "收入金额"),
            ("debit", "支出金额"),
            ("balance", "余额"),
        ):
            page.fill(f"#map-{name}", heading)
        page.select_option("#map-campaign_id", campaign)
        page.fill("#map-save_as", f"ICBC {lang}")
        assert submit(page, "upload-statement").status == 200
        preview_url = page.url
        pages.append(("import-preview", preview_url))
        verdicts = {
            li.get_attribute("data-verdict"): li.locator(".amount").inner_text()
            for li in page.locator("[data-testid=verdicts] li").all()
        }
        assert verdicts == {"record": "25", "invalid": "1"}
        assert page.locator("[data-testid=rows] tr[data-verdict=invalid]").get_attribute("data-line") == "7"
        if lang == "en":
            shot(page, "console-import-preview")
        assert submit(page, "commit").status == 200
        for _ in range(60):  # what the browser does by itself: reload on the meta refresh
            state = page.get_by_test_id("progress").get_attribute("data-state")
            if state in ("done", "failed"):
                break
            page.wait_for_timeout(500)
        assert state == "done"
        pages.append(("import-done", page.url))
        with page.expect_download() as download:
            page.get_by_test_id("report").click()
        assert download.value.suggested_filename.endswith(".csv")
        page.goto(preview_url + "/check")
        pages.append(("statement-check", page.url))
        received = page.get_by_test_id("ledger-received").get_attribute("data-value")
        assert received == page.get_by_test_id("statement-credits").get_attribute("data-value")
        assert int(received or 0) == service.get(f"/v1/campaigns/{campaign}").json()["received"]
    finally:
        context.close()
    seen: list[str] = []
    for width in (1280, 390):
        context = browser.new_context(locale=lang, bypass_csp=True, viewport={"width": width, "height": 844})
        try:
            page = context.new_page()
            sign_in(page, service.base, key)
            for name, url in pages:
                page.goto(url)
                checker(lang, width, seen)(page, name)
        finally:
            context.close()
    assert len(seen) == 2 * len(pages)


@pytest.fixture(scope="module")
def approver_key(charity: tuple[Service, str, str]) -> str:
    """An approver of the charity (key held by the platform) with a proposal waiting for it."""
    service, charity_id, key = charity
    campaign = service.campaign(charity_id, key)
    service.donate(campaign, key, 90_000)
    approvers = [
        service.post(f"/v1/charities/{charity_id}/approvers", key, json={"label": label}).json()
        for label in ("Treasurer 司库", "Board chair")
    ]
    ruled = service.client.put(
        f"/v1/campaigns/{campaign}/approval-rule",
        headers={"Authorization": f"Bearer {key}"},
        json={"approvers": [a["account"] for a in approvers], "threshold": 2},
    )
    assert ruled.status_code == 201, ruled.text
    proposed = service.post(
        "/v1/disbursements",
        key,
        json={
            "campaign_id": campaign,
            "amount": 45_000,
            "recipient": "County School No. 3",
            "purpose": "Winter coats",
        },
    )
    assert proposed.json()["status"] == "proposed", proposed.text
    return str(approvers[0]["key"])


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_approvers_page_is_accessible_and_fits(
    browser: Any, charity: tuple[Service, str, str], approver_key: str, lang: str
) -> None:
    service = charity[0]
    seen: list[str] = []
    for width in (1280, 390):
        context = browser.new_context(locale=lang, bypass_csp=True, viewport={"width": width, "height": 844})
        try:
            page = context.new_page()
            sign_in(page, service.base, approver_key)
            assert page.url == service.base + "/console/approvals"
            assert page.get_by_test_id("waiting-proposal").count() == 1
            check = checker(lang, width, seen)
            check(page, "approvals")
            page.locator("details.reject summary").click()  # the reject form, open, with its error
            submit(page, "reject")
            assert page.locator("textarea[aria-invalid=true]").count() == 1
            check(page, "approvals-reject-error")
        finally:
            context.close()
    assert len(seen) == 4


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_disclosure_section_is_accessible_and_fits(
    browser: Any, charity: tuple[Service, str, str], lang: str
) -> None:
    """A closed campaign whose end date is long past: the dashboard lists its overdue
    report, and the campaign's Disclosure section (obligations, the report and disposal
    forms, then a reversed period refused at its field) passes axe and fits both widths."""
    service, charity_id, key = charity
    campaign = service.campaign(charity_id, key)
    service.donate(campaign, key, 20_000)
    ended = service.post(f"/v1/campaigns/{campaign}/end-date", key, json={"ends_on": "2025-01-31"})
    assert ended.status_code == 201, ended.text
    assert service.post(f"/v1/campaigns/{campaign}/close", key).status_code == 201
    seen: list[str] = []
    for width in (1280, 390):
        context = browser.new_context(locale=lang, bypass_csp=True, viewport={"width": width, "height": 844})
        try:
            page = context.new_page()
            sign_in(page, service.base, key)
            assert page.locator(f"[data-testid=deadline][data-campaign='{campaign}']").count() >= 1
            check = checker(lang, width, seen)
            check(page, "dashboard-deadlines")
            page.goto(f"{service.base}/console/campaigns/{campaign}#disclosure-heading")
            assert page.get_by_test_id("disclosure").is_visible()
            assert (
                page.locator("[data-testid=obligation][data-rule=final-report][data-status=overdue]").count()
                == 1
            )
            assert page.get_by_test_id("disposal-form").count() == 1
            check(page, "campaign-disclosure")
            page.check("#report-kind-final")
            page.fill("#report-period_start", "2025-01-31")
            page.fill("#report-period_end", "2025-01-01")
            page.set_input_files(
                "#report-file",
                files=[{"name": "r.pdf", "mimeType": "application/pdf", "buffer": b"%PDF report"}],
            )
            assert submit(page, "report-form").status == 422
            assert page.locator("#report-period_end[aria-invalid=true]").count() == 1
            check(page, "campaign-disclosure-error")
        finally:
            context.close()
    assert len(seen) == 6
