"""The public pages in a real headless Chromium (Debian's, driven by Playwright), on the
demo ledger: numbers equal the API's, the receipt's QR link leads to the trace, the
language switch works, the receipt prints on one page, pages work with JavaScript off,
every page fits a phone (390 px) and a desktop (1280 px) in both languages, and axe-core
finds no serious accessibility violations. A screenshot of each page at each width is
kept in tests/output/screenshots (a CI artifact, not committed)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger_api.demo import load_demo
from tests.api.checks import wait_for_mirror
from tests.api.service import Service, serve, settings_for
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "tests" / "output" / "screenshots"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, dict[str, Any]]]:
    """`ledger dev --demo`: the service on the embedded chain and SQLite, with the demo."""
    tmp = tmp_path_factory.mktemp("demo")
    with serve(settings_for(tmp, None, f"sqlite:///{tmp / 'ledger.db'}")) as service:
        made = load_demo(service.runtime, echo=lambda *_: None)
        wait_for_mirror(service)
        yield service, made


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        unavailable("no /usr/bin/chromium (scripts/bootstrap.sh --browser installs Debian's)")
    if not AXE.exists():
        unavailable("no node_modules/axe-core (scripts/bootstrap.sh --node installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="en-GB", viewport={"width": 1024, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def traced_donation(service: Service, made: dict[str, Any]) -> dict[str, Any]:
    """A demo donation that paid for disbursements and had a refund or is partly unspent."""
    best = None
    for donation in made["donations"]:
        trace = service.get(f"/v1/donations/{donation['id']}").json()
        if trace["allocations"] and (best is None or len(trace["allocations"]) > len(best["allocations"])):
            best = trace
    assert best is not None, "the demo has no allocated donation"
    return best


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def value(page: Any, testid: str) -> int:
    return int(page.get_by_test_id(testid).first.get_attribute("data-value"))


def test_the_home_page_shows_the_demo_charities(page: Any, demo: tuple[Service, dict[str, Any]]) -> None:
    service, _ = demo
    response = page.goto(service.base + "/")
    assert response.status == 200
    names = [c["name"] for c in service.get("/v1/charities").json()["items"]]
    links = page.get_by_test_id("charity")
    # Two with platform-held keys, one in self-custody, and a foundation, a bureau and a school
    # that pass money on to each other.
    assert links.count() == len(names) == 6
    shown = " ".join(links.all_inner_texts())
    assert all(name in shown for name in names)
    shot(page, "home")


def test_a_donor_pastes_a_receipt_id_and_sees_the_numbers_the_api_gives(
    page: Any, demo: tuple[Service, dict[str, Any]]
) -> None:
    service, made = demo
    trace = traced_donation(service, made)
    page.goto(service.base + "/")
    page.fill("#q", trace["id"].lower())  # as typed from a paper receipt
    page.locator("form[action='/search'] [type=submit]").click()
    page.wait_for_url(re.compile(rf"/donations/{trace['id']}$"))
    for field in ("amount", "allocated", "refunded", "remaining"):
        assert value(page, field) == trace[field], field
    rows = page.get_by_test_id("allocation")
    assert rows.count() == len(trace["allocations"])
    shown = {
        (rows.nth(i).get_attribute("data-disbursement"), int(rows.nth(i).get_attribute("data-value")))
        for i in range(rows.count())
    }
    assert shown == {(a["disbursement"]["id"], a["amount"]) for a in trace["allocations"]}
    assert page.locator("[data-testid=flow]:visible").count() == 1  # of its wide and narrow layouts
    assert trace["proof"]["tx_hash"] in page.content()  # "verify it yourself"
    shot(page, "trace")


def test_the_receipt_qr_leads_to_the_trace_and_prints_on_one_page(
    page: Any, demo: tuple[Service, dict[str, Any]]
) -> None:
    service, made = demo
    trace = traced_donation(service, made)
    page.goto(f"{service.base}/donations/{trace['id']}")
    page.get_by_test_id("receipt-link").click()
    page.wait_for_url(re.compile(r"/receipt$"))
    assert page.get_by_test_id("receipt").count() == 1
    target = page.get_by_test_id("qr").get_attribute("data-url")
    assert target == f"{service.base}/donations/{trace['id']}?depth=5"
    # The second code: the donation's Atom feed, in the receipt's language.
    follow = page.get_by_test_id("qr-follow").get_attribute("data-url")
    assert follow == f"{service.base}/v1/donations/{trace['id']}/feed.atom?lang=en"
    assert page.get_by_test_id("receipt-follow").get_by_role("heading").inner_text() == "Follow this donation"
    shot(page, "receipt")
    pdf = page.pdf(prefer_css_page_size=True, print_background=True)
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert pages == 1, f"the receipt prints on {pages} pages"
    feed = page.request.get(follow)
    assert feed.status == 200 and feed.headers["content-type"].startswith("application/atom+xml")
    followed = page.goto(target)
    assert followed.status == 200
    assert value(page, "amount") == trace["amount"]


def test_the_language_switch_and_chinese_pages(page: Any, demo: tuple[Service, dict[str, Any]]) -> None:
    service, made = demo
    trace = traced_donation(service, made)
    page.goto(f"{service.base}/donations/{trace['id']}")
    assert page.locator("html").get_attribute("lang") == "en"
    page.locator("a[hreflang='zh-CN']").first.click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert re.search(r"[\u4e00-\u9fff]", page.locator("main").inner_text())  # Chinese text
    assert value(page, "amount") == trace["amount"]
    shot(page, "trace-zh")
    # The choice sticks (a cookie) across pages, until switched back.
    page.goto(f"{service.base}/campaigns/{trace['campaign']['id']}")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    campaign = service.get(f"/v1/campaigns/{trace['campaign']['id']}").json()
    for field in ("received", "disbursed", "refunded", "available"):
        assert value(page, field) == campaign[field], field
    shot(page, "campaign-zh")
    page.locator("a[hreflang='en']").first.click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"


def test_pages_work_with_javascript_off(browser: Any, demo: tuple[Service, dict[str, Any]]) -> None:
    service, made = demo
    trace = traced_donation(service, made)
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    try:
        phone = context.new_page()
        phone.goto(service.base + "/")
        phone.fill("#q", trace["id"])
        phone.locator("form[action='/search'] [type=submit]").click()
        phone.wait_for_url(re.compile(rf"/donations/{trace['id']}$"))
        assert value(phone, "remaining") == trace["remaining"]
        shot(phone, "trace-phone")
        missing = phone.goto(service.base + "/donations/DN-0000-0000-0000-0000")
        assert missing.status == 404
        assert "DN-0000-0000-0000-0000" in phone.content()
    finally:
        context.close()


def test_readable_on_a_phone(browser: Any, demo: tuple[Service, dict[str, Any]]) -> None:
    """Nothing is wider than a phone's screen (no sideways scrolling)."""
    service, made = demo
    trace = traced_donation(service, made)
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    try:
        phone = context.new_page()
        for path in ("/", f"/donations/{trace['id']}", f"/campaigns/{trace['campaign']['id']}"):
            phone.goto(service.base + path)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, (path, width)
    finally:
        context.close()


