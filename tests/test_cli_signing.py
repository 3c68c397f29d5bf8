"""`ledger keys new-charity-key` and `ledger donate --keystore` as a charity runs them:
processes against the real service on the embedded chain, a real encrypted keystore file,
the passphrase from the environment (never an argument), the key never sent anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from ledger_api.core import ids
from tests.api.service import ADMIN_KEY, Service, serve, settings_for

ROOT = Path(__file__).resolve().parents[1]
PASSPHRASE = "correct horse battery staple 马"


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Service]:
    with serve(settings_for(tmp_path, None, f"sqlite:///{tmp_path / 'ledger.db'}")) as running:
        yield running


def _ledger(*args: str, passphrase: str | None = PASSPHRASE) -> subprocess.CompletedProcess[bytes]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    if passphrase is not None:
        inherited["LEDGER_CHARITY_KEY_PASSPHRASE"] = passphrase
    return subprocess.run(
        [sys.executable, "-m", "ledger_api.cli", *args],
        cwd=ROOT,
        env=inherited,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def _self_custody_charity(service: Service, operator: str) -> tuple[str, str]:
    """A charity registered in self-custody with `operator` (the key file's address), and
    its API key."""
    created = service.post(
        "/v1/charities", ADMIN_KEY, json={"name": "Hill Library", "custody": "self", "operator": operator}
    )
    assert created.status_code == 201, created.text
    charity_id = created.json()["id"]
    key = service.post("/v1/keys", ADMIN_KEY, json={"role": "charity", "charity_id": charity_id}).json()[
        "key"
    ]
    return charity_id, key


def test_a_charity_makes_its_key_and_records_a_donation_signed_on_its_own_machine(
    embedded: Service, tmp_path: Path
) -> None:
    key_file = tmp_path / "charity.json"
    made = _ledger("keys", "new-charity-key", "--out", str(key_file))
    assert made.returncode == 0, made.stderr
    operator = made.stdout.decode().strip()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    stored = json.loads(key_file.read_text())
    assert Account.from_key(Account.decrypt(stored, PASSPHRASE)).address == operator
    assert PASSPHRASE not in key_file.read_text()
    # Not overwritten by a second run.
    assert _ledger("keys", "new-charity-key", "--out", str(key_file)).returncode == 2

    charity_id, key = _self_custody_charity(embedded, operator)
    body = tmp_path / "campaign.json"
    body.write_text(json.dumps({"charity_id": charity_id, "name": "Books", "currency": "CNY", "goal": 10**6}))
    campaign = _ledger(
        "write",
        "/v1/campaigns",
        "--body",
        str(body),
        "--keystore",
        str(key_file),
        "--key",
        key,
        "--api",
        embedded.base,
    )
    assert campaign.returncode == 0, campaign.stderr
    campaign_id = json.loads(campaign.stdout)["id"]

    donated = _ledger(
        "donate",
        "--campaign-id",
        campaign_id,
        "--amount",
        "8800",
        "--donor-reference",
        "reader 42",
        "--keystore",
        str(key_file),
        "--key",
        key,
        "--api",
        embedded.base,
    )

    assert donated.returncode == 0, donated.stderr
    answer = json.loads(donated.stdout)
    assert answer["amount"] == 8800 and answer["receipt_secret"].startswith("0x")
    assert answer["relayed"]["records"][0]["signed_by"] == operator
    assert answer["relayed"]["transactions"][0]["status"] == "mined"
    view = embedded.contract.functions.donationOf(ids.to_bytes32(answer["id"])).call()
    assert view[1] == 8800
    trace = embedded.get(f"/v1/donations/{answer['id']}").json()
    assert trace["signed_by"] == {"by": "charity", "held_by_charity": True}
    # The key never reached the service: nothing of it in the platform's keystore.
    assert operator not in embedded.runtime.keystore.addresses()


def test_a_wrong_passphrase_or_another_key_signs_nothing(embedded: Service, tmp_path: Path) -> None:
    key_file = tmp_path / "charity.json"
    operator = _ledger("keys", "new-charity-key", "--out", str(key_file)).stdout.decode().strip()
    charity_id, key = _self_custody_charity(embedded, operator)
    other = tmp_path / "other.json"
    assert _ledger("keys", "new-charity-key", "--out", str(other)).returncode == 0
    body = tmp_path / "campaign.json"
    body.write_text(json.dumps({"charity_id": charity_id, "name": "Books", "currency": "CNY", "goal": 10**6}))

    wrong = _ledger(
        "write",
        "/v1/campaigns",
        "--body",
        str(body),
        "--keystore",
        str(key_file),
        "--key",
        key,
        "--api",
        embedded.base,
        passphrase="not it",
    )
    other_key = _ledger(
        "write",
        "/v1/campaigns",
        "--body",
        str(body),
        "--keystore",
        str(other),
        "--key",
        key,
        "--api",
        embedded.base,
    )
    no_passphrase = _ledger(
        "write",
        "/v1/campaigns",
        "--body",
        str(body),
        "--keystore",
        str(key_file),
        "--key",
        key,
        "--api",
        embedded.base,
        passphrase=None,
    )

    assert wrong.returncode == 2 and b"passphrase does not unlock" in wrong.stderr, wrong.stderr
    assert other_key.returncode == 2 and b"this keystore holds" in other_key.stderr, other_key.stderr
    assert no_passphrase.returncode == 2 and b"LEDGER_CHARITY_KEY_PASSPHRASE" in no_passphrase.stderr
    campaigns = embedded.get("/v1/campaigns", params={"charity_id": charity_id}).json()
    assert campaigns["items"] == []
    helped = _ledger("donate", "--help").stdout.decode()
    assert "LEDGER_CHARITY_KEY_PASSPHRASE" in helped and "--passphrase" not in helped


def test_a_recipient_organisation_confirms_receipt_signed_on_its_own_machine(
    embedded: Service, tmp_path: Path
) -> None:
    """`ledger recipient register` (the registrar) and `ledger recipient confirm` (the
    organisation, with its own key file): in part, then a refused over-confirmation that
    names what is left, then the rest with a delivery note whose SHA-256 goes on chain."""
    key_file = tmp_path / "school.json"
    made = _ledger("keys", "new-charity-key", "--out", str(key_file))  # any key file will do
    assert made.returncode == 0, made.stderr
    account = made.stdout.decode().strip()
    api = ["--api", embedded.base]
    registered = _ledger(
        "recipient", "register", "--identifier", "53100000500021676K", "--name", "Hope School",
        "--account", account, *api, "--key", ADMIN_KEY,
    )  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    recipient = json.loads(registered.stdout)["id"]
    person = _ledger(
        "recipient", "register", "--identifier", "11010519491231002X", "--name", "Someone",
        "--account", account, *api, "--key", ADMIN_KEY,
    )  # fmt: skip
    assert person.returncode != 0 and b"resident ID number" in person.stderr
    charity, key = embedded.charity()
    campaign = embedded.campaign(charity, key)
    embedded.donate(campaign, key, 10_000)
    paid = embedded.post(
        "/v1/disbursements",
        key,
        json={
            "campaign_id": campaign,
            "amount": 6_000,
            "recipient": "Hope School",
            "purpose": "meals",
            "recipient_org_id": recipient,
        },
    )
    assert paid.status_code == 201, paid.text
    disbursement = paid.json()["id"]
    first = _ledger("recipient", "confirm", "--key-file", str(key_file), *api, disbursement, "2500", "rice")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["relayed"]["records"][0]["signed_by"] == account
    too_much = _ledger("recipient", "confirm", "--key-file", str(key_file), *api, disbursement, "3501", "x")
    assert too_much.returncode != 0 and b"ConfirmationExceedsDisbursement" in too_much.stderr
    note = tmp_path / "delivery-note.txt"
    note.write_bytes(b"DELIVERY NOTE 7: 35 sacks of rice")
    rest = _ledger(
        "recipient", "confirm", "--key-file", str(key_file), "--evidence", str(note), *api,
        disbursement, "3500", "the rest",
    )  # fmt: skip
    assert rest.returncode == 0, rest.stderr
    receipt = embedded.get(f"/v1/disbursements/{disbursement}").json()["receipt"]
    assert (receipt["state"], receipt["confirmed"]) == ("full", 6_000)
    assert receipt["confirmations"][1]["evidence_sha256"] == json.loads(rest.stdout)["evidence_sha256"]
    assert PASSPHRASE.encode() not in first.stdout + first.stderr
