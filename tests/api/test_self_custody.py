"""Self-custody over HTTP, on the embedded chain and on anvil: a charity that holds its own
operator key signs each record (EIP-712, `?mode=prepare`), the service relays it
(POST /v1/relay) and pays the gas, and nothing the platform holds can write in its name.

What must hold: a record signed by the charity's key is attributed to its operator (the
answer, the chain, the mirror, the pages); the same call signed by the platform's key or by
another charity's is refused by the service before anything is sent, and, sent straight to
the contract, by the contract with a named error; the registrar cannot add an operator of
its own; a replayed or expired signed call is refused and nothing is sent; 50 concurrent
signed donations land exactly once; an Idempotency-Key replay of a relay answers the same
without sending twice; a process killed between relay steps still ends with the record
mined exactly once."""

from __future__ import annotations

import csv
import html
import io
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import create_engine, select
from web3 import Web3

from ledger_api.chain import signed_calls
from ledger_api.chain.abi import contract_error_of, encode
from ledger_api.chain.contract import make_web3
from ledger_api.core import ids
from ledger_api.core.hexes import hex0x, unhex
from ledger_api.core.models import ChainTransaction
from ledger_api.mirror import tables as im
from tests.api.processes import (
    DevProcess,
    concurrently,
    dev_env,
    donation_count,
    donations_recorded,
    outbox_of,
    poll,
    records_of,
)
from tests.api.service import ADMIN_KEY, Service, serve, settings_for
from tests.support.anvil import AnvilNode

PROBLEM = "urn:charity-ledger:problem:"


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("anvil-postgresql", marks=[pytest.mark.anvil, pytest.mark.postgres]),
    ]
)
def node_service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    """The service on each chain and each database: the embedded one with SQLite (`ledger
    dev`), anvil with PostgreSQL. (Anvil with SQLite too proved nothing more: signing and
    relaying depend on the chain, what is recorded of it on the database, and each is here.)"""
    rpc_url = None if request.param == "embedded" else request.getfixturevalue("anvil").url
    if request.param.endswith("postgresql"):
        database_url = request.getfixturevalue("postgres_url")
    else:
        database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with serve(settings_for(tmp_path, rpc_url, database_url)) as running:
        yield running


# ------------------------------------------------------------- a charity with its own key


