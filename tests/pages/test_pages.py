# Chinese text is written with full-width punctuation, which RUF001 takes for look-alikes.
# ruff: noqa: RUF001
"""The public pages over HTTP (no browser): each page shows the numbers the JSON API gives
for the same IDs, in Chinese or English; unknown and malformed IDs are friendly pages; the
flow diagrams are well-formed SVG; the receipt shows a secret only when the charity POSTs
it; search takes IDs as people type them and URLs pasted from QR codes; nothing personal
and no script is ever on a page."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from lxml import etree
from lxml import html as lxml_html
from pydantic import ValidationError

from ledger_api.core import ids
from ledger_api.core.config import Settings
from ledger_api.demo import load_demo
from ledger_api.pages import routes, svg
from ledger_api.pages.i18n import Reader, from_accept_language, language_of
from ledger_api.pages.money import major, money
from tests.api.checks import wait_for_mirror
from tests.api.service import Service, serve, settings_for
from tests.pages.conftest import DONOR, HOSTILE_PURPOSE, INVOICE

Site = tuple[Service, dict[str, Any]]
CJK = re.compile(r"[\u4e00-\u9fff]")


def page(service: Service, path: str, status: int = 200, **kwargs: Any) -> httpx.Response:
    """GET a page as a new visitor (the shared client keeps no language cookie between calls)."""
    service.client.cookies.clear()
    response = service.get(path, **kwargs)
    assert response.status_code == status, (path, response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("text/html"), response.headers
    assert "Traceback" not in response.text
    return response


def parse(response: httpx.Response) -> Any:
    return lxml_html.fromstring(response.text)


def hooks(doc: Any, testid: str) -> list[Any]:
    return list(doc.xpath(f'//*[@data-testid="{testid}"]'))


def value_of(doc: Any, testid: str) -> int:
    [element] = hooks(doc, testid)
    return int(element.get("data-value"))


def text_of(doc: Any, testid: str) -> str:
    [element] = hooks(doc, testid)
    return str(element.text_content()).strip()


def svgs(text: str, testid: str) -> list[Any]:
    """The inline <svg> elements with `testid`, parsed as XML (so they must be well-formed)."""
    raw = re.findall(rf'<svg\b[^>]*data-testid="{testid}".*?</svg>', text, flags=re.S)
    return [etree.fromstring(markup.encode()) for markup in raw]


def public_paths(site: Site) -> list[str]:
    _, made = site
    paths = ["/", f"/campaigns/{made['meals']}", f"/campaigns/{made['books']}"]
    paths += [f"/charities/{made['charity']}", f"/disbursements/{made['disbursement']}"]
    for donation in [*made["donations"], made["yen"]]:
        paths += [f"/donations/{donation['id']}", f"/donations/{donation['id']}/receipt"]
    return paths


# ------------------------------------------------------------------ amounts


def test_amounts_are_formatted_per_currency_and_locale_exactly() -> None:
    assert money(123_450, "CNY", "zh_CN") == "¥1,234.50"
    assert money(123_450, "CNY", "en") == "CN¥1,234.50"
    assert money(1_500, "JPY", "en") == "¥1,500"  # no minor unit: no decimals
    assert money(1_500, "JPY", "zh_CN") == "JP¥1,500"
    assert money(123_456, "USD", "en") == "$1,234.56"
    assert money(5, "USD", "en") == "$0.05"
    assert money(1_234_567, "IQD", "en") == "IQD1,234.567"  # ISO 4217 says 3 decimals, CLDR 0
    # Far past a float's 53 bits, to the last digit.
    assert money(10**24 + 1, "CNY", "en") == "CN¥10,000,000,000,000,000,000,000.01"
    assert money(2**53 + 1, "CNY", "en") == "CN¥90,071,992,547,409.93"
    assert major(2**53 + 1, "CNY") == Decimal("90071992547409.93")
    assert major(1, "XAU") == Decimal("0.01")  # no minor unit in ISO 4217: 2 decimals
    assert money(1_200, "not money", "en") == "12.00 not money"


def test_times_name_their_zone_beijing_time_in_chinese_utc_in_english() -> None:
    at = "2026-03-04T05:06:07+00:00"
    assert Reader("zh-CN").moment(at) == "2026年3月4日 13:06 中国标准时间（GMT+08:00）"
    assert Reader("en").moment(at) == "Mar 4, 2026, 5:06\u202fAM UTC"
    assert Reader("en").moment(None) == "—"
    # A deployment's zone is every reader's, with its summer time where it has one.
    new_york = ZoneInfo("America/New_York")
    assert Reader("en", timezone=new_york).moment(at) == (
        "Mar 4, 2026, 12:06\u202fAM Eastern Standard Time (GMT-05:00)"
    )
    assert (
        Reader("en", timezone=new_york)
        .moment("2026-07-04T05:06:07Z")
        .endswith("1:06\u202fAM Eastern Daylight Time (GMT-04:00)")
    )
    assert Reader("zh-CN", timezone=ZoneInfo("UTC")).moment(at) == "2026年3月4日 05:06 UTC"
    assert Reader("zh-CN", timezone=ZoneInfo("Asia/Kolkata")).moment(at) == "2026年3月4日 10:36 GMT+05:30"
    # What the footer says the times are in.
    assert Reader("zh-CN").zone_title() == "中国标准时间（GMT+08:00）"
    assert Reader("en").zone_title() == "Coordinated Universal Time (UTC)"
    assert Reader("en", timezone=new_york).zone_title() == "United States (New York) Time"  # both seasons
    assert Reader("zh-CN", timezone=ZoneInfo("Etc/UTC")).zone_title() == "协调世界时（UTC）"


def test_the_time_zone_setting_takes_iana_names_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().timezone is None
    monkeypatch.setenv("LEDGER_TIMEZONE", "Europe/London")
    assert Settings().timezone == "Europe/London"
    for wrong in ("Mars/Olympus", "asia/shanghai", "Asia", "../../etc/passwd", "/etc/localtime", "x" * 5000):
        monkeypatch.setenv("LEDGER_TIMEZONE", wrong)
        with pytest.raises(ValidationError, match="not an IANA time zone name"):
            Settings()
    monkeypatch.setenv("LEDGER_TIMEZONE", "")
    assert Settings().timezone is None


# ------------------------------------------------------------------ languages


def test_the_language_comes_from_the_query_the_cookie_or_accept_language() -> None:
    assert from_accept_language("zh-CN,zh;q=0.9,en;q=0.8") == "zh-CN"
    assert from_accept_language("zh-TW") == "zh-CN"  # any Chinese
    assert from_accept_language("fr-FR, en;q=0.8, zh;q=0.5") == "en"
    assert from_accept_language("en-US;q=0.4, zh-HK;q=0.6") == "zh-CN"
    assert from_accept_language("zh;q=0, de") is None
    assert from_accept_language("*;q=0.5, ;;, q=") is None
    assert from_accept_language(None) is None
    assert language_of("ZH-cn") == "zh-CN" and language_of("en-GB") == "en" and language_of("fr") is None


def test_pages_speak_chinese_or_english(site: Site) -> None:
    service, made = site
    path = f"/donations/{made['donations'][2]['id']}"
    english = page(service, path)
    assert '<html lang="en">' in english.text and not CJK.search(text_of(parse(english), "amount"))
    assert english.headers["content-language"] == "en"
    assert "Accept-Language" in english.headers["vary"]
    chinese = page(service, path, headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert '<html lang="zh-CN">' in chinese.text
    assert "追踪" in chinese.text or "捐赠" in chinese.text
    assert text_of(parse(chinese), "amount") == "¥1,234.50"
    assert text_of(parse(english), "amount") == "CN¥1,234.50"
    assert "lang" not in chinese.cookies  # negotiated, not chosen: no cookie
    # ?lang= wins over the browser's languages, and is remembered in a cookie.
    chosen = page(service, path + "?lang=en", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en">' in chosen.text
    cookie = chosen.headers["set-cookie"]
    assert cookie.startswith("lang=en;") and "samesite=lax" in cookie.lower()
    remembered = page(service, path, headers={"Accept-Language": "en", "Cookie": "lang=zh-CN"})
    assert '<html lang="zh-CN">' in remembered.text
    overridden = page(service, path + "?lang=en", headers={"Cookie": "lang=zh-CN"})
    assert '<html lang="en">' in overridden.text
    # Every page has the switch, as links with hreflang.
    for path in public_paths(site):
        doc = parse(page(service, path))
        switch = {a.get("hreflang"): a.get("href") for a in doc.xpath("//a[@hreflang]")}
        assert switch == {"zh-CN": "?lang=zh-CN", "en": "?lang=en"}, path


def clock_of(when: datetime, lang: str) -> str:
    """The date and time a page should show for `when` (already on the reader's clock),
    written out here without Babel."""
    if lang == "zh-CN":
        return f"{when.year}年{when.month}月{when.day}日 {when:%H:%M}"
    return f"{when:%b} {when.day}, {when.year}, {when.hour % 12 or 12}:{when:%M}\u202f{when:%p}"


def test_chinese_pages_show_beijing_time_and_english_pages_utc_each_naming_it(site: Site) -> None:
    service, _ = site
    seen = 0
    for lang, zone, named, footer in (
        ("zh-CN", "Asia/Shanghai", "中国标准时间（GMT+08:00）", "时间均为中国标准时间（GMT+08:00）。"),
        ("en", "UTC", "UTC", "Times are in Coordinated Universal Time (UTC)."),
    ):
        for path in public_paths(site):
            doc = parse(page(service, f"{path}?lang={lang}"))
            for time in doc.xpath("//main//time"):
                when = datetime.fromisoformat(time.get("datetime")).astimezone(ZoneInfo(zone))
                assert time.text_content() == f"{clock_of(when, lang)} {named}", (path, lang)
                seen += 1
            assert footer in doc.xpath("//footer")[0].text_content(), (path, lang)
    assert seen > 20  # every kind of page that shows times was looked at


def test_a_configured_time_zone_is_every_pages_and_the_api_stays_in_utc(tmp_path: Any) -> None:
    new_york = ZoneInfo("America/New_York")
    settings = settings_for(tmp_path, None, f"sqlite:///{tmp_path / 'ledger.db'}", timezone=new_york.key)
    with serve(settings) as service:
        charity, key = service.charity()
        campaign = service.campaign(charity, key)
        donation = service.donate(campaign, key, 900)
        wait_for_mirror(service)
        recorded = service.get(f"/v1/donations/{donation['id']}").json()["proof"]["recorded_at"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", recorded)  # the JSON API: UTC
        summer = datetime.fromisoformat(recorded).astimezone(new_york).dst()
        offset = "GMT-04:00" if summer else "GMT-05:00"
        english = f"Eastern {'Daylight' if summer else 'Standard'} Time ({offset})"
        chinese = f"北美东部{'夏令' if summer else '标准'}时间（{offset}）"
        for lang, named, footer in (
            ("en", english, "Times are in United States (New York) Time."),
            ("zh-CN", chinese, "时间均为美国（纽约）时间。"),
        ):
            for path in (
                f"/donations/{donation['id']}",
                f"/donations/{donation['id']}/receipt",
                f"/campaigns/{campaign}",
                f"/charities/{charity}",
            ):
                doc = parse(page(service, f"{path}?lang={lang}"))
                times = doc.xpath("//main//time")
                assert times, path
                for time in times:
                    when = datetime.fromisoformat(time.get("datetime")).astimezone(new_york)
                    assert time.text_content() == f"{clock_of(when, lang)} {named}", (path, lang)
                assert footer in doc.xpath("//footer")[0].text_content()


# ------------------------------------------------------------------ pages and the API agree


def test_the_trace_page_shows_what_the_api_shows(site: Site) -> None:
    service, made = site
    for donation in [*made["donations"], made["yen"]]:
        trace = service.get(f"/v1/donations/{donation['id']}").json()
        response = page(service, f"/donations/{donation['id']}")
        doc = parse(response)
        for field in ("amount", "allocated", "refunded", "remaining"):
            assert value_of(doc, field) == trace[field], field
            assert text_of(doc, field) == money(trace[field], trace["currency"], "en"), field
        rows = hooks(doc, "allocation")
        assert sorted((r.get("data-disbursement"), int(r.get("data-value"))) for r in rows) == sorted(
            (a["disbursement"]["id"], a["amount"]) for a in trace["allocations"]
        )
        assert hooks(doc, "receipt-link")[0].get("href") == f"/donations/{trace['id']}/receipt"
        # Every step can be checked on a node: its transaction, block and log index.
        steps = [trace, *trace["allocations"], *trace["refunds"]]
        for step in steps:
            assert step["proof"]["tx_hash"] in response.text
            assert step["proof"]["block_hash"] in response.text
        assert response.text.count('<details class="verify">') >= len(steps)
        for command in ("cast receipt", "cast logs", "cast abi-decode", "cast call", "ledger verify"):
            assert command in response.text, command
        assert "Final (" in response.text  # in words, not only colour
        wide, narrow = svgs(response.text, "flow")  # the style sheet shows the one that fits
        assert (wide.get("data-layout"), narrow.get("data-layout")) == ("wide", "narrow")
        for flow in (wide, narrow):
            assert flow.find("{http://www.w3.org/2000/svg}title").text.startswith("Where donation")
        ids = doc.xpath("//@id")
        assert len(ids) == len(set(ids))  # aria-labelledby finds the right title
    # The donation that paid for the disbursement and was partly refunded.
    third = made["donations"][2]
    doc = parse(page(service, f"/donations/{third['id']}"))
    assert (value_of(doc, "allocated"), value_of(doc, "refunded"), value_of(doc, "remaining")) == (
        5_000,
        4_000,
        114_450,
    )
    [row] = hooks(doc, "allocation")
    assert row.get("data-disbursement") == made["disbursement"]
    sha = hashlib.sha256(INVOICE).hexdigest()
    [link] = row.xpath(f'.//a[@href="/v1/evidence/{sha}"]')
    assert service.get(link.get("href")).content == INVOICE
    assert HOSTILE_PURPOSE.replace("\u0001", "") in row.text_content()  # shown as text, escaped


def test_the_campaign_page_shows_what_the_api_shows(site: Site) -> None:
    service, made = site
    for campaign_id in (made["meals"], made["books"]):
        campaign = service.get(f"/v1/campaigns/{campaign_id}").json()
        response = page(service, f"/campaigns/{campaign_id}", headers={"Accept-Language": "zh-CN"})
        doc = parse(response)
        for field in ("received", "disbursed", "refunded", "available"):
            assert value_of(doc, field) == campaign[field], field
            assert text_of(doc, field) == money(campaign[field], campaign["currency"], "zh_CN"), field
        progress = doc.xpath("//progress")[0]
        assert (int(progress.get("value")), int(progress.get("max"))) == (
            campaign["received"],
            campaign["goal"],
        )
        for flow in svgs(response.text, "flow"):  # wide and narrow
            assert "项目" in flow.find("{http://www.w3.org/2000/svg}title").text
        ids = doc.xpath("//@id")
        assert len(ids) == len(set(ids))
        # Each table cell says what it is, for the phone layout that stacks a row's cells.
        for row in [*hooks(doc, "donation"), *hooks(doc, "disbursement")]:
            headings = [th.text_content() for th in row.xpath("ancestor::table//th")]
            assert [td.get("data-label") for td in row.xpath("td")] == headings
        # Both lists newest first, as the API gives them with order=newest.
        newest = {"order": "newest"}
        listed = service.get(f"/v1/campaigns/{campaign_id}/donations", params=newest).json()["items"]
        assert [int(r.get("data-value")) for r in hooks(doc, "donation")] == [d["amount"] for d in listed]
        paid = service.get(f"/v1/campaigns/{campaign_id}/disbursements", params=newest).json()["items"]
        assert [
            (r.get("data-disbursement"), int(r.get("data-value"))) for r in hooks(doc, "disbursement")
        ] == [(d["id"], d["amount"]) for d in paid]
    # Donations are amounts and times only: no donation IDs on the campaign page.
    text = page(service, f"/campaigns/{made['meals']}").text
    assert not any(d["id"] in text for d in made["donations"])
    assert "1 of 1 disbursements have documents anchored (100% of the amount paid out)" in text
    assert text_of(parse(page(service, f"/campaigns/{made['books']}")), "received") == "¥1,500"


def test_the_charity_and_disbursement_pages(site: Site) -> None:
    service, made = site
    charity = service.get(f"/v1/charities/{made['charity']}").json()
    doc = parse(page(service, f"/charities/{made['charity']}"))
    assert charity["name"] in doc.xpath("//h1")[0].text_content()
    shown = {
        (t.getparent().getparent().get("data-currency"), t.get("data-testid"), int(t.get("data-value")))
        for t in doc.xpath("//ul[@data-currency]//*[@data-value]")
    }
    expected = {
        (currency, field, totals[field])
        for currency, totals in charity["totals_by_currency"].items()
        for field in ("received", "disbursed", "refunded", "available")
    }
    assert shown == expected
    links = {a.get("href") for a in hooks(doc, "campaign")}
    assert links == {f"/campaigns/{c['id']}" for c in charity["campaigns"]}

    funding = service.get(f"/v1/disbursements/{made['disbursement']}").json()
    response = page(service, f"/disbursements/{made['disbursement']}")
    doc = parse(response)
    assert value_of(doc, "amount") == funding["amount"] == 35_000
    assert [int(r.get("data-value")) for r in hooks(doc, "funding")] == [
        f["amount"] for f in funding["funded_by"]
    ]
    assert not any(f["donation_id"] in response.text for f in funding["funded_by"])  # amounts and times only


def test_the_home_page_lists_charities_and_campaigns_with_totals(site: Site) -> None:
    service, made = site
    doc = parse(page(service, "/"))
    charities = service.get("/v1/charities").json()["items"]
    links = hooks(doc, "charity")
    assert [(a.get("href"), a.text_content()) for a in links] == [
        (f"/charities/{c['id']}", c["name"]) for c in charities
    ]
    assert {a.get("href") for a in hooks(doc, "campaign")} == {
        f"/campaigns/{made['meals']}",
        f"/campaigns/{made['books']}",
    }
    totals = charities[0]["totals_by_currency"]
    text = doc.text_content()
    assert money(totals["CNY"]["received"], "CNY", "en") in text
    assert money(totals["JPY"]["received"], "JPY", "en") in text
    # The search form: a labelled input and a submit button, working without JavaScript.
    [form] = doc.xpath('//form[@action="/search"]')
    assert form.get("method") == "get"
    assert doc.xpath('//label[@for="q"]') and form.xpath('.//input[@id="q"][@name="q"]')
    assert form.xpath('.//button[@type="submit"]')


def test_the_demo_charities_are_on_the_home_page(embedded_service: Service) -> None:
    made = load_demo(embedded_service.runtime, echo=lambda *_: None)
    wait_for_mirror(embedded_service)
    doc = parse(page(embedded_service, "/", headers={"Accept-Language": "zh-CN"}))
    # The third holds its own key; the last three pass money on to each other.
    organisations = [{**o, "campaigns": [o["campaign"]]} for o in made["organisations"]["charities"]]
    charities = [*made["charities"], made["self_custody"], *organisations]
    names = [c["name"] for c in charities]
    assert [a.text_content() for a in hooks(doc, "charity")] == names
    campaigns = {f"/campaigns/{c}" for charity in charities for c in charity["campaigns"]}
    assert {a.get("href") for a in hooks(doc, "campaign")} == campaigns
    # Each card's totals add up as a sceptical donor checks them: received - refunded -
    # disbursed = available (a card without the refunds once looked like missing money).
    shown = {}
    for language in ("en", "zh-CN"):
        home = parse(page(embedded_service, "/", headers={"Accept-Language": language}))
        shown[language] = [card.text_content() for card in hooks(home, "charity-totals")]
        assert len(shown[language]) == len(charities)
        for text in shown[language]:
            amounts = [Decimal(a.replace(",", "")) for a in re.findall(r"[\d,]+\.\d\d", text)]
            received, refunded, disbursed, available = amounts
            assert received - refunded - disbursed == available, text
    assert any("Refunded CN¥" in text and "Refunded CN¥0.00" not in text for text in shown["en"])
    assert all("已退款" in text for text in shown["zh-CN"])
    for path in campaigns:  # each demo campaign's page, with its diagram
        response = page(embedded_service, path)
        assert [f.get("data-layout") for f in svgs(response.text, "flow")] == ["wide", "narrow"]


# ------------------------------------------------------------------ errors


def test_unknown_ids_are_friendly_404_pages_in_the_readers_language(site: Site) -> None:
    service, _ = site
    for kind, prefix in (
        ("donation", "donations"),
        ("campaign", "campaigns"),
        ("charity", "charities"),
        ("disbursement", "disbursements"),
    ):
        unknown = ids.new(kind)
        english = page(service, f"/{prefix}/{unknown}", 404)
        assert "Not found" in english.text and unknown in english.text
        chinese = page(service, f"/{prefix}/{unknown.lower()}", 404, headers={"Accept-Language": "zh-CN"})
        assert '<html lang="zh-CN">' in chinese.text and "未找到" in chinese.text
        assert unknown in chinese.text  # the canonical ID that was asked for
    page(service, "/donations/DN-0000-0000-0000-0000", 404)


CHROME = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,"
    "*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
UNKNOWN = ("/nope", "/v1/nope", "/v1/donations/DN-0000-0000-0000-0000/nope", "/donations", "/static/nope.css")


def test_browsers_get_an_html_404_page_for_an_unknown_address_anywhere(site: Site) -> None:
    service, _ = site
    for path in UNKNOWN:
        for accept in (CHROME, FIREFOX, "text/html", "text/*", "application/json;q=0.5, text/html"):
            english = page(service, path, 404, headers={"Accept": accept})
            assert "Not found" in english.text and "urn:charity-ledger" not in english.text, (path, accept)
            assert english.headers["content-security-policy"].startswith("default-src 'none'")
            assert "Accept" in english.headers["vary"].split(", ")
            assert parse(english).xpath("//form[@action='/search']")  # the search box, to go on from
        chinese = page(service, path, 404, headers={"Accept": CHROME, "Accept-Language": "zh-CN,zh;q=0.9"})
        assert '<html lang="zh-CN">' in chinese.text and "未找到" in chinese.text
    # A method the address does not take: a 405 page, still naming the methods it does take.
    for method, path, allowed in (
        ("GET", "/v1/keys", "POST"),
        ("POST", "/", "GET"),
        ("DELETE", "/v1/charities", ""),
    ):
        service.client.cookies.clear()
        answer = service.client.request(method, path, headers={"Accept": CHROME, "Accept-Language": "zh"})
        assert answer.status_code == 405, (method, path)
        assert (
            answer.headers["content-type"].startswith("text/html") and "这个地址不接受这种请求" in answer.text
        )
        assert allowed in answer.headers["allow"]


def test_api_clients_keep_getting_problem_json_for_unknown_addresses(site: Site) -> None:
    service, _ = site
    expected = {"type": "urn:charity-ledger:problem:not-found", "title": "Not Found", "status": 404}
    for path in UNKNOWN:
        for accept in (
            None,  # no Accept header at all
            "*/*",
            "application/json",
            "application/problem+json",
            "text/html, application/json",  # no preference for HTML: JSON
            "application/json, text/html;q=0.9",
            "text/html;q=0.5, */*",
            "text/css,*/*;q=0.1",  # a style sheet
            "garbage, ;;;",
        ):
            with httpx.Client(base_url=service.base, timeout=10) as client:
                del client.headers["accept"]  # httpx sends */* unless told otherwise
                answer = client.get(path, headers={} if accept is None else {"Accept": accept})
            assert answer.status_code == 404, (path, accept)
            assert answer.headers["content-type"] == "application/problem+json", (path, accept)
            assert answer.json() == {**expected, "detail": "Not Found", "instance": path}
    answer = service.get("/v1/keys", headers={"Accept": "application/json"})
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:charity-ledger:problem:method-not-allowed"
    # An unknown record on a JSON route is the API's own 404, whoever asks.
    record = service.get("/v1/donations/DN-0000-0000-0000-0000", headers={"Accept": CHROME})
    assert record.status_code == 404 and record.headers["content-type"] == "application/problem+json"


def test_malformed_ids_are_friendly_422_pages(site: Site) -> None:
    service, made = site
    for path in (
        "/donations/nope",
        f"/donations/{made['meals']}",  # a campaign's ID where a donation's goes
        f"/campaigns/{made['donations'][0]['id']}",
        "/charities/CH-UUUU-0000-0000-0000",  # U is not in the alphabet
        "/disbursements/" + "x" * 5000,
        f"/donations/0x{'0' * 64}",
        f"/campaigns/{made['meals']}?donations=not-a-cursor",
        "/?charities=garbage",
    ):
        response = page(service, path, 422)
        assert "<h1>" in response.text
    chinese = page(service, "/donations/nope", 422, headers={"Accept-Language": "zh"})
    assert "编号无效" in chinese.text


def test_an_unexpected_failure_is_a_500_page_not_a_stack_trace(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, made = site

    def broken(*_: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(routes, "trace", broken)
    response = page(service, f"/donations/{made['donations'][0]['id']}", 500)
    assert "secret internals" not in response.text and "Something went wrong" in response.text


# ------------------------------------------------------------------ the receipt


def test_the_receipt_has_a_qr_code_of_the_absolute_trace_url_and_no_secret(site: Site) -> None:
    service, made = site
    donation = made["donations"][1]
    response = page(service, f"/donations/{donation['id']}/receipt")
    doc = parse(response)
    assert len(hooks(doc, "receipt")) == 1
    url = f"{service.base}/donations/{donation['id']}?depth=5"  # with every hop of grants onward
    [qr] = svgs(response.text, "qr")
    assert qr.get("data-url") == url
    assert qr.find("{http://www.w3.org/2000/svg}title") is not None
    assert url in doc.text_content()  # printed under the code too
    assert value_of(doc, "amount") == donation["amount"]
    for secret in (d["receipt_secret"] for d in [*made["donations"], made["yen"]]):
        assert secret[2:].lower() not in response.text.lower()
    assert "no-store" not in response.headers.get("cache-control", "")
    # The form the charity uses posts to the same address, with a labelled field.
    [form] = doc.xpath('//form[@method="post"]')
    assert form.get("action") == f"/donations/{donation['id']}/receipt"
    assert doc.xpath('//label[@for="receipt_secret"]') and form.xpath('.//input[@name="receipt_secret"]')


def test_a_charity_prints_the_receipt_with_the_secret_by_posting_it(site: Site) -> None:
    service, made = site
    donation = made["donations"][1]
    path = f"/donations/{donation['id']}/receipt"
    secret = donation["receipt_secret"]
    spaced = "  " + DONOR.replace(" ", "\u3000  ") + "\t"
    response = service.post(
        path, data={"receipt_secret": f"  {secret.upper().replace('0X', '0x')}\n", "donor_reference": spaced}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("text/html")
    doc = parse(response)
    assert text_of(doc, "receipt-secret") == secret.lower()
    # The reference the donor will type, as it was hashed (normalised).
    assert text_of(doc, "receipt-reference") == DONOR
    assert (
        svgs(response.text, "qr")[0].get("data-url") == f"{service.base}/donations/{donation['id']}?depth=5"
    )
    assert secret not in str(response.url)
    # Not a secret's shape: a friendly page, the input not echoed, nothing cached.
    for bad in ("0x1234", "", "hello " * 10, "0x" + "g" * 64):
        refused = service.post(path, data={"receipt_secret": bad, "donor_reference": DONOR})
        assert refused.status_code == 422 and refused.headers["content-type"].startswith("text/html")
        assert "receipt secret is 0x followed by 64 hexadecimal digits" in refused.text
        assert (bad not in refused.text) if len(bad) > 6 else True
        assert refused.headers["cache-control"] == "no-store"
        assert not hooks(parse(refused), "receipt-secret")
    assert service.post(path, content=b"{}", headers={"Content-Type": "application/json"}).status_code == 422
    too_long = service.post(path, data={"receipt_secret": "0x" + "a" * 500, "donor_reference": DONOR})
    assert too_long.status_code == 422 and too_long.headers["content-type"].startswith("text/html")
    missing = service.post(
        f"/donations/{ids.new('donation')}/receipt", data={"receipt_secret": secret, "donor_reference": DONOR}
    )
    assert missing.status_code == 404 and secret not in missing.text


def test_the_receipt_with_a_secret_is_printed_only_when_secret_and_reference_match(site: Site) -> None:
    """A well-formed secret that is not this donation's, or a reference that is not the one
    recorded, prints nothing: a clear message, neither input on the page, nothing cached. A
    secret cannot be checked without its reference, so the reference is required."""
    service, made = site
    donation, other = made["donations"][1], made["donations"][0]
    path = f"/donations/{donation['id']}/receipt"
    wrong = [
        (other["receipt_secret"], DONOR),  # another donation's secret (same donor)
        ("0x" + "ab" * 32, DONOR),
        (donation["receipt_secret"], DONOR + "3"),  # a real character more
    ]
    for secret, reference in wrong:
        for language, said in (("en", "do not match"), ("zh-CN", "不一致")):
            refused = service.post(
                path,
                data={"receipt_secret": secret, "donor_reference": reference},
                headers={"Accept-Language": language},
            )
            assert refused.status_code == 422, refused.text
            assert refused.headers["cache-control"] == "no-store"
            doc = parse(refused)
            assert said in text_of(doc, "receipt-mismatch")
            assert not hooks(doc, "receipt-secret") and not hooks(doc, "receipt-reference")
            assert secret[2:].lower() not in refused.text.lower()
            assert reference not in refused.text
    for reference, said in (
        ("", "reference is needed"),
        ("\u3000 ", "reference is needed"),
        ("x\x07", "control"),
    ):
        refused = service.post(
            path, data={"receipt_secret": donation["receipt_secret"], "donor_reference": reference}
        )
        assert refused.status_code == 422 and said in refused.text, refused.text
        assert donation["receipt_secret"][2:] not in refused.text
        assert not hooks(parse(refused), "receipt-secret")


def test_the_style_sheet_prints_the_receipt_on_a5(site: Site) -> None:
    service, _ = site
    css = service.get("/static/site.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert re.search(r"@page receipt\s*{\s*size:\s*A5", css.text)
    assert "@media print" in css.text and "Noto Sans CJK SC" in css.text
    assert "url(" not in css.text and "@import" not in css.text  # nothing from elsewhere


# ------------------------------------------------------------------ search


def test_search_redirects_ids_as_people_type_them_and_pasted_urls(site: Site) -> None:
    service, made = site
    donation = made["donations"][0]["id"]
    confusable = donation.replace("0", "O").replace("1", "l")
    compact = donation.replace("-", "").lower()
    for query in (
        donation,
        donation.lower(),
        f"  {confusable}  ",
        compact,
        donation.replace("-", " "),
        f"{service.base}/donations/{donation.lower()}",
        f"https://ledger.example.org/donations/{donation}/receipt?lang=zh-CN",
        f"http://127.0.0.1:8000/v1/donations/{donation}",
        ids.to_hex(donation),
    ):
        response = service.get("/search", params={"q": query})
        assert response.status_code == 303, (query, response.status_code, response.text[:300])
        assert response.headers["location"] == f"/donations/{donation}", query
    other = service.get("/search", params={"q": made["meals"].lower()})
    assert (other.status_code, other.headers["location"]) == (303, f"/campaigns/{made['meals']}")
    # A bad query: the home page again, with a message, in the reader's language.
    for query in ("hello", "DN-1234", "https://example.org/", "RF-0000-0000-0000-0000", "x" * 1000):
        bad = page(service, "/search", 422, params={"q": query})
        assert "That does not look like a donation ID" in bad.text
        assert parse(bad).xpath('//input[@id="q"][@aria-invalid="true"]')
    empty = page(service, "/search?q=", 422, headers={"Accept-Language": "zh-CN"})
    assert "请输入捐赠编号" in empty.text
    # The language switch on that page leads to the home page in the other language.
    switched = page(service, "/search?lang=en")
    assert '<html lang="en">' in switched.text and 'aria-invalid="true"' not in switched.text
    followed = service.get("/search", params={"q": donation.lower()}, follow_redirects=True)
    assert followed.status_code == 200 and f"/donations/{donation}" in str(followed.url)


# ------------------------------------------------------------------ privacy and no script


def test_no_page_shows_a_donor_commitment_or_a_donor_reference_and_operators_only_to_verify(
    site: Site,
) -> None:
    """Operator accounts are public on the chain: they appear only where a record's event is
    decoded ("Verify it yourself"), as cast prints them; never a donor's commitment."""
    service, made = site
    trail: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        answer = service.get("/v1/audit/trail", made["auditor"], params=params).json()
        trail += answer["items"]
        cursor = answer["next"]
        if cursor is None:
            break
    commitments = {
        e["data"]["donor_commitment"][2:].lower() for e in trail if "donor_commitment" in e["data"]
    }
    operators = {e["sender"][2:].lower() for e in trail if e["sender"]}
    operators |= {o[2:].lower() for o in service.get(f"/v1/charities/{made['charity']}").json()["operators"]}
    assert len(commitments) == 4 and operators
    for path in public_paths(site):
        for language in ("en", "zh-CN"):
            response = page(service, path, headers={"Accept-Language": language})
            body = response.text.lower()
            for secret in commitments:
                assert secret not in body, (path, secret)
            assert DONOR.lower() not in body, path
            doc = parse(response)
            for box in doc.xpath('//details[@class="verify"]'):
                box.drop_tree()
            outside = lxml_html.tostring(doc, encoding="unicode").lower()
            for operator in operators:
                assert operator not in outside, (path, operator)


def test_pages_have_no_script_and_load_nothing_from_elsewhere(site: Site) -> None:
    service, _ = site
    for path in public_paths(site):
        response = page(service, path)
        assert "<script" not in response.text.lower(), path
        assert not re.search(r"\son[a-z]+\s*=", response.text), path  # no inline handlers
        doc = parse(response)
        assert not doc.xpath("//*[@src]"), path
        assert [link.get("href") for link in doc.xpath("//link[@rel='stylesheet']")] == [
            "/static/site.css"
        ], path
        for link in doc.xpath("//link[not(@rel='stylesheet')]"):  # the record's own feed, on this site
            assert link.get("rel") == "alternate" and link.get("type") == "application/atom+xml", path
            assert re.fullmatch(
                r"/v1/(donations|campaigns|charities)/[^/]+/feed\.atom\?lang=(en|zh-CN)", link.get("href")
            )
        assert doc.xpath("//meta[@name='viewport']"), path
        assert doc.xpath("//header") and doc.xpath("//main") and doc.xpath("//footer") and doc.xpath("//nav")
        assert doc.xpath('//a[@class="skip"][@href="#main"]') and doc.xpath('//main[@id="main"]'), path
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy, path
        for element in doc.xpath("//input[not(@type='hidden')]"):  # every control is labelled
            assert doc.xpath(f'//label[@for="{element.get("id")}"]'), (path, element.get("id"))


# ------------------------------------------------------------------ the diagrams


def attributes(value: Any) -> Any:
    """A trace or flows given as JSON, with attributes like the read services' answers (a
    JSON edge's `from` is the answer's `source`)."""
    if isinstance(value, dict):
        return SimpleNamespace(**{"source" if k == "from" else k: attributes(v) for k, v in value.items()})
    if isinstance(value, list):
        return [attributes(v) for v in value]
    return value


def test_the_flow_diagram_is_escaped_well_formed_and_to_scale() -> None:
    words = svg.Words(money=lambda amount: f"¥{amount}", title='A <b>"title"</b>', description="d & d")
    trace = {
        "amount": 9_105,
        "refunded": 1_000,
        "remaining": 2_000,
        "allocations": [  # 400 + 401 + ... + 414 = 6,105
            {
                "amount": 400 + i,
                "disbursement": {
                    "id": f"DB-{i:04d}-0000-0000-0000",
                    "purpose": f"<script>x</script>\u0007 {i} & ' \" 很长的用途说明文字" * 3,
                    "recipient": "r",
                },
            }
            for i in range(15)
        ],
    }
    markup = svg.trace_diagram(attributes(trace), words)
    root = etree.fromstring(markup.encode())
    ns = "{http://www.w3.org/2000/svg}"
    assert root.find(f"{ns}title").text == 'A <b>"title"</b>' and root.get("data-testid") == "flow"
    assert root.find(f".//{ns}script") is None and "<script>" not in markup
    labels = [t.text for t in root.iter(f"{ns}text")]
    assert len([t for t in labels if t and t.startswith("<script>")]) == svg.MAX_TARGETS - 1  # shortened
    assert "Other disbursements" in labels and "Refunded" in labels and "Not yet spent" in labels
    # Band thickness is proportional to the amount: the refund's bar is half the remainder's.
    bars = {
        g.find(f"{ns}title").text.split(":")[0]: float(g.find(f"{ns}rect").get("height"))
        for g in root.iter(f"{ns}g")
        if g.get("class", "").startswith("node")
    }
    assert bars["Not yet spent"] == pytest.approx(2 * bars["Refunded"], abs=0.02)

    flows = {
        "sources": [
            {"id": f"donations:2026-0{m} · wechat-pay", "label": f"2026-0{m} · wechat-pay", "amount": 100}
            for m in range(1, 4)
        ],
        "targets": [
            {"id": "disbursement:DB-1", "label": "meals", "amount": 150},
            {"id": "unspent", "label": "not yet spent", "amount": 150},
        ],
        "edges": [
            {"from": "donations:2026-01 · wechat-pay", "to": "disbursement:DB-1", "amount": 100},
            {"from": "donations:2026-02 · wechat-pay", "to": "disbursement:DB-1", "amount": 50},
            {"from": "donations:2026-02 · wechat-pay", "to": "unspent", "amount": 50},
            {"from": "donations:2026-03 · wechat-pay", "to": "unspent", "amount": 100},
        ],
    }
    chinese = svg.Words(
        money=str, title="t", description="d", unspent="尚未使用", channel=Reader("zh-CN").channel
    )
    root = etree.fromstring(svg.campaign_diagram(attributes(flows), chinese).encode())
    labels = [t.text for t in root.iter(f"{ns}text")]
    assert "2026-01 · 微信支付" in labels and "尚未使用" in labels
    assert len(root.findall(f".//{ns}path")) == 4


def test_the_narrow_diagram_fits_a_phone_and_tells_the_same_story() -> None:
    """A 390-pixel phone has 356 pixels inside the page's margins: the narrow layout fits
    there at its natural size, with every amount the wide one shows and the same bands."""
    ns = "{http://www.w3.org/2000/svg}"
    words = svg.Words(money=lambda amount: money(amount, "CNY", "zh_CN"), title="t", description="d")
    trace = {
        "amount": 1_234_500,
        "refunded": 4_000,
        "remaining": 114_450,
        "allocations": [
            {
                "amount": 50_000 + i,
                "disbursement": {"id": f"DB-{i}", "purpose": "大米和食用油 " * 5, "recipient": ""},
            }
            for i in range(20)
        ],
    }
    flows = {
        "sources": [
            {"id": f"s{m}", "label": f"2026-{m:02d} · wechat-pay", "amount": 100_000} for m in range(1, 13)
        ],
        "targets": [{"id": "unspent", "label": "", "amount": 1_200_000}],
        "edges": [{"from": f"s{m}", "to": "unspent", "amount": 100_000} for m in range(1, 13)],
    }
    chinese = svg.Words(money=words.money, title="t", description="d", channel=Reader("zh-CN").channel)
    trace, flows = attributes(trace), attributes(flows)
    for wide, narrow in (
        (svg.trace_diagram(trace, words), svg.trace_diagram(trace, words, svg.NARROW)),
        (svg.campaign_diagram(flows, chinese), svg.campaign_diagram(flows, chinese, svg.NARROW)),
    ):
        drawn = [etree.fromstring(markup.encode()) for markup in (wide, narrow)]
        widths = [float(root.get("viewBox").split()[2]) for root in drawn]
        assert widths[1] <= 356 < widths[0], widths
        texts = [[t.text for t in root.iter(f"{ns}text")] for root in drawn]
        amounts = [[t for t in labels if t and t.startswith("¥")] for labels in texts]
        assert amounts[0] == amounts[1] and len(amounts[0]) >= 12
        heights = [[r.get("height") for r in root.iter(f"{ns}rect")] for root in drawn]
        assert heights[0] == heights[1]  # the same bars, to the same scale
        assert [r.get("class") for r in drawn] == ["flow flow-wide", "flow flow-narrow"]


def test_receipts_link_to_the_public_address_when_one_is_set(tmp_path: Any) -> None:
    """Behind a proxy the request's own address is not the one donors can reach."""
    from tests.api.service import serve, settings_for

    settings = settings_for(
        tmp_path, None, f"sqlite:///{tmp_path / 'ledger.db'}", public_url="https://ledger.example.org/"
    )
    with serve(settings) as service:
        charity, key = service.charity()
        campaign = service.campaign(charity, key)
        donation = service.donate(campaign, key, 900)
        wait_for_mirror(service)
        page = service.get(f"/donations/{donation['id']}/receipt")
        assert page.status_code == 200, page.text
        tree = lxml_html.fromstring(page.text)
        (qr,) = tree.xpath("//*[@data-testid='qr']")
        assert qr.get("data-url") == f"https://ledger.example.org/donations/{donation['id']}?depth=5"
