"""The console sends a grant to another campaign on the ledger, and the receiving charity
sees it among the grants not yet recorded and records it with one click; another charity
can neither see nor record it."""

from __future__ import annotations

from lxml import html as lxml_html

from tests.api.checks import wait_for_mirror
from tests.console.conftest import Ledger, sign_in


def test_a_grant_goes_out_from_the_form_and_is_recorded_with_one_click(ledger: Ledger) -> None:
    service = ledger.service
    paying = service.campaign(ledger.charity, ledger.key)
    service.donate(paying, ledger.key, 50_000)
    receiving_charity, receiving_key = service.charity("County Education Bureau")
    receiving = service.campaign(receiving_charity, receiving_key)
    wait_for_mirror(service)

    payer = sign_in(service, ledger.key)
    sent = payer.post(
        f"/console/campaigns/{paying}/disbursements",
        {
            "amount": "120.00",
            "recipient": "County Education Bureau",
            "purpose": "School meals grant",
            "allocation": "fifo",
            "recipient_campaign": receiving,
        },
    )
    assert sent.status_code == 303, sent.text
    grant = sent.headers["location"].split("/")[-1].split("?")[0]
    # Granting to itself is refused at the field.
    itself = payer.post(
        f"/console/campaigns/{paying}/disbursements",
        {
            "amount": "1",
            "recipient": "Me",
            "purpose": "x",
            "allocation": "fifo",
            "recipient_campaign": paying,
        },
    )
    assert itself.status_code == 422
    [field] = lxml_html.fromstring(itself.text).xpath('//input[@name="recipient_campaign"]')
    assert field.get("aria-invalid") == "true"
    wait_for_mirror(service)

    receiver = sign_in(service, receiving_key, "zh-CN")
    shown = receiver.client.get(f"/console/campaigns/{receiving}")
    doc = lxml_html.fromstring(shown.text)
    [item] = doc.xpath('//*[@data-testid="incoming-grant"]')
    assert item.get("data-disbursement") == grant and item.get("data-value") == "12000"
    assert "已收到、尚未入账的资助" in shown.text
    [form] = item.xpath(".//form")
    amount = form.xpath('.//input[@name="amount"]')[0].get("value")
    assert amount == "120.00"
    # The paying charity cannot record it into a campaign it does not own.
    assert payer.post(f"/console/campaigns/{receiving}/grants/{grant}", {"amount": amount}).status_code == 404
    recorded = receiver.post(form.get("action"), {"amount": amount})
    assert recorded.status_code == 303, recorded.text
    assert recorded.headers["location"].endswith("?grant_recorded=1")
    wait_for_mirror(service)
    after = lxml_html.fromstring(receiver.client.get(recorded.headers["location"]).text)
    assert after.xpath('//*[@data-testid="incoming-grant"]') == []
    assert service.get(f"/v1/campaigns/{receiving}").json()["received"] == 12_000
    # Recording it again would overdraw it: the contract's refusal, in the bookkeeper's words.
    again = receiver.post(form.get("action"), {"amount": amount})
    assert again.status_code == 409
    [refusal] = lxml_html.fromstring(again.text).xpath('//*[@data-testid="refusal"]')
    assert refusal.text_content() == "该资助尚可入账 ¥0.00；您要入账 ¥120.00。"  # noqa: RUF001