@dataclass
class OwnKeyCharity:
    """A self-custody charity as its staff sees it: its key (here, not in the service),
    its API key, and the service's base URL."""

    base: str
    charity_id: str
    api_key: str
    account: LocalAccount

    def post(self, path: str, body: Any, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.api_key}", **kwargs.pop("headers", {})}
        return httpx.post(f"{self.base}{path}", json=body, headers=headers, timeout=120, **kwargs)

    def prepare(self, path: str, body: Any, **params: str) -> dict[str, Any]:
        prepared = self.post(path, body, params={"mode": "prepare", **params})
        assert prepared.status_code == 200, prepared.text
        assert prepared.json()["mode"] == "prepare"
        return dict(prepared.json())

    def sign(self, prepared: dict[str, Any], account: LocalAccount | None = None) -> list[dict[str, Any]]:
        """Sign every call of a prepared write with `account` (default: the charity's key)."""
        return [sign_as(call["typed_data"], account or self.account) for call in prepared["signed_calls"]]

    def relay(self, signed: list[dict[str, Any]], **kwargs: Any) -> httpx.Response:
        return self.post("/v1/relay", {"signed_calls": signed}, **kwargs)

    def write(self, path: str, body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """prepare -> sign here -> relay: (the prepared records, the relay's answer)."""
        prepared = self.prepare(path, body)
        relayed = self.relay(self.sign(prepared))
        assert relayed.status_code == 201, relayed.text
        return prepared["records"], relayed.json()

    def campaign(self) -> str:
        records, _ = self.write(
            "/v1/campaigns",
            {"charity_id": self.charity_id, "name": "Village well", "currency": "CNY", "goal": 10**9},
        )
        return str(records["id"])


def signed_call_of(typed: dict[str, Any]) -> signed_calls.SignedCall:
    message = typed["message"]
    return signed_calls.SignedCall(
        message["operator"], unhex(message["data"]), unhex(message["nonce"]), int(message["deadline"])
    )


def sign_as(typed: dict[str, Any], account: LocalAccount) -> dict[str, Any]:
    """A signature by `account` over the typed data as given (whoever it names as operator)."""
    domain = typed["domain"]
    signable = signed_calls.signable(signed_call_of(typed), domain["chainId"], domain["verifyingContract"])
    return {"message": typed["message"], "signature": hex0x(bytes(account.sign_message(signable).signature))}


def own_key_charity(base: str, name: str = "Mountain School Trust") -> OwnKeyCharity:
    account: LocalAccount = Account.create()
    created = httpx.post(
        f"{base}/v1/charities",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        json={"name": name, "custody": "self", "operator": account.address},
        timeout=60,
    )
    assert created.status_code == 201, created.text
    assert created.json()["custody"] == "self" and created.json()["operator"] == account.address
    charity_id = created.json()["id"]
    key = httpx.post(
        f"{base}/v1/keys",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        json={"role": "charity", "charity_id": charity_id},
        timeout=60,
    )
    assert key.status_code == 201, key.text
    return OwnKeyCharity(base, charity_id, key.json()["key"], account)


def signed_by_on_page(service: Service, path: str, language: str) -> str:
    """The page's "signed by" words."""
    page = service.get(path, headers={"Accept-Language": language})
    assert page.status_code == 200, page.text
    found = re.search(r'data-testid="signed-by"[^>]*>([^<]+)</span>', page.text)
    assert found is not None, page.text
    return html.unescape(found.group(1))


def relayer_outbox(service: Service) -> list[Any]:
    runtime = service.runtime
    return outbox_of(runtime.settings.database_url, runtime.deployment.chain_id, runtime.service_account).rows


def donation_prepared(charity: OwnKeyCharity, campaign_id: str, amount: int) -> dict[str, Any]:
    return charity.prepare(
        "/v1/donations", {"campaign_id": campaign_id, "amount": amount, "donor_reference": f"donor {amount}"}
    )


# ------------------------------------------------------------- attribution


def test_a_record_signed_by_the_charitys_key_is_attributed_to_its_operator(node_service: Service) -> None:
    charity = own_key_charity(node_service.base)
    campaign_id = charity.campaign()
    prepared = donation_prepared(charity, campaign_id, 12_345)
    (call,) = prepared["signed_calls"]
    assert call["function"] == "recordDonation"
    assert call["typed_data"]["message"]["operator"] == charity.account.address
    assert call["typed_data"]["domain"]["verifyingContract"] == node_service.runtime.deployment.address
    assert call["digest"] == hex0x(
        signed_calls.digest(
            signed_call_of(call["typed_data"]),
            node_service.runtime.deployment.chain_id,
            node_service.runtime.deployment.address,
        )
    )
    donation_id = prepared["records"]["id"]
    assert prepared["records"]["receipt_secret"].startswith("0x")

    relayed = charity.relay(charity.sign(prepared))

    assert relayed.status_code == 201, relayed.text
    (record,) = relayed.json()["records"]
    assert record == {
        "kind": "donation",
        "ids": [donation_id],
        "function": "recordDonation",
        "signed_by": charity.account.address,
        "relay_nonce": call["typed_data"]["message"]["nonce"],
    }
    (transaction,) = relayed.json()["transactions"]
    assert transaction["status"] == "mined"
    # On chain: sent by the relayer, recorded as the charity's operator's.
    w3, address = node_service.runtime.w3, node_service.runtime.deployment.address
    (event,) = donations_recorded(w3, address, donation_id)
    assert event["args"]["operator"] == charity.account.address
    assert w3.eth.get_transaction(transaction["tx_hash"])["from"] == node_service.runtime.service_account
    # The mirror holds the operator as the record's author, and the charity's key as its own.
    with node_service.runtime.engine.connect() as connection:
        mirrored = connection.execute(
            select(im.Donation.operator, im.Operator.held_by_charity)
            .join(
                im.Operator,
                (im.Operator.account == im.Donation.operator)
                & (im.Operator.charity_id == ids.to_hex(charity.charity_id)),
            )
            .where(im.Donation.donation_id == ids.to_hex(donation_id))
        ).one()
    assert tuple(mirrored) == (charity.account.address, True)
    # The public answers and pages say who signed, from the on-chain OperatorAdded fact.
    trace = node_service.get(f"/v1/donations/{donation_id}")
    assert trace.status_code == 200, trace.text
    assert trace.json()["signed_by"] == {"by": "charity", "held_by_charity": True}
    page = f"/donations/{donation_id}"
    assert signed_by_on_page(node_service, page, "en") == "Signed by the charity's own key"
    assert signed_by_on_page(node_service, page, "zh-CN") == "由慈善组织自己的密钥签名"
    charity_answer = node_service.get(f"/v1/charities/{charity.charity_id}").json()
    assert charity_answer["custody"] == "self"
    assert [c["change"] for c in charity_answer["operator_changes"]] == ["added"]
    assert charity_answer["operator_changes"][0]["held_by_charity"] is True
    # The campaign page says who signs the charity's records, in both languages.
    for language, said in (
        ("en", "every record is signed by the charity's own key"),
        ("zh-CN", "每条记录都由慈善组织自己的密钥签名"),
    ):
        campaign_page = httpx.get(
            f"{node_service.base}/campaigns/{campaign_id}", headers={"Accept-Language": language}, timeout=60
        )
        custody_line = re.search(
            r'data-testid="campaign-custody" data-custody="(\w+)">([^<]+)</p>', campaign_page.text
        )
        assert custody_line is not None, campaign_page.text[:2000]
        assert custody_line.group(1) == "self" and said in html.unescape(custody_line.group(2))
    # The regulator's CSV says who signed each record and lists the relayed call itself.
    exported = httpx.get(
        f"{node_service.base}/v1/audit/export",
        params={"format": "csv", "charity_id": charity.charity_id},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=60,
    )
    assert exported.status_code == 200, exported.text
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    (donation_row,) = [r for r in rows if r["kind"] == "donation_recorded" and r["record_id"] == donation_id]
    assert donation_row["signed_by"] == "charity"
    # The relayed call itself belongs to no charity: it shows in the deployment's whole trail.
    everything = httpx.get(
        f"{node_service.base}/v1/audit/export",
        params={"format": "csv"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=60,
    )
    assert everything.status_code == 200, everything.text
    relayed_rows = [
        r
        for r in csv.DictReader(io.StringIO(everything.content.decode("utf-8-sig")))
        if r["kind"] == "signed_call_executed"
    ]
    nonce = call["typed_data"]["message"]["nonce"]
    assert [r["related_id"] for r in relayed_rows if r["record_id"] == nonce] == [charity.account.address]


def test_a_platform_custody_charity_is_attributed_to_the_platform_and_unchanged(
    node_service: Service,
) -> None:
    charity_id, key = node_service.charity()
    campaign_id = node_service.campaign(charity_id, key)
    donation = node_service.donate(campaign_id, key, 700)  # today's write: 201, signed by the platform
    prepare = node_service.post(
        "/v1/donations",
        key,
        params={"mode": "prepare"},
        json={"campaign_id": campaign_id, "amount": 1, "donor_reference": "x"},
    )
    assert prepare.status_code == 409, prepare.text
    assert prepare.json()["type"] == PROBLEM + "nothing-to-sign"
    trace = node_service.get(f"/v1/donations/{donation['id']}").json()
    assert trace["signed_by"]["held_by_charity"] is False
    page = f"/donations/{donation['id']}"
    assert signed_by_on_page(node_service, page, "en") == "Signed by the platform on the charity's behalf"
    assert signed_by_on_page(node_service, page, "zh-CN") == "由平台代表慈善组织签名"
    assert node_service.get(f"/v1/charities/{charity_id}").json()["custody"] == "platform"


def test_a_plain_write_for_a_self_custody_charity_is_refused_and_nothing_is_sent(
    node_service: Service,
) -> None:
    charity = own_key_charity(node_service.base)
    before = len(relayer_outbox(node_service))
    plain = charity.post(
        "/v1/campaigns", {"charity_id": charity.charity_id, "name": "X", "currency": "CNY", "goal": 10}
    )
    assert plain.status_code == 409, plain.text
    assert plain.json()["type"] == PROBLEM + "signature-required"
    assert "mode=prepare" in plain.json()["detail"]
    assert len(relayer_outbox(node_service)) == before


# ------------------------------------------------------------- the wrong keys


def test_the_same_call_signed_by_the_platform_or_another_charity_is_refused_before_relaying(
    node_service: Service,
) -> None:
    charity = own_key_charity(node_service.base)
    other = own_key_charity(node_service.base, "Other Trust")
    campaign_id = charity.campaign()
    platform_key = node_service.runtime.keystore.account(node_service.runtime.service_account)
    prepared = donation_prepared(charity, campaign_id, 500)
    before = len(relayer_outbox(node_service))

    by_platform = charity.relay(charity.sign(prepared, platform_key))
    by_other = charity.relay(charity.sign(prepared, other.account))

    assert by_platform.status_code == 403, by_platform.text
    assert by_platform.json()["type"] == PROBLEM + "wrong-signer"
    assert "the platform's key" in by_platform.json()["detail"]
    assert by_other.status_code == 403, by_other.text
    assert "another charity's operator key" in by_other.json()["detail"]
    # The platform naming itself as the operator: not an operator of any charity.
    typed = prepared["signed_calls"][0]["typed_data"]
    as_platform = {**typed, "message": {**typed["message"], "operator": platform_key.address}}
    itself = charity.relay([sign_as(as_platform, platform_key)])
    assert itself.status_code == 403 and "the platform's key" in itself.json()["detail"], itself.text
    # The other charity's own key, naming itself, on this charity's campaign, submitted
    # with its own API key: this charity's campaign is "not found" to it, nothing is sent.
    as_other = {**typed, "message": {**typed["message"], "operator": other.account.address}}
    refused = other.relay([sign_as(as_other, other.account)])
    assert refused.status_code == 404, refused.text
    # With this charity's API key instead: that key may not submit another charity's calls.
    assert charity.relay([sign_as(as_other, other.account)]).status_code == 403
    assert len(relayer_outbox(node_service)) == before
    assert donation_count(node_service.runtime.w3, node_service.runtime.deployment.address, campaign_id) == 0

    # Sent raw to the contract (as anyone could), the contract refuses them by name.
    w3, address = node_service.runtime.w3, node_service.runtime.deployment.address
    call = signed_call_of(typed)
    for signer, expected in ((platform_key, "InvalidSignature"), (other.account, "InvalidSignature")):
        signature = bytes(
            signer.sign_message(signed_calls.signable(call, w3.eth.chain_id, address)).signature
        )
        assert _raw_execute_error(w3, address, call, signature) == expected
    other_call = signed_call_of(as_other)
    other_signature = signed_calls.sign(other_call, w3.eth.chain_id, address, other.account)
    assert _raw_execute_error(w3, address, other_call, other_signature) == "NotCharityOperator"
    # The platform as the named operator, signed by itself.
    platform_call = signed_call_of(as_platform)
    platform_signature = signed_calls.sign(platform_call, w3.eth.chain_id, address, platform_key)
    assert _raw_execute_error(w3, address, platform_call, platform_signature) == "NotCharityOperator"


def _raw_execute_error(w3: Web3, address: str, call: signed_calls.SignedCall, signature: bytes) -> str | None:
    data = encode("execute", call.as_tuple(), signature).data
    try:
        w3.eth.call({"from": w3.eth.accounts[0], "to": address, "data": hex0x(data)})  # type: ignore[typeddict-item]
    except Exception as exc:
        error = contract_error_of(exc)
        return None if error is None else error.name
    return None


def test_the_registrar_cannot_add_its_own_operator_to_a_self_custody_charity(node_service: Service) -> None:
    charity = own_key_charity(node_service.base)
    registrar = node_service.runtime.service_account
    before = len(relayer_outbox(node_service))

    attempt = node_service.post(
        f"/v1/charities/{charity.charity_id}/operators", ADMIN_KEY, json={"account": registrar}
    )

    assert attempt.status_code == 409, attempt.text
    assert attempt.json()["error"]["name"] == "SelfCustodyCharity"
    assert len(relayer_outbox(node_service)) == before
    # Raw, from the registrar: the contract says the same.
    w3, address = node_service.runtime.w3, node_service.runtime.deployment.address
    data = encode("addOperator", ids.to_bytes32(charity.charity_id), registrar).data
    with pytest.raises(Exception) as raised:
        w3.eth.call({"from": registrar, "to": address, "data": hex0x(data)})  # type: ignore[typeddict-item]
    assert contract_error_of(raised.value).name == "SelfCustodyCharity"  # type: ignore[union-attr]

    # The charity itself adds a second key of its own (signed by its existing operator).
    second: LocalAccount = Account.create()
    records, relayed = charity.write(
        f"/v1/charities/{charity.charity_id}/operators", {"account": second.address}
    )
    assert records["change"] == "added"
    assert relayed["records"][0]["kind"] == "operator-added"
    answer = node_service.get(f"/v1/charities/{charity.charity_id}").json()
    assert sorted(answer["operators"]) == sorted([charity.account.address, second.address])
    changes = answer["operator_changes"]
    assert [(c["change"], c["account"], c["by"], c["by_role"]) for c in changes] == [
        ("added", charity.account.address, registrar, "registrar"),
        ("added", second.address, charity.account.address, "operator"),
    ]
    assert all(c["held_by_charity"] for c in changes)
    # The charity's page lists them too (roles and where on chain; pages name no account).
    for language, registrar_words, charity_words in (
        ("en", "the platform (registrar)", "the charity (one of its operators)"),
        ("zh-CN", "平台\uff08登记方\uff09", "慈善组织\uff08其操作员之一\uff09"),
    ):
        page = node_service.get(f"/charities/{charity.charity_id}", headers={"Accept-Language": language})
        rows = re.findall(r'<tr[^>]*data-change="added"[^>]*>.*?data-by="(\w+)">([^<]+)<', page.text, re.S)
        assert rows == [("registrar", registrar_words), ("operator", charity_words)], page.text
        assert all(c["proof"]["tx_hash"] in page.text for c in changes)
        assert second.address.lower() not in page.text.lower()


# ------------------------------------------------------------- replays and deadlines


def test_a_replayed_or_expired_signed_call_is_refused_and_nothing_is_sent(node_service: Service) -> None:
    charity = own_key_charity(node_service.base)
    campaign_id = charity.campaign()
    prepared = donation_prepared(charity, campaign_id, 900)
    signed = charity.sign(prepared)
    assert charity.relay(signed).status_code == 201
    sent = len(relayer_outbox(node_service))

    replayed = charity.relay(signed)

    assert replayed.status_code == 409, replayed.text
    assert replayed.json()["type"] == PROBLEM + "nonce-used"
    assert replayed.json()["error"]["name"] == "NonceAlreadyUsed"
    # An expired call (signed by the right key, its deadline passed) is refused too.
    typed = donation_prepared(charity, campaign_id, 901)["signed_calls"][0]["typed_data"]
    expired = {**typed, "message": {**typed["message"], "deadline": int(time.time()) - 5}}
    late = charity.relay([sign_as(expired, charity.account)])
    assert late.status_code == 422, late.text
    assert late.json()["type"] == PROBLEM + "signature-expired"
    # A deadline too far ahead, and a signature over another chain's domain.
    far = {**typed, "message": {**typed["message"], "deadline": int(time.time()) + 10 * 86_400}}
    assert charity.relay([sign_as(far, charity.account)]).status_code == 422
    elsewhere = {**typed, "domain": {**typed["domain"], "chainId": typed["domain"]["chainId"] + 1}}
    assert charity.relay([sign_as(elsewhere, charity.account)]).status_code == 403
    assert len(relayer_outbox(node_service)) == sent
    assert donation_count(node_service.runtime.w3, node_service.runtime.deployment.address, campaign_id) == 1


def test_an_idempotent_relay_replay_answers_the_same_without_sending_twice(node_service: Service) -> None:
    charity = own_key_charity(node_service.base)
    campaign_id = charity.campaign()
    signed = charity.sign(donation_prepared(charity, campaign_id, 321))
    headers = {"Idempotency-Key": "relay-once-0001"}

    first = charity.relay(signed, headers=headers)
    sent = len(relayer_outbox(node_service))
    again = charity.relay(signed, headers=headers)

    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert len(relayer_outbox(node_service)) == sent
    assert donation_count(node_service.runtime.w3, node_service.runtime.deployment.address, campaign_id) == 1


def test_a_batch_is_one_signature_and_a_would_be_revert_is_named_first(
    node_service: Service,
) -> None:
    charity = own_key_charity(node_service.base)
    campaign_id = charity.campaign()
    donations = [
        {"campaign_id": campaign_id, "amount": 100 + i, "donor_reference": f"d{i}"} for i in range(20)
    ]
    prepared = charity.prepare("/v1/donations/batch", {"donations": donations})
    (call,) = prepared["signed_calls"]
    assert call["function"] == "recordDonations"
    relayed = charity.relay(charity.sign(prepared))
    assert relayed.status_code == 201, relayed.text
    assert len(relayed.json()["records"][0]["ids"]) == 20
    assert donation_count(node_service.runtime.w3, node_service.runtime.deployment.address, campaign_id) == 20
    # A disbursement, allocated first in, first out, prepared and signed the same way.
    paid, _ = charity.write(
        "/v1/disbursements",
        {"campaign_id": campaign_id, "amount": 300, "recipient": "CN-USCC-7", "purpose": "books"},
    )
    answer = node_service.get(f"/v1/disbursements/{paid['id']}").json()
    assert answer["signed_by"] == {"by": "charity", "held_by_charity": True}
    assert sum(f["amount"] for f in answer["funded_by"]) == 300
    assert (
        signed_by_on_page(node_service, f"/disbursements/{paid['id']}", "en")
        == "Signed by the charity's own key"
    )
    # Closing the campaign, then preparing a donation to it: 409 naming the error, nothing to sign.
    charity.write(f"/v1/campaigns/{campaign_id}/close", {})
    closed = charity.post(
        "/v1/donations",
        {"campaign_id": campaign_id, "amount": 5, "donor_reference": "late"},
        params={"mode": "prepare"},
    )
    assert closed.status_code == 409, closed.text
    assert closed.json()["error"]["name"] == "CampaignIsClosed"


# ------------------------------------------------------------- concurrency and crashes


@pytest.mark.anvil
def test_fifty_concurrent_signed_donations_from_one_charity_are_batched_and_land_exactly_once(
    service: Service,
) -> None:
    charity = own_key_charity(service.base)
    campaign_id = charity.campaign()
    signed = [charity.sign(donation_prepared(charity, campaign_id, 1_000 + i)) for i in range(50)]
    before = len(relayer_outbox(service))

    responses = concurrently(partial(charity.relay, s) for s in signed)

    assert all(isinstance(r, httpx.Response) for r in responses), responses
    assert [r.status_code for r in responses] == [201] * 50, [
        r.text for r in responses if r.status_code != 201
    ]
    w3, address = service.runtime.w3, service.runtime.deployment.address
    assert donation_count(w3, address, campaign_id) == 50
    # The relayer sent them together (group commit: one executeBatch per group, contract
    # 2.4.0), each signed call in exactly one transaction, nonces in order.
    rows = relayer_outbox(service)[before:]
    assert 1 <= len(rows) < 50 and {row.status for row in rows} == {"mined"}
    nonces = [row.nonce for row in rows]
    assert nonces == list(range(nonces[0], nonces[0] + len(rows)))
    holding = {d: row.tx_hash for row in rows for d in records_of(row)["ids"]}
    assert sorted(holding) == sorted(r.json()["records"][0]["ids"][0] for r in responses)
    assert any(len(records_of(row)["ids"]) > 1 for row in rows)
    for response in responses:
        (donation_id,) = response.json()["records"][0]["ids"]
        (event,) = donations_recorded(w3, address, donation_id)
        assert event["args"]["operator"] == charity.account.address  # signed by its own key
        assert "0x" + bytes(event["transactionHash"]).hex() == holding[donation_id]
        assert response.json()["transactions"][0]["tx_hash"] == holding[donation_id]
    batched = next(row for row in rows if len(records_of(row)["ids"]) > 1)
    sent = w3.eth.get_transaction(batched.tx_hash)
    assert hex0x(bytes(sent["input"])[:4]) == service.contract.encode_abi("executeBatch", [[], []])[:10]


@pytest.mark.slow
@pytest.mark.anvil
@pytest.mark.parametrize("crash_at", ["after-sign", "after-send"])
def test_a_relay_cut_off_by_a_crash_ends_mined_exactly_once(crash_at: str, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    log = tmp_path / "dev.log"
    with AnvilNode() as node:
        w3 = make_web3(node.url)
        env = dev_env(node.url, database_url, tmp_path)
        with DevProcess(env, log) as setup:
            setup.start()
            health = httpx.get(f"{setup.base}/healthz", timeout=10).json()
            address = health["chain"]["contract_address"]
            charity = own_key_charity(setup.base)
            campaign_id = charity.campaign()
            signed = charity.sign(donation_prepared(charity, campaign_id, 4_200))
        donation_id = records_of_signed(signed)

        with DevProcess({**env, "LEDGER_CRASH_AT": crash_at}, log) as crashing:
            crashing.start()
            charity.base = crashing.base
            with pytest.raises(httpx.TransportError):
                charity.relay(signed)
            assert crashing.wait_exit() == -signal.SIGKILL

        relayer = _relayer(database_url, w3.eth.chain_id)
        with DevProcess(env, log) as restarted:
            restarted.start()
            charity.base = restarted.base
            poll(
                lambda: outbox_of(database_url, w3.eth.chain_id, relayer).rows[-1].status == "mined",
                20,
                f"the relay cut off {crash_at} is mined:\n{restarted.log()}",
            )
            assert len(donations_recorded(w3, address, donation_id)) == 1
            # Sending the same signed call again: already used, nothing sent.
            again = charity.relay(signed)
            assert again.status_code == 409, again.text
            rows = outbox_of(database_url, w3.eth.chain_id, relayer).rows
            relayed = [r for r in rows if records_of(r).get("relay_nonce")]
            assert len([r for r in relayed if donation_id in records_of(r)["ids"]]) == 1
            assert donation_count(w3, address, campaign_id) == 1


def records_of_signed(signed: list[dict[str, Any]]) -> str:
    """The donation ID inside a signed recordDonation call."""
    data = unhex(signed[0]["message"]["data"])
    return ids.from_bytes32(data[4:36])


def _relayer(database_url: str, chain_id: int) -> str:
    """The account that sent the first transaction (the registrar, which also relays)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return str(
                connection.execute(
                    select(ChainTransaction.signer).where(ChainTransaction.chain_id == chain_id).limit(1)
                ).scalar_one()
            )
    finally:
        engine.dispose()


# ------------------------------------------------------------- bad input, as an attacker


def test_bad_signed_calls_and_registrations_are_4xx_and_send_nothing(embedded_service: Service) -> None:
    service = embedded_service
    charity = own_key_charity(service.base)
    campaign_id = charity.campaign()
    typed = donation_prepared(charity, campaign_id, 77)["signed_calls"][0]["typed_data"]
    good = sign_as(typed, charity.account)
    before = len(relayer_outbox(service))
    # A function a signed call may not make (registerCharity is the registrar's), signed by the key.
    register = encode("registerCharity", ids.to_bytes32(ids.new("charity")), "Mine", bytes(32)).data
    forbidden = {**typed, "message": {**typed["message"], "data": hex0x(register)}}
    refused = charity.relay([sign_as(forbidden, charity.account)])
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["name"] == "SignedCallNotAllowed"
    # Data that does not decode as the function its selector names.
    garbled = {**typed, "message": {**typed["message"], "data": typed["message"]["data"][:20]}}
    assert charity.relay([sign_as(garbled, charity.account)]).status_code == 422
    # A signature that is not 65 bytes, a nonce that is not 32, an unknown field.
    assert charity.relay([{**good, "signature": good["signature"][:-2]}]).status_code == 422
    short_nonce = {**good, "message": {**good["message"], "nonce": "0x1234"}}
    assert charity.relay([short_nonce]).status_code == 422
    assert charity.relay([{**good, "extra": 1}]).status_code == 422
    # More call data than any write makes: refused before it is parsed or decoded.
    huge = {**good, "message": {**good["message"], "data": "0x" + "ab" * 200_001}}
    assert charity.relay([huge]).status_code in (413, 422)
    # No key, an auditor's key: not allowed to submit.
    anonymous = httpx.post(f"{service.base}/v1/relay", json={"signed_calls": [good]}, timeout=30)
    assert anonymous.status_code == 401
    auditor = service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}).json()["key"]
    assert charity.relay([good], key=auditor).status_code == 403
    # The same signed call twice in one request, and an operator the charity does not have.
    assert charity.relay([good, good]).status_code == 422
    stranger = Account.create().address
    wrong_operator = charity.post(
        "/v1/donations",
        {"campaign_id": campaign_id, "amount": 5, "donor_reference": "x"},
        params={"mode": "prepare", "operator": stranger},
    )
    assert wrong_operator.status_code == 422, wrong_operator.text
    assert len(relayer_outbox(service)) == before
    # Registrations that do not fit: self-custody without an operator, the zero address,
    # an operator with platform custody.
    for body in (
        {"name": "X", "custody": "self"},
        {"name": "X", "custody": "self", "operator": "0x" + "0" * 40},
        {"name": "X", "operator": stranger},
        {"name": "X", "custody": "self", "operator": "0x12"},
    ):
        assert service.post("/v1/charities", ADMIN_KEY, json=body).status_code == 422, body
    # Still good: the call nobody managed to spoil.
    assert charity.relay([good]).status_code == 201


def test_the_same_signed_call_sent_twice_at_once_is_recorded_once(embedded_service: Service) -> None:
    charity = own_key_charity(embedded_service.base)
    campaign_id = charity.campaign()
    signed = charity.sign(donation_prepared(charity, campaign_id, 55))

    responses = concurrently(partial(charity.relay, signed) for _ in range(4))

    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 409, 409, 409], [r.text for r in responses]
    assert (
        donation_count(embedded_service.runtime.w3, embedded_service.runtime.deployment.address, campaign_id)
        == 1
    )
    rows = [r for r in relayer_outbox(embedded_service) if records_of(r).get("kind") == "donation"]
    assert len(rows) == 1
