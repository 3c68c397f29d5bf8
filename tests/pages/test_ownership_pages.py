"""The donor's ownership check on the trace page: a form with no script that POSTs the
receipt secret and the donor reference; the answer page says whether they match the
donation's on-chain commitment (spacing and Unicode form do not count), in English or
Chinese, echoes neither, is never cached, and bad input is a message on the page."""

from __future__ import annotations

import unicodedata
from typing import Any

import httpx
import pytest
from lxml import html as lxml_html

from ledger_api.core import ids
from tests.api.service import Service
from tests.pages.conftest import DONOR

Site = tuple[Service, dict[str, Any]]


def ask(
    service: Service, donation_id: str, secret: str, reference: str, language: str = "en"
) -> httpx.Response:
    service.client.cookies.clear()
    response = service.post(
        f"/donations/{donation_id}/ownership",
        data={"receipt_secret": secret, "donor_reference": reference},
        headers={"Accept-Language": language},
    )
    assert response.headers["content-type"].startswith("text/html"), response.text[:300]
    assert "Traceback" not in response.text
    return response


def answer_of(response: httpx.Response) -> str | None:
    found = lxml_html.fromstring(response.text).xpath('//*[@data-testid="ownership-answer"]')
    return str(found[0].get("data-matches")) if found else None


def test_the_trace_page_has_a_form_that_posts_the_secret_and_the_reference(site: Site) -> None:
    service, made = site
    donation = made["donations"][0]
    page = service.get(f"/donations/{donation['id']}")
    doc = lxml_html.fromstring(page.text)
    [form] = doc.xpath('//form[@data-testid="ownership-form"]')
    assert form.get("method") == "post" and form.get("action") == f"/donations/{donation['id']}/ownership"
    for name in ("receipt_secret", "donor_reference"):
        [field] = form.xpath(f'.//input[@name="{name}"]')
        assert doc.xpath(f'//label[@for="{field.get("id")}"]'), name
        assert field.get("autocomplete") == "off"
    assert not doc.xpath("//script")
    said = doc.xpath('//section[@aria-labelledby="ownership-heading"]')[0].text_content()
    assert "nobody else" not in said and "So can the charity that recorded it" in said


@pytest.mark.parametrize(
    "typed",
    [
        DONOR,
        f"  {DONOR}\n",
        DONOR.replace(" ", " \t "),
        DONOR.replace(" ", "\u00a0"),
        DONOR.replace(" ", "\u3000"),
        unicodedata.normalize("NFD", DONOR),
    ],
)
def test_the_answer_page_says_they_match_whatever_the_spacing(site: Site, typed: str) -> None:
    service, made = site
    donation = made["donations"][0]
    response = ask(service, donation["id"], donation["receipt_secret"], typed)
    assert response.status_code == 200, response.text
    assert answer_of(response) == "true"
    assert "They match" in response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert donation["receipt_secret"][2:].lower() not in response.text.lower()
    assert DONOR not in response.text and typed not in response.text
    assert "<script" not in response.text


def test_the_answer_page_says_they_do_not_match_in_both_languages(site: Site) -> None:
    service, made = site
    mine, other = made["donations"][0], made["donations"][1]
    for secret, reference in (
        (mine["receipt_secret"], DONOR + "!"),
        (mine["receipt_secret"], DONOR.replace("Wang", "wang")),
        (other["receipt_secret"], "Someone else"),
        ("0x" + "00" * 32, DONOR),
    ):
        for language, said in (("en", "do not match"), ("zh-CN", "不一致")):
            response = ask(service, mine["id"], secret, reference, language)
            assert response.status_code == 200
            assert answer_of(response) == "false" and said in response.text
            assert secret[2:] not in response.text and reference not in response.text


@pytest.mark.parametrize(
    ("secret", "reference", "en", "zh"),
    [
        ("0x1234", DONOR, "0x followed by 64 hexadecimal digits", "64 位十六进制数字"),
        ("", DONOR, "0x followed by 64 hexadecimal digits", "64 位十六进制数字"),
        ("0x" + "g" * 64, DONOR, "0x followed by 64 hexadecimal digits", "64 位十六进制数字"),
        (None, "", "A donor reference is needed", "需要填写捐赠人参考信息"),
        (None, " \u3000\t", "A donor reference is needed", "需要填写捐赠人参考信息"),
        (None, "x" * 201, "at most 200 characters", "最多 200 个字符"),
        (None, "x" * 401, "at most 200 characters", "最多 200 个字符"),
        (None, "王芳" * 300, "at most 200 characters", "最多 200 个字符"),
        (None, "Wang\x1b[2JFang", "control characters", "控制字符"),
        (None, "Wang\u202eFang", "control characters", "控制字符"),
        (None, "Wang\x00Fang", "control characters", "控制字符"),
    ],
)
def test_bad_input_is_a_message_on_the_page_never_an_error(
    site: Site, secret: str | None, reference: str, en: str, zh: str
) -> None:
    service, made = site
    donation = made["donations"][0]
    typed_secret = donation["receipt_secret"] if secret is None else secret
    for language, said in (("en", en), ("zh-CN", zh)):
        response = ask(service, donation["id"], typed_secret, reference, language)
        assert response.status_code == 422, response.text[:500]
        assert said in response.text
        assert answer_of(response) is None
        assert response.headers["cache-control"] == "no-store"
        assert donation["receipt_secret"][2:] not in response.text
        if len(reference) > 3:
            assert reference not in response.text


def test_an_unknown_or_malformed_donation_and_an_oversized_body_are_pages(site: Site) -> None:
    service, made = site
    secret = made["donations"][0]["receipt_secret"]
    unknown = ask(service, ids.new("donation"), secret, DONOR)
    assert unknown.status_code == 404 and secret[2:] not in unknown.text
    assert ask(service, "DN-1234", secret, DONOR).status_code == 422
    huge = service.post(
        f"/donations/{made['donations'][0]['id']}/ownership",
        data={"receipt_secret": secret, "donor_reference": "x" * 20_000},
    )
    assert huge.status_code == 413
    json_body = service.post(
        f"/donations/{made['donations'][0]['id']}/ownership",
        json={"receipt_secret": secret, "donor_reference": DONOR},
    )
    assert json_body.status_code == 422 and answer_of(json_body) is None


def test_the_language_switch_of_an_answer_page_leads_back_to_the_form(site: Site) -> None:
    service, made = site
    donation = made["donations"][0]
    path = f"/donations/{donation['id']}/ownership"
    switched = service.get(path, params={"lang": "zh-CN"}, follow_redirects=False)
    assert switched.status_code == 303
    assert switched.headers["location"] == f"/donations/{donation['id']}?lang=zh-CN#ownership-heading"
    followed = service.get(path, params={"lang": "zh-CN"}, follow_redirects=True)
    assert followed.status_code == 200 and "核对" in followed.text
    odd = service.get(path, params={"lang": "<x>"}, follow_redirects=False)
    assert odd.headers["location"] == f"/donations/{donation['id']}#ownership-heading"