def every_page(service: Service, made: dict[str, Any]) -> dict[str, str]:
    """One page of each kind, by name: the busiest demo trace and what it links to."""
    trace = traced_donation(service, made)
    return {
        "home": "/",
        "trace": f"/donations/{trace['id']}",
        "receipt": f"/donations/{trace['id']}/receipt",
        "campaign": f"/campaigns/{trace['campaign']['id']}",
        "charity": f"/charities/{trace['charity']['id']}",
        "disbursement": f"/disbursements/{trace['allocations'][0]['disbursement']['id']}",
        "error": "/no/such/page",  # an unknown address: the 404 page, for a browser
    }


# What sticks out of the viewport sideways (the 1-pixel visually hidden elements excepted),
# and where the shown diagrams and the tables' amount cells are.
LAYOUT = """() => {
  const W = window.innerWidth;
  const shown = e => {
    const r = e.getBoundingClientRect();
    return r.width > 1 && r.height > 1 && getComputedStyle(e).visibility !== "hidden";
  };
  const box = e => { const r = e.getBoundingClientRect(); return {left: r.left, right: r.right}; };
  const name = e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
    + (e.getAttribute("class") ? "." + e.getAttribute("class").split(" ").join(".") : "");
  const outside = [...document.body.querySelectorAll("*")].filter(shown).map(e => [name(e), box(e)])
    .filter(([_, b]) => b.left < -0.5 || b.right > W + 0.5);
  const diagrams = [...document.querySelectorAll("[data-testid=flow]")].filter(shown).map(
    e => ({...box(e), scale: e.getBoundingClientRect().width / e.viewBox.baseVal.width}));
  const amounts = [...document.querySelectorAll("td.num")].filter(shown).map(box);
  return {scroll: document.documentElement.scrollWidth, width: W, outside: outside.slice(0, 10),
          diagrams, amounts};
}"""


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_every_page_fits_a_phone_and_a_desktop(
    browser: Any, demo: tuple[Service, dict[str, Any]], lang: str
) -> None:
    """At 390 px nothing is wider than the screen: the flow diagrams are drawn whole, at 90%
    of their natural size or more, and every amount in a table is on screen, not scrolled
    away; at 1280 px too."""
    service, made = demo
    pages = every_page(service, made)
    for width in (390, 1280):
        context = browser.new_context(viewport={"width": width, "height": 844}, locale=lang)
        try:
            page = context.new_page()
            for name, path in pages.items():
                response = page.goto(service.base + path)
                assert response.status == (404 if name == "error" else 200), (name, response.status)
                assert page.locator("html").get_attribute("lang") == lang
                seen = page.evaluate(LAYOUT)
                where = (name, lang, width)
                assert seen["scroll"] <= seen["width"] == width, (where, seen["scroll"])
                assert seen["outside"] == [], (where, seen["outside"])
                for diagram in seen["diagrams"]:
                    assert diagram["left"] >= 0 and diagram["right"] <= width, (where, diagram)
                    assert diagram["scale"] >= 0.9, (where, diagram)  # its 12-13 px text stays readable
                for cell in seen["amounts"]:
                    assert cell["left"] >= 0 and cell["right"] <= width, (where, cell)
                if name in ("trace", "campaign"):
                    assert len(seen["diagrams"]) == 1, where
                if name in ("campaign", "disbursement"):
                    assert seen["amounts"], where  # their tables were looked at
                shot(page, f"{name}-{lang}-{width}")
        finally:
            context.close()


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
@pytest.mark.parametrize("width", [1280, 390])  # on a phone, tables are cards and diagrams narrow
def test_no_serious_accessibility_violations(
    browser: Any, demo: tuple[Service, dict[str, Any]], lang: str, width: int
) -> None:
    service, made = demo
    # The pages forbid scripts (CSP); axe is injected by the test, so the CSP is bypassed.
    context = browser.new_context(locale=lang, bypass_csp=True, viewport={"width": width, "height": 844})
    try:
        page = context.new_page()
        for path in (*every_page(service, made).values(), "/donations/DN-0000-0000-0000-0000"):
            page.goto(f"{service.base}{path}?lang={lang}")
            page.add_script_tag(path=str(AXE))
            result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
            serious = [
                (v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:3])
                for v in result["violations"]
                if v["impact"] in ("serious", "critical")
            ]
            assert serious == [], (path, lang, width, serious)
    finally:
        context.close()


