"""Recipient organisations over HTTP, on the embedded chain and on anvil: the registrar
registers one (a mistyped USCC and a person's ID number are refused before anything is
sent), a charity names it in a disbursement, and the organisation, with its own key,
confirms receipt in part and then the rest through POST /v1/recipients/signed-calls;
more than the disbursement is refused with what is available and what was asked, another
key is refused naming whose it is, and only the organisation's key moves it to a new one.
The disbursement's answer says what was confirmed, by whom and when."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger_api.chain import signed_calls
from ledger_api.core import ids
from ledger_api.core.hexes import hex0x
from tests.api.checks import contract_error, problem, transactions, wait_for_mirror
from tests.api.service import ADMIN_KEY, Service, serve, settings_for
from tests.support.recipients import USCC

ORG_KEY = Account.from_key(b"\x44" * 32)  # the organisation's own key, on its computer
NEW_ORG_KEY = Account.from_key(b"\x45" * 32)
STRANGER_KEY = Account.from_key(b"\x46" * 32)


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("anvil-postgresql", marks=[pytest.mark.anvil, pytest.mark.postgres]),
    ]
)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    """The service on the embedded chain with SQLite, and on anvil with PostgreSQL (as
    tests/api/test_self_custody.py's `node_service`: the relay depends on the chain and on
    what the database holds of it)."""
    rpc_url = None if request.param == "embedded" else request.getfixturevalue("anvil").url
    if request.param.endswith("postgresql"):
        database_url = request.getfixturevalue("postgres_url")
    else:
        database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with serve(settings_for(tmp_path, rpc_url, database_url)) as running:
        yield running


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def signed_call(api: Service, key: LocalAccount, fn_name: str, *args: Any) -> dict[str, Any]:
    """`fn_name(*args)` signed with `key` as the organisation would (`ledger recipient confirm`)."""
    deployment = api.runtime.deployment
    call = signed_calls.build(key.address, fn_name, *args, deadline=int(time.time()) + 600)
    signature = signed_calls.sign(call, deployment.chain_id, deployment.address, key)
    message = signed_calls.typed_data(call, deployment.chain_id, deployment.address)["message"]
    return {"message": message, "signature": hex0x(signature)}


def confirm(api: Service, key: LocalAccount, disbursement: str, amount: int, statement: str) -> Any:
    body = signed_call(
        api,
        key,
        "confirmReceipt",
        ids.to_bytes32(ids.new("confirmation")),
        ids.to_bytes32(disbursement),
        amount,
        statement,
        bytes(32),
    )
    return api.post("/v1/recipients/signed-calls", json=body)


def test_the_registrar_refuses_a_mistyped_code_and_a_persons_id_number(api: Service) -> None:
    before = transactions(api)
    register = "/v1/recipients"
    body = {"name": "Hope School", "account": ORG_KEY.address}
    bad = api.post(register, ADMIN_KEY, json={**body, "identifier": "53100000500021676A"})
    assert "check character" in problem(bad, 422, "invalid-uscc")["detail"]
    person = api.post(register, ADMIN_KEY, json={**body, "identifier": "11010519491231002X"})
    assert "person" in problem(person, 422, "personal-id-number")["detail"]
    assert "11010519491231002X" not in person.text  # the number is not echoed back
    _, charity_key = api.charity()
    problem(api.post(register, charity_key, json={**body, "identifier": USCC}), 403, "forbidden")
    problem(api.post(register, json={**body, "identifier": USCC}), 401, "unauthenticated")
    assert transactions(api) == before + 2  # only the charity's registration was sent
    created = _ok(api.post(register, ADMIN_KEY, json={**body, "identifier": "cn-uscc-" + USCC.lower()}))
    assert created["identifier"] == "CN-USCC-" + USCC and created["id"].startswith("RO-")
    wait_for_mirror(api)
    found = _ok(api.get(f"/v1/recipients/{created['id']}"))
    assert (found["name"], found["account"], found["disbursements"]) == ("Hope School", ORG_KEY.address, 0)
    assert [r["id"] for r in _ok(api.get("/v1/recipients"))["items"]] == [created["id"]]
    problem(api.get(f"/v1/recipients/{ids.new('recipient')}"), 404, "not-found")


def test_a_recipient_confirms_in_part_then_the_rest_with_its_own_key(api: Service) -> None:
    org = _ok(
        api.post(
            "/v1/recipients",
            ADMIN_KEY,
            json={"identifier": USCC, "name": "Hope School", "account": ORG_KEY.address},
        )
    )
    charity, key = api.charity()
    campaign = api.campaign(charity, key)
    gift = api.donate(campaign, key, 10_000)
    wait_for_mirror(api)
    paid = _ok(
        api.post(
            "/v1/disbursements",
            key,
            json={
                "campaign_id": campaign,
                "amount": 6_000,
                "recipient": "Hope School",
                "purpose": "meals",
                "recipient_org_id": org["id"],
            },
        )
    )
    assert paid["recipient_org_id"] == org["id"]
    disbursement = paid["id"]
    receipt = _ok(api.get(f"/v1/disbursements/{disbursement}"))["receipt"]
    assert (receipt["state"], receipt["confirmed"], receipt["recipient"]["identifier"]) == ("none", 0, USCC)
    page = api.get(f"/disbursements/{disbursement}", headers={"Accept-Language": "en"}).text
    assert f"Not confirmed yet by the recipient, Hope School ({USCC})." in page
    chinese = api.get(f"/disbursements/{disbursement}", headers={"Accept-Language": "zh-CN"}).text
    assert f"收款方 Hope School（{USCC}）尚未确认收款。" in chinese  # noqa: RUF001

    first = _ok(confirm(api, ORG_KEY, disbursement, 2_500, "first delivery of rice"))
    assert first["records"][0]["signed_by"] == ORG_KEY.address
    receipt = _ok(api.get(f"/v1/disbursements/{disbursement}"))["receipt"]
    assert (receipt["state"], receipt["confirmed"]) == ("partial", 2_500)
    [confirmation] = receipt["confirmations"]
    assert (confirmation["statement"], confirmation["account"]) == ("first delivery of rice", ORG_KEY.address)
    assert confirmation["confirmed_at"] and confirmation["proof"]["tx_hash"]

    before = transactions(api)
    over = contract_error(
        confirm(api, ORG_KEY, disbursement, 3_501, "too much"), "ConfirmationExceedsDisbursement"
    )
    assert (over["error"]["args"]["available"], over["error"]["args"]["requested"]) == (3_500, 3_501)
    stranger = confirm(api, STRANGER_KEY, disbursement, 1, "not ours")
    assert STRANGER_KEY.address in problem(stranger, 403, "wrong-signer")["detail"]
    assert transactions(api) == before  # nothing refused was sent

    # The pages say the same, in both languages: the disbursement's and the donation's trace.
    english = api.get(f"/disbursements/{disbursement}", headers={"Accept-Language": "en"}).text
    assert "Receipt confirmed by Hope School (" + USCC + ") on " in english
    assert "first delivery of rice" in english and 'data-state="partial"' in english
    chinese = api.get(f"/disbursements/{disbursement}", headers={"Accept-Language": "zh-CN"}).text
    assert "收款方 Hope School（" + USCC + "）于 " in chinese  # noqa: RUF001
    trace = api.get(f"/donations/{gift['id']}", headers={"Accept-Language": "en"}).text
    assert "Receipt partly confirmed by the recipient" in trace

    # Partly confirmed: an anomaly for the auditor, with what is still unconfirmed. (On the
    # embedded chain blocks mined in a burst are stamped ahead of the wall clock, so even
    # receipt_days=0 is not past yet there; anvil stamps them with the time.)
    report = _ok(api.get("/v1/audit/anomalies", ADMIN_KEY, params={"receipt_days": 0}))
    if api.runtime.settings.rpc_url:
        [unconfirmed] = [i for i in report["items"] if i["kind"] == "unconfirmed_receipt"]
        assert (unconfirmed["record"]["id"], unconfirmed["amount"]) == (disbursement, 3_500)
        assert "confirmed only 25.00 CNY" in unconfirmed["detail"]
    later = _ok(api.get("/v1/audit/anomalies", ADMIN_KEY, params={"receipt_days": 30}))
    assert later["counts"]["unconfirmed_receipt"] == 0  # not yet past the threshold

    _ok(confirm(api, ORG_KEY, disbursement, 3_500, "the rest"))
    receipt = _ok(api.get(f"/v1/disbursements/{disbursement}"))["receipt"]
    assert (receipt["state"], receipt["confirmed"], len(receipt["confirmations"])) == ("full", 6_000, 2)
    assert _ok(api.get(f"/v1/recipients/{org['id']}"))["confirmations"] == 2
    report = _ok(api.get("/v1/audit/anomalies", ADMIN_KEY, params={"receipt_days": 0}))
    assert report["counts"]["unconfirmed_receipt"] == 0  # confirmed in full


def test_only_the_organisations_key_moves_it_to_a_new_one(api: Service) -> None:
    org = _ok(
        api.post(
            "/v1/recipients",
            ADMIN_KEY,
            json={"identifier": "GB-CHC-1234567", "name": "Hope Trust", "account": ORG_KEY.address},
        )
    )
    recipient = ids.to_bytes32(org["id"])
    # The platform's relayer cannot sign it; a stranger's key is refused before sending.
    stranger = signed_call(api, STRANGER_KEY, "setRecipientAccount", recipient, STRANGER_KEY.address)
    problem(api.post("/v1/recipients/signed-calls", json=stranger), 403, "wrong-signer")
    # A charity's signed call does not go through this door, nor this one through the charities'.
    moved = signed_call(api, ORG_KEY, "setRecipientAccount", recipient, NEW_ORG_KEY.address)
    problem(api.post("/v1/relay", ADMIN_KEY, json={"signed_calls": [moved]}), 422, "invalid-signed-call")
    _ok(api.post("/v1/recipients/signed-calls", json=moved))
    wait_for_mirror(api)
    assert _ok(api.get(f"/v1/recipients/{org['id']}"))["account"] == NEW_ORG_KEY.address
    again = signed_call(api, ORG_KEY, "setRecipientAccount", recipient, ORG_KEY.address)
    problem(api.post("/v1/recipients/signed-calls", json=again), 403, "wrong-signer")
