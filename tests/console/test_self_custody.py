"""A self-custody charity in the console: each record is prepared (nothing sent), signed
by the charity's own key off the platform (here: `ledger sign --keystore`, as the sign
page says, and eth-account in the test for a pasted signature), and relayed; a wrong
signature or one by another key relays nothing."""

from __future__ import annotations

import html
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger_api.chain import signed_calls
from ledger_api.core.hexes import unhex
from tests.api.service import ADMIN_KEY
from tests.console.conftest import Ledger, Staff, sign_in
from tests.test_cli_signing import PASSPHRASE, _ledger

TYPED = re.compile(r'data-testid="typed-data" data-index="(\d+)">([^<]+)<')
COMMAND = re.compile(r'data-testid="command">([^<]+)<')
HIDDEN = re.compile(r'<input type="hidden" name="([a-z_0-9]+)" value="([^"]*)">')


def typed_data(page: str) -> list[dict[str, object]]:
    return [json.loads(html.unescape(text)) for _, text in TYPED.findall(page)]


def signature(typed: dict[str, object], account: LocalAccount) -> str:
    message = typed["message"]
    domain = typed["domain"]
    assert isinstance(message, dict) and isinstance(domain, dict)
    call = signed_calls.SignedCall(
        message["operator"], unhex(message["data"]), unhex(message["nonce"]), int(message["deadline"])
    )
    signable = signed_calls.signable(call, domain["chainId"], domain["verifyingContract"])
    return "0x" + bytes(account.sign_message(signable).signature).hex()  # any key may sign it


def relay_form(page: str, signatures: list[str]) -> dict[str, str]:
    fields = {name: html.unescape(value) for name, value in HIDDEN.findall(page)}
    return {**fields, **{f"signature_{i}": s for i, s in enumerate(signatures)}}


@pytest.fixture(scope="module")
def own(ledger: Ledger) -> Iterator[tuple[LocalAccount, Staff]]:
    account: LocalAccount = Account.create()
    created = ledger.service.post(
        "/v1/charities",
        ADMIN_KEY,
        json={"name": "Hill Library", "custody": "self", "operator": account.address},
    )
    assert created.status_code == 201, created.text
    key = ledger.service.post(
        "/v1/keys", ADMIN_KEY, json={"role": "charity", "charity_id": created.json()["id"]}
    ).json()["key"]
    staff = sign_in(ledger.service, key)
    yield account, staff
    staff.client.close()


def test_a_record_is_prepared_signed_with_the_charitys_key_and_relayed(
    ledger: Ledger, own: tuple[LocalAccount, Staff]
) -> None:
    account, staff = own
    prepared = staff.post("/console/campaigns", {"name": "Books", "currency": "CNY", "goal": "3,000"})
    assert prepared.status_code == 200, prepared.text
    assert "script-src 'self'" in prepared.headers["content-security-policy"]
    assert '<script src="/static/console-sign.js"></script>' in prepared.text
    (typed,) = typed_data(prepared.text)
    assert typed["primaryType"] == "SignedCall" and typed["message"]["operator"] == account.address  # type: ignore[index]
    (command,) = COMMAND.findall(prepared.text)
    assert html.unescape(command).startswith("ledger sign --keystore charity-key.json '{")
    # Nothing was sent: prepared only.
    listed = ledger.service.get("/v1/campaigns?limit=200").json()["items"]
    assert "Books" not in [c["name"] for c in listed]
    # A signature by another key relays nothing, and says whose key is needed.
    stranger: LocalAccount = Account.create()
    wrong = staff.post("/console/relay", relay_form(prepared.text, [signature(typed, stranger)]))
    assert wrong.status_code in (403, 422), wrong.text
    assert 'data-testid="refusal"' in wrong.text
    garbled = staff.post("/console/relay", relay_form(prepared.text, ["0x1234"]))
    assert garbled.status_code == 422
    assert "Books" not in [c["name"] for c in ledger.service.get("/v1/campaigns?limit=200").json()["items"]]
    # The charity's own signature: relayed, and the campaign is on the ledger.
    relayed = staff.post("/console/relay", relay_form(prepared.text, [signature(typed, account)]))
    assert relayed.status_code == 303, relayed.text
    listed = ledger.service.get("/v1/campaigns?limit=200").json()["items"]
    (books,) = [c for c in listed if c["name"] == "Books"]
    assert books["goal"] == 300_000


def test_the_offline_command_on_the_sign_page_signs_a_donation_and_its_receipt_prints(
    ledger: Ledger, own: tuple[LocalAccount, Staff], tmp_path: Path
) -> None:
    account, staff = own
    listed = ledger.service.get("/v1/campaigns?limit=200").json()["items"]
    campaign = next(c["id"] for c in listed if c["name"] == "Books")
    prepared = staff.post(
        f"/console/campaigns/{campaign}/donations", {"amount": "88.80", "donor_reference": "Chen Jing"}
    )
    assert prepared.status_code == 200, prepared.text
    (command,) = COMMAND.findall(prepared.text)
    words = shlex.split(html.unescape(command))
    assert words[:4] == ["ledger", "sign", "--keystore", "charity-key.json"]
    key_file = tmp_path / "charity-key.json"
    key_file.write_text(json.dumps(Account.encrypt(account.key, PASSPHRASE)))
    signed = _ledger("sign", "--keystore", str(key_file), words[4])
    assert signed.returncode == 0, signed.stderr
    pasted = signed.stdout.decode().strip()
    assert re.fullmatch(r"0x[0-9a-f]{130}", pasted)
    receipt = staff.post("/console/relay", relay_form(prepared.text, [pasted]))
    assert receipt.status_code == 200, receipt.text
    assert 'data-testid="receipt-secret"' in receipt.text and "Chen Jing" in receipt.text
    donations = ledger.service.get(f"/v1/campaigns/{campaign}/donations").json()["items"]
    assert [d["amount"] for d in donations] == [8_880]