def _axe_serious(page: Any) -> list[Any]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["help"]) for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_a_donor_proves_ownership_with_the_form_with_javascript_off(
    browser: Any, demo: tuple[Service, dict[str, Any]], lang: str
) -> None:
    """The trace page's form, filled in and sent by a browser without JavaScript: the
    answer page says match (the reference typed with other spacing), no match, or what is
    wrong with the input; axe-core finds nothing serious on any of them (axe is injected
    in a second context that bypasses the CSP, since the pages allow no script)."""
    service, made = demo
    donation = made["samples"][0][0]
    spaced = "  " + donation["donor_reference"].replace(" ", "\u3000 ") + " "
    said = {
        "en": ("They match", "do not match", "0x followed by 64"),
        "zh-CN": ("一致\uff1a", "不一致", "64 位"),
    }[lang]
    for javascript in (False, True):
        context = browser.new_context(locale=lang, java_script_enabled=javascript, bypass_csp=javascript)
        try:
            page = context.new_page()
            for secret, reference, expected, status in (
                (donation["receipt_secret"], spaced, said[0], 200),
                (donation["receipt_secret"], donation["donor_reference"] + "1", said[1], 200),
                ("0x12", donation["donor_reference"], said[2], 422),
            ):
                page.goto(f"{service.base}/donations/{donation['id']}?lang={lang}")
                page.fill("#own_secret", secret)
                page.fill("#own_reference", reference)
                with page.expect_navigation() as navigation:
                    # The browser's own check (required, no pattern) lets "0x12" through to the server.
                    page.locator("form[data-testid='ownership-form'] [type=submit]").click()
                assert navigation.value.status == status
                assert page.url.endswith(f"/donations/{donation['id']}/ownership")
                assert expected in page.content()
                assert donation["receipt_secret"][2:] not in page.content()
                if javascript:
                    assert _axe_serious(page) == [], (lang, expected)
                else:
                    shot(page, f"ownership-{lang}-{status}")
        finally:
            context.close()


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_verify_boxes_opened_fit_a_phone_and_a_desktop(
    browser: Any, demo: tuple[Service, dict[str, Any]], lang: str
) -> None:
    """Every "Verify it yourself" box of the trace and disbursement pages opened: the
    commands and 64-digit hashes wrap inside their own blocks, nothing sticks out sideways."""
    service, made = demo
    pages = every_page(service, made)
    for width in (390, 1280):
        context = browser.new_context(viewport={"width": width, "height": 844}, locale=lang)
        try:
            page = context.new_page()
            for name in ("trace", "disbursement", "campaign"):
                page.goto(service.base + pages[name])
                boxes = page.locator("details.verify")
                assert boxes.count() > 0, name
                for i in range(boxes.count()):
                    boxes.nth(i).locator("summary").click()  # opened as a reader would
                assert page.locator("details.verify[open]").count() == boxes.count()
                assert page.locator("details.verify[open] code[data-testid=command]").first.is_visible()
                seen = page.evaluate(LAYOUT)
                where = (name, lang, width)
                assert seen["scroll"] <= seen["width"] == width, (where, seen["scroll"])
                assert seen["outside"] == [], (where, seen["outside"])
                shot(page, f"{name}-verify-{lang}-{width}")
        finally:
            context.close()
