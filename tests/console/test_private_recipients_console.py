"""A private recipient in the console: the disbursement form takes a person's details
instead of "Paid to", records only their commitment, and prints a slip with the secret to
hand over (never the details); a form sent back with an error does not carry the details;
a self-custody charity signs it and gets the same slip after relaying."""

from __future__ import annotations

import html
import re

from ledger_api.core import reference
from tests.api.checks import wait_for_mirror
from tests.api.test_self_custody import own_key_charity
from tests.console.conftest import Ledger, sign_in
from tests.console.test_console import new_campaign
from tests.console.test_self_custody import relay_form, signature, typed_data

DETAILS = "李娜 330106198512120021"
SECRET = re.compile(r'data-testid="recipient-secret">(0x[0-9a-f]{64})<')


def _proves(ledger: Ledger, disbursement: str, secret: str) -> bool:
    checked = ledger.service.post(
        f"/v1/disbursements/{disbursement}/recipient-proof", json={"reference": DETAILS, "secret": secret}
    )
    assert checked.status_code == 200, checked.text
    return bool(checked.json()["matches"])


def test_a_payment_to_a_private_person_prints_a_slip_and_keeps_no_details(ledger: Ledger) -> None:
    staff = sign_in(ledger.service, ledger.key)
    campaign = new_campaign(staff, "Winter relief")
    given = staff.post(f"/console/campaigns/{campaign}/donations", {"amount": "500", "donor_reference": "D"})
    assert given.status_code == 200, given.text
    form = {"amount": "100", "recipient_person": DETAILS, "purpose": "Heating", "allocation": "fifo"}

    # Errors come back without the details: both recipients, a bad amount, a control character.
    for bad in (
        {**form, "recipient": "Bus Co"},
        {**form, "amount": "abc"},
        {**form, "recipient_person": DETAILS + "\u0007"},
    ):
        refused = staff.post(f"/console/campaigns/{campaign}/disbursements", bad)
        assert refused.status_code == 422, refused.text
        assert "李娜" not in refused.text and "330106198512120021" not in refused.text
    assert (
        "either"
        in staff.post(f"/console/campaigns/{campaign}/disbursements", {**form, "recipient": "X"}).text
    )

    slip = staff.post(f"/console/campaigns/{campaign}/disbursements", form)
    assert slip.status_code == 200, slip.text
    assert 'data-testid="recipient-slip"' in slip.text
    assert "李娜" not in slip.text and "330106198512120021" not in slip.text
    (secret,) = SECRET.findall(slip.text)
    (disbursement,) = re.findall(r'class="receipt-id">(DB-[0-9A-Z-]+)<', slip.text)
    assert _proves(ledger, disbursement, secret)
    public = ledger.service.get(f"/v1/disbursements/{disbursement}").json()
    assert public["recipient"] == reference.private_recipient(bytes.fromhex(secret[2:]), DETAILS)
    shown = staff.client.get(f"/console/disbursements/{disbursement}").text
    assert "a private person (identity withheld)" in html.unescape(shown)
    zh = sign_in(ledger.service, ledger.key, "zh-CN")
    assert "私人受助者" in zh.client.get(f"/console/campaigns/{campaign}").text


def test_a_self_custody_charity_signs_a_private_payment_and_gets_the_slip(ledger: Ledger) -> None:
    charity = own_key_charity(ledger.service.base, "Lake School")
    campaign = charity.campaign()
    charity.write("/v1/donations", {"campaign_id": campaign, "amount": 50_000, "donor_reference": "d"})
    wait_for_mirror(ledger.service)
    staff = sign_in(ledger.service, charity.api_key)
    form = {"amount": "100", "recipient_person": DETAILS, "purpose": "Books", "allocation": "fifo"}
    prepared = staff.post(f"/console/campaigns/{campaign}/disbursements", form)
    assert prepared.status_code == 200, prepared.text
    assert "李娜" not in prepared.text and "330106198512120021" not in prepared.text
    (typed,) = typed_data(prepared.text)
    slip = staff.post("/console/relay", relay_form(prepared.text, [signature(typed, charity.account)]))
    assert slip.status_code == 200, slip.text
    (secret,) = SECRET.findall(slip.text)
    (disbursement,) = re.findall(r'class="receipt-id">(DB-[0-9A-Z-]+)<', slip.text)
    assert _proves(ledger, disbursement, secret)
