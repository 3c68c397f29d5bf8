"""Who may write what, over HTTP: no key, a revoked key and an auditor key write nothing;
a charity key writes only its own charity's records (another charity's are "not found",
exactly as if they did not exist); signing keys and the keystore passphrase never leave
the keystore; production refuses placeholder secrets; and every record goes on chain
signed by its own charity's operator account."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from pydantic import SecretStr

from ledger_api.app import create_app
from ledger_api.chain.keystore import Keystore, KeystoreError
from ledger_api.core import ids
from ledger_api.core.config import DEV_PASSPHRASE, InsecureSettings, Settings
from tests.api.checks import campaign_view, problem, sender, transactions
from tests.api.service import ADMIN_KEY, Service, serve, settings_for

anvil = pytest.mark.anvil

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ("invoice.txt", b"invoice 42: 300 school meals", "text/plain")


@dataclass
class World:
    """Charity A with a campaign, two donations, a disbursement and its transaction;
    charity B with a campaign of its own; an auditor."""

    a: str
    a_key: str
    a_campaign: str
    a_donation: str
    a_disbursement: str
    a_transaction: str
    b: str
    b_key: str
    b_campaign: str
    auditor_key: str
    auditor_key_id: str


def build_world(service: Service) -> World:
    a, a_key = service.charity("Sunrise Children Fund")
    b, b_key = service.charity("Blue Sky Relief")
    a_campaign = service.campaign(a, a_key)
    b_campaign = service.campaign(b, b_key)
    donation = service.donate(a_campaign, a_key, 5_000)
    service.donate(a_campaign, a_key, 5_000)
    disbursement = service.post(
        "/v1/disbursements",
        a_key,
        json={"campaign_id": a_campaign, "amount": 1_000, "recipient": "CN-USCC-1", "purpose": "meals"},
    )
    assert disbursement.status_code == 201, disbursement.text
    auditor = service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"})
    assert auditor.status_code == 201, auditor.text
    return World(
        a=a,
        a_key=a_key,
        a_campaign=a_campaign,
        a_donation=donation["id"],
        a_disbursement=disbursement.json()["id"],
        a_transaction=donation["transaction"]["id"],
        b=b,
        b_key=b_key,
        b_campaign=b_campaign,
        auditor_key=auditor.json()["key"],
        auditor_key_id=auditor.json()["id"],
    )


def write_requests(w: World) -> dict[tuple[str, str], dict[str, Any]]:
    """One well-formed request for every write endpoint (route path -> request), aimed
    at charity A's records."""
    return {
        ("POST", "/v1/keys"): {"url": "/v1/keys", "json": {"role": "charity", "charity_id": w.a}},
        ("DELETE", "/v1/keys/{key_id}"): {"url": f"/v1/keys/{w.auditor_key_id}"},
        ("POST", "/v1/keys/{key_id}/rotate"): {"url": f"/v1/keys/{w.auditor_key_id}/rotate"},
        ("POST", "/v1/charities"): {"url": "/v1/charities", "json": {"name": "Impostor Fund"}},
        ("POST", "/v1/campaigns"): {
            "url": "/v1/campaigns",
            "json": {"charity_id": w.a, "name": "Winter coats", "currency": "CNY", "goal": 100},
        },
        ("POST", "/v1/campaigns/{campaign_id}/close"): {"url": f"/v1/campaigns/{w.a_campaign}/close"},
        ("POST", "/v1/donations"): {
            "url": "/v1/donations",
            "json": {"campaign_id": w.a_campaign, "amount": 100, "donor_reference": "d"},
        },
        ("POST", "/v1/donations/batch"): {
            "url": "/v1/donations/batch",
            "json": {"donations": [{"campaign_id": w.a_campaign, "amount": 100, "donor_reference": "d"}] * 2},
        },
        ("POST", "/v1/donations/{donation_id}/refunds"): {
            "url": f"/v1/donations/{w.a_donation}/refunds",
            "json": {"amount": 100, "reason": "paid twice"},
        },
        ("POST", "/v1/disbursements"): {
            "url": "/v1/disbursements",
            "json": {"campaign_id": w.a_campaign, "amount": 100, "recipient": "CN-USCC-2", "purpose": "x"},
        },
        ("POST", "/v1/disbursements/{disbursement_id}/evidence"): {
            "url": f"/v1/disbursements/{w.a_disbursement}/evidence",
            "files": [("files", DOCUMENT)],
        },
        ("POST", "/v1/disbursements/{disbursement_id}/evidence/{sha256}/withdrawal"): {
            "url": f"/v1/disbursements/{w.a_disbursement}/evidence/{SOME_SHA}/withdrawal",
            "json": {"reason": "uploaded by mistake"},
        },
        ("POST", "/v1/disbursements/{disbursement_id}/evidence/{sha256}/redacted-copy"): {
            "url": f"/v1/disbursements/{w.a_disbursement}/evidence/{SOME_SHA}/redacted-copy",
            "files": [("file", DOCUMENT)],
        },
        ("POST", "/v1/charities/{charity_id}/operators"): {
            "url": f"/v1/charities/{w.a}/operators",
            "json": {"account": SOME_ACCOUNT},
        },
        ("DELETE", "/v1/charities/{charity_id}/operators/{account}"): {
            "url": f"/v1/charities/{w.a}/operators/{SOME_ACCOUNT}",
        },
        ("POST", "/v1/relay"): {"url": "/v1/relay", "json": {"signed_calls": [SIGNED_CALL]}},
        ("POST", "/v1/imports"): {
            "url": "/v1/imports",
            "files": [("file", STATEMENT)],
            "data": {"mapping": json.dumps(_statement_mapping(w.a_campaign)), "dry_run": "false"},
        },
        ("POST", "/v1/imports/{import_id}/commit"): {"url": f"/v1/imports/{SOME_IMPORT}/commit"},
        ("DELETE", "/v1/imports/{import_id}"): {"url": f"/v1/imports/{SOME_IMPORT}"},
        ("PUT", "/v1/import-profiles/{name}"): {
            "url": "/v1/import-profiles/bank-x",
            "json": _statement_mapping(w.a_campaign),
        },
        ("DELETE", "/v1/import-profiles/{name}"): {"url": "/v1/import-profiles/bank-x"},
        ("POST", "/v1/charities/{charity_id}/approvers"): {
            "url": f"/v1/charities/{w.a}/approvers",
            "json": {"label": "Treasurer"},
        },
        ("PUT", "/v1/campaigns/{campaign_id}/approval-rule"): {
            "url": f"/v1/campaigns/{w.a_campaign}/approval-rule",
            "json": {"approvers": [SOME_ACCOUNT], "threshold": 1},
        },
        ("POST", "/v1/proposals/{proposal_id}/approve"): {"url": f"/v1/proposals/{w.a_disbursement}/approve"},
        ("POST", "/v1/proposals/{proposal_id}/reject"): {
            "url": f"/v1/proposals/{w.a_disbursement}/reject",
            "json": {"reason": "no quote attached"},
        },
        ("POST", "/v1/proposals/{proposal_id}/execute"): {"url": f"/v1/proposals/{w.a_disbursement}/execute"},
        ("POST", "/v1/recipients"): {
            "url": "/v1/recipients",
            "json": {"identifier": "GB-CHC-1234567", "name": "Village school", "account": SOME_ACCOUNT},
        },
        ("POST", "/v1/recipients/signed-calls"): {
            "url": "/v1/recipients/signed-calls",
            "json": {"message": SIGNED_CALL["message"], "signature": SIGNED_CALL["signature"]},
        },
        ("POST", "/v1/campaigns/{campaign_id}/end-date"): {
            "url": f"/v1/campaigns/{w.a_campaign}/end-date",
            "json": {"ends_on": "2027-06-30"},
        },
        ("POST", "/v1/campaigns/{campaign_id}/reports"): {
            "url": f"/v1/campaigns/{w.a_campaign}/reports",
            "json": _report(),
        },
        ("POST", "/v1/campaigns/{campaign_id}/reports/document"): {
            "url": f"/v1/campaigns/{w.a_campaign}/reports/document",
            "data": {"kind": "periodic", "period_start": "2027-01-01", "period_end": "2027-03-31"},
            "files": [("file", DOCUMENT)],
        },
        ("POST", "/v1/campaigns/{campaign_id}/disposals"): {
            "url": f"/v1/campaigns/{w.a_campaign}/disposals",
            "json": {"disposition": "returned_to_donors", "amount": 0},
        },
        ("POST", "/v1/charities/{charity_id}/corrections"): {
            "url": f"/v1/charities/{w.a}/corrections",
            "json": {"original_kind": "donation", "original_id": w.a_donation, "reason": "typed twice"},
        },
        ("POST", "/v1/webhooks"): {
            "url": "/v1/webhooks",
            "json": {"url": "https://example.org/hook", "events": ["donation.recorded"]},
        },
        ("DELETE", "/v1/webhooks/{webhook_id}"): {"url": f"/v1/webhooks/wh_{'0' * 24}"},
    }


def _report() -> dict[str, Any]:
    return {
        "kind": "periodic",
        "period_start": "2027-01-01",
        "period_end": "2027-03-31",
        "document_sha256": SOME_SHA,
    }


# Writes whose authority is a signature, not an API key: a recipient organisation has no
# key here and confirms with its own account (tests/api/test_recipients.py checks that a
# call signed by anyone else changes nothing).
KEYLESS_WRITES = {("POST", "/v1/recipients/signed-calls")}


# Writes an auditor key may make: its own webhooks, told of the records it may read
# (tests/api/test_webhooks.py checks another key's webhook is not found).
AUDITOR_WRITES = {("POST", "/v1/webhooks"), ("DELETE", "/v1/webhooks/{webhook_id}")}


def keyed_write_requests(w: World) -> dict[tuple[str, str], dict[str, Any]]:
    return {route: request for route, request in write_requests(w).items() if route not in KEYLESS_WRITES}


def _correction(donation: str) -> dict[str, Any]:
    return {"original_kind": "donation", "original_id": donation, "reason": "typed twice"}


def _rule() -> dict[str, Any]:
    return {"approvers": [SOME_ACCOUNT], "threshold": 1, "validity_hours": 24}


# A bank statement of one credit to charity A's campaign, and its column mapping.
STATEMENT = ("october.csv", "日期,流水号,户名,收入\n2026-10-01,B1,某人,12.00\n".encode(), "text/csv")
SOME_IMPORT = str(uuid.UUID(int=42))


def _statement_mapping(campaign: str) -> dict[str, str]:
    return {
        "date": "日期",
        "bank_reference": "流水号",
        "payer_reference": "户名",
        "credit": "收入",
        "campaign_id": campaign,
    }


# A well-formed operator account and signed call (signed by nobody's operator).
SOME_ACCOUNT = "0x" + "ab" * 20
SOME_SHA = "cd" * 32  # a document's SHA-256
SIGNED_CALL = {
    "message": {"operator": SOME_ACCOUNT, "data": "0x" + "12" * 36, "nonce": "0x" + "34" * 32, "deadline": 1},
    "signature": "0x" + "56" * 65,
}


def send(service: Service, method: str, request: dict[str, Any], key: str | None) -> httpx.Response:
    request = dict(request)
    headers = dict(request.pop("headers", {}))
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return service.client.request(method, headers=headers, **request)


def write_routes(service: Service) -> set[tuple[str, str]]:
    """Every (method, path) of the application that changes something."""
    paths = create_app(service.runtime).openapi()["paths"]
    return {
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method in ("post", "put", "patch", "delete") and (method.upper(), path) not in READ_ONLY_POSTS
    }


# POSTs that change nothing: the donor's ownership check carries secrets in its body,
# which must not travel in a URL; starting a reconciliation queues a read of the ledger
# that auditors may start too (who may: tests/api/test_reconciliation.py).
# A private recipient's proof is the ownership check of a disbursement.
READ_ONLY_POSTS = {
    ("POST", "/v1/donations/{donation_id}/ownership"),
    ("POST", "/v1/disbursements/{disbursement_id}/recipient-proof"),
    ("POST", "/v1/audit/reconciliations"),
}


def unchanged(service: Service, w: World, before: dict[str, Any]) -> None:
    """Nothing was written: no transaction, A's campaign as it was, the auditor key alive,
    no new account in the keystore, no evidence stored."""
    assert snapshot(service, w) == before


def snapshot(service: Service, w: World) -> dict[str, Any]:
    assert service.runtime.keystore is not None
    evidence = service.runtime.settings.evidence_path
    auditor = service.get(f"/v1/transactions/{w.a_transaction}", w.auditor_key)
    return {
        "transactions": transactions(service),
        "campaign": campaign_view(service, w.a_campaign),
        "donation": service.contract.functions.donationOf(ids.to_bytes32(w.a_donation)).call(),
        "accounts": service.runtime.keystore.addresses(),
        "evidence": sorted(p.name for p in evidence.rglob("*")) if evidence.exists() else [],
        "auditor_key_works": auditor.status_code,
    }


# ---------------------------------------------------------------- who


@anvil
def test_the_table_of_write_endpoints_is_complete(service: Service) -> None:
    """The tests below enumerate every write endpoint; a new one must join the table."""
    w = World(*(["x"] * 11))
    assert write_routes(service) == set(write_requests(w))


@anvil
def test_every_write_endpoint_needs_a_key(service: Service) -> None:
    w = build_world(service)
    before = snapshot(service, w)
    for (method, route), request in keyed_write_requests(w).items():
        for authorization in (None, "Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer not-a-key"):
            headers = {"Authorization": authorization} if authorization else {}
            response = service.client.request(method, headers=headers, **request)
            body = problem(response, 401, "unauthenticated")
            assert "key" in body["detail"].lower(), (route, body)
    unchanged(service, w, before)
    # Reading a transaction's state needs a key too.
    problem(service.get(f"/v1/transactions/{w.a_transaction}"), 401, "unauthenticated")


@anvil
def test_a_charity_key_finds_no_other_charitys_records(service: Service) -> None:
    """Charity B's key on charity A's records gets exactly the answer it would get for
    records that do not exist: it cannot even learn that they exist."""
    w = build_world(service)
    before = snapshot(service, w)
    unknown_campaign = ids.new("campaign")
    cases = [
        # (what B does to A's records, the same thing on records that do not exist)
        (
            ("POST", {"url": "/v1/campaigns", "json": {**_campaign(w.a)}}),
            ("POST", {"url": "/v1/campaigns", "json": {**_campaign(ids.new("charity"))}}),
        ),
        (
            ("POST", {"url": "/v1/donations", "json": _donation(w.a_campaign)}),
            ("POST", {"url": "/v1/donations", "json": _donation(unknown_campaign)}),
        ),
        (
            ("POST", {"url": "/v1/donations/batch", "json": {"donations": [_donation(w.a_campaign)] * 3}}),
            (
                "POST",
                {"url": "/v1/donations/batch", "json": {"donations": [_donation(unknown_campaign)] * 3}},
            ),
        ),
        (
            ("POST", {"url": f"/v1/donations/{w.a_donation}/refunds", "json": _refund()}),
            ("POST", {"url": f"/v1/donations/{ids.new('donation')}/refunds", "json": _refund()}),
        ),
        (
            ("POST", {"url": "/v1/disbursements", "json": _disbursement(w.a_campaign)}),
            ("POST", {"url": "/v1/disbursements", "json": _disbursement(unknown_campaign)}),
        ),
        (
            (
                "POST",
                {
                    "url": "/v1/disbursements",
                    "json": _disbursement(w.a_campaign, [{"donation_id": w.a_donation, "amount": 100}]),
                },
            ),
            (
                "POST",
                {
                    "url": "/v1/disbursements",
                    "json": _disbursement(unknown_campaign, [{"donation_id": w.a_donation, "amount": 100}]),
                },
            ),
        ),
        (
            (
                "POST",
                {"url": f"/v1/disbursements/{w.a_disbursement}/evidence", "files": [("files", DOCUMENT)]},
            ),
            (
                "POST",
                {
                    "url": f"/v1/disbursements/{ids.new('disbursement')}/evidence",
                    "files": [("files", DOCUMENT)],
                },
            ),
        ),
        (
            (
                "POST",
                {
                    "url": f"/v1/disbursements/{w.a_disbursement}/evidence/{SOME_SHA}/withdrawal",
                    "json": {"reason": "r"},
                },
            ),
            (
                "POST",
                {
                    "url": f"/v1/disbursements/{ids.new('disbursement')}/evidence/{SOME_SHA}/withdrawal",
                    "json": {"reason": "r"},
                },
            ),
        ),
        (
            (
                "POST",
                {
                    "url": f"/v1/disbursements/{w.a_disbursement}/evidence/{SOME_SHA}/redacted-copy",
                    "files": [("file", DOCUMENT)],
                },
            ),
            (
                "POST",
                {
                    "url": f"/v1/disbursements/{ids.new('disbursement')}/evidence/{SOME_SHA}/redacted-copy",
                    "files": [("file", DOCUMENT)],
                },
            ),
        ),
        (
            ("POST", {"url": f"/v1/campaigns/{w.a_campaign}/close"}),
            ("POST", {"url": f"/v1/campaigns/{unknown_campaign}/close"}),
        ),
        (
            ("GET", {"url": f"/v1/transactions/{w.a_transaction}"}),
            ("GET", {"url": f"/v1/transactions/{uuid.uuid4()}"}),
        ),
        (
            ("POST", {"url": f"/v1/charities/{w.a}/operators", "json": {"account": SOME_ACCOUNT}}),
            (
                "POST",
                {"url": f"/v1/charities/{ids.new('charity')}/operators", "json": {"account": SOME_ACCOUNT}},
            ),
        ),
        (
            ("DELETE", {"url": f"/v1/charities/{w.a}/operators/{SOME_ACCOUNT}"}),
            ("DELETE", {"url": f"/v1/charities/{ids.new('charity')}/operators/{SOME_ACCOUNT}"}),
        ),
        (
            ("POST", {"url": f"/v1/charities/{w.a}/approvers", "json": {"label": "Treasurer"}}),
            (
                "POST",
                {"url": f"/v1/charities/{ids.new('charity')}/approvers", "json": {"label": "Treasurer"}},
            ),
        ),
        (
            ("PUT", {"url": f"/v1/campaigns/{w.a_campaign}/approval-rule", "json": _rule()}),
            ("PUT", {"url": f"/v1/campaigns/{unknown_campaign}/approval-rule", "json": _rule()}),
        ),
        *(
            (
                ("POST", {"url": f"/v1/campaigns/{w.a_campaign}/{path}", "json": body}),
                ("POST", {"url": f"/v1/campaigns/{unknown_campaign}/{path}", "json": body}),
            )
            for path, body in (
                ("end-date", {"ends_on": "2027-06-30"}),
                ("reports", _report()),
                ("disposals", {"disposition": "returned_to_donors", "amount": 0}),
            )
        ),
        (
            (
                "POST",
                {
                    "url": f"/v1/campaigns/{w.a_campaign}/reports/document",
                    "data": {"kind": "final", "period_start": "2027-01-01", "period_end": "2027-03-31"},
                    "files": [("file", DOCUMENT)],
                },
            ),
            (
                "POST",
                {
                    "url": f"/v1/campaigns/{unknown_campaign}/reports/document",
                    "data": {"kind": "final", "period_start": "2027-01-01", "period_end": "2027-03-31"},
                    "files": [("file", DOCUMENT)],
                },
            ),
        ),
        (
            ("POST", {"url": f"/v1/charities/{w.a}/corrections", "json": _correction(w.a_donation)}),
            (
                "POST",
                {"url": f"/v1/charities/{ids.new('charity')}/corrections", "json": _correction(w.a_donation)},
            ),
        ),
    ]
    for (method, theirs), (_, missing) in cases:
        response = send(service, method, theirs, w.b_key)
        body = problem(response, 404, "not-found")
        reference = problem(send(service, method, missing, w.b_key), 404, "not-found")
        body.pop("instance", None)
        reference.pop("instance", None)
        assert body == reference, (theirs["url"], body, reference)
        # ... and the same request with the Idempotency-Key header changes nothing.
        again = send(
            service, method, {**theirs, "headers": {"Idempotency-Key": "k-" + theirs["url"]}}, w.b_key
        )
        problem(again, 404, "not-found")
    # A batch that mixes B's own campaign with A's: A's campaign is not found either.
    mixed = {"donations": [_donation(w.b_campaign), _donation(w.a_campaign)]}
    body = problem(service.post("/v1/donations/batch", w.b_key, json=mixed), 404, "not-found")
    mixed = {"donations": [_donation(w.b_campaign), _donation(unknown_campaign)]}
    reference = problem(service.post("/v1/donations/batch", w.b_key, json=mixed), 404, "not-found")
    assert body["detail"] == reference["detail"]
    unchanged(service, w, before)
    # A's own key does every one of these (the 404s above were about whose records they are).
    assert service.get(f"/v1/transactions/{w.a_transaction}", w.a_key).status_code == 200
    closed = service.post(f"/v1/campaigns/{w.a_campaign}/close", w.a_key)
    assert closed.status_code == 201, closed.text
    assert campaign_view(service, w.a_campaign)["closed"] is True


@anvil
def test_an_auditor_key_reads_but_never_writes(service: Service) -> None:
    w = build_world(service)
    before = snapshot(service, w)
    for (method, route), request in keyed_write_requests(w).items():
        if (method, route) in AUDITOR_WRITES:
            continue
        response = send(service, method, request, w.auditor_key)
        body = problem(response, 403, "forbidden")
        assert "admin" in body["detail"] or "not write" in body["detail"], (route, body)
    unchanged(service, w, before)
    # It does read: the state of any charity's transaction.
    view = service.get(f"/v1/transactions/{w.a_transaction}", w.auditor_key)
    assert view.status_code == 200, view.text
    assert view.json()["id"] == w.a_transaction


@anvil
def test_a_revoked_key_is_refused_everywhere(service: Service) -> None:
    w = build_world(service)
    issued = service.post("/v1/keys", ADMIN_KEY, json={"role": "charity", "charity_id": w.a})
    assert issued.status_code == 201, issued.text
    key, key_id = issued.json()["key"], issued.json()["id"]
    assert key.startswith(f"lk_{key_id}_")
    # The key works...
    donation = service.post("/v1/donations", key, json=_donation(w.a_campaign))
    assert donation.status_code == 201, donation.text
    # ... until it is revoked.
    revoked = service.client.delete(f"/v1/keys/{key_id}", headers=service.admin())
    assert revoked.status_code == 204, revoked.text
    before = snapshot(service, w)
    for (method, route), request in keyed_write_requests(w).items():
        for headers in ({}, {"Idempotency-Key": f"revoked-{route}"}):
            response = send(service, method, {**request, "headers": headers}, key)
            body = problem(response, 401, "unauthenticated")
            assert "revoked" in body["detail"], (route, body)
    problem(service.get(f"/v1/transactions/{w.a_transaction}", key), 401, "unauthenticated")
    unchanged(service, w, before)
    # Revoking is idempotent; revoking a key that never existed is 404.
    assert service.client.delete(f"/v1/keys/{key_id}", headers=service.admin()).status_code == 204
    problem(service.client.delete("/v1/keys/abcdefghijkl", headers=service.admin()), 404, "not-found")
    # The charity's other key is unaffected.
    assert service.post("/v1/donations", w.a_key, json=_donation(w.a_campaign)).status_code == 201


@anvil
def test_a_charity_key_cannot_issue_keys_or_register_charities(service: Service) -> None:
    w = build_world(service)
    before = snapshot(service, w)
    attempts = [
        ("POST", {"url": "/v1/keys", "json": {"role": "charity", "charity_id": w.a}}),
        ("POST", {"url": "/v1/keys", "json": {"role": "charity", "charity_id": w.b}}),
        ("POST", {"url": "/v1/keys", "json": {"role": "auditor"}}),
        ("POST", {"url": "/v1/charities", "json": {"name": "Shadow Fund"}}),
        ("DELETE", {"url": f"/v1/keys/{w.auditor_key_id}"}),
        ("DELETE", {"url": f"/v1/keys/{w.a_key.split('_')[1]}"}),
    ]
    for method, request in attempts:
        body = problem(send(service, method, request, w.a_key), 403, "forbidden")
        assert "admin" in body["detail"], body
    unchanged(service, w, before)
    assert service.post("/v1/donations", w.a_key, json=_donation(w.a_campaign)).status_code == 201


@anvil
def test_each_charity_signs_its_records_with_its_own_operator(service: Service) -> None:
    """Two charities record every kind of record; the chain says who sent each."""
    assert service.runtime.service_account is not None
    operators = {}
    for name in ("Sunrise Children Fund", "Blue Sky Relief"):
        registered = service.post("/v1/charities", ADMIN_KEY, json={"name": name})
        assert registered.status_code == 201, registered.text
        charity_id, operator = registered.json()["id"], registered.json()["operator"]
        operators[charity_id] = operator
        # Registering a charity and its operator is the registrar's (the service account's) job.
        for transaction in registered.json()["transactions"]:
            assert sender(service, transaction["tx_hash"]) == service.runtime.service_account
        issued = service.post("/v1/keys", ADMIN_KEY, json={"role": "charity", "charity_id": charity_id})
        key = issued.json()["key"]
        hashes: dict[str, str] = {}
        created = service.post(
            "/v1/campaigns", key, json={"charity_id": charity_id, "name": "n", "currency": "CNY", "goal": 9}
        )
        hashes["campaign"] = created.json()["transaction"]["tx_hash"]
        campaign_id = created.json()["id"]
        donation = service.donate(campaign_id, key, 1_000)
        hashes["donation"] = donation["transaction"]["tx_hash"]
        batch = service.post(
            "/v1/donations/batch", key, json={"donations": [_donation(campaign_id, 500) for _ in range(3)]}
        )
        assert batch.status_code == 201, batch.text
        hashes["donation batch"] = batch.json()["transactions"][0]["tx_hash"]
        refund = service.post(f"/v1/donations/{donation['id']}/refunds", key, json=_refund())
        assert refund.status_code == 201, refund.text
        hashes["refund"] = refund.json()["transaction"]["tx_hash"]
        disbursement = service.post("/v1/disbursements", key, json=_disbursement(campaign_id))
        assert disbursement.status_code == 201, disbursement.text
        hashes["disbursement"] = disbursement.json()["transaction"]["tx_hash"]
        evidence = service.post(
            f"/v1/disbursements/{disbursement.json()['id']}/evidence",
            key,
            files=[("files", ("receipt.txt", f"receipt of {name}".encode(), "text/plain"))],
        )
        assert evidence.status_code == 201, evidence.text
        hashes["evidence"] = evidence.json()["documents"][0]["transaction"]["tx_hash"]
        closed = service.post(f"/v1/campaigns/{campaign_id}/close", key)
        assert closed.status_code == 201, closed.text
        hashes["campaign closed"] = closed.json()["transaction"]["tx_hash"]
        for kind, tx_hash in hashes.items():
            assert sender(service, tx_hash) == operator, (name, kind)
    # Two distinct operators, neither of them the service (registrar) account.
    assert len(set(operators.values())) == 2
    assert service.runtime.service_account not in operators.values()


# ------------------------------------------------------------ secrets


@pytest.fixture
def secret_service(anvil: Any, database_url: str, tmp_path: Path) -> Iterator[tuple[Service, str]]:
    """The service with a keystore passphrase of its own (not the development one)."""
    passphrase = "keystore-pass-" + secrets.token_hex(16)
    settings = settings_for(tmp_path, anvil.url, database_url, keystore_passphrase=SecretStr(passphrase))
    with serve(settings) as running:
        yield running, passphrase


class AllLogs(logging.Handler):
    """Every record of every logger, whatever its level or propagation."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> Iterator[str]:
        formatter = logging.Formatter()
        for record in self.records:
            yield record.getMessage()
            yield repr(vars(record))
            if record.exc_info:
                yield formatter.formatException(record.exc_info)
            if record.stack_info:
                yield record.stack_info


def _forms(secret: bytes | str) -> list[str]:
    """The ways a secret could be written down."""
    if isinstance(secret, str):
        return [secret]
    return [
        secret.hex(),
        secret.hex().upper(),
        repr(secret)[2:-1],
        str(int.from_bytes(secret, "big")),
    ]


@anvil
def test_signing_keys_and_the_passphrase_never_leave_the_keystore(
    secret_service: tuple[Service, str], caplog: pytest.LogCaptureFixture
) -> None:
    service, passphrase = secret_service
    runtime = service.runtime
    assert runtime.keystore is not None
    # Every logger at DEBUG, the non-propagating ones (uvicorn's) included.
    handler = AllLogs()
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    caplog.set_level(logging.DEBUG)
    for logger in loggers:
        caplog.set_level(logging.DEBUG, logger=logger.name)
    logging.getLogger().addHandler(handler)
    silent = [logger for logger in loggers if not logger.propagate]
    for logger in silent:
        logger.addHandler(handler)
    responses: list[httpx.Response] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        responses.append(response)

    service.client.event_hooks["response"].append(keep)
    try:
        w = build_world(service)
        # Successes of every kind...
        service.post(f"/v1/donations/{w.a_donation}/refunds", w.a_key, json=_refund())
        service.post(f"/v1/disbursements/{w.a_disbursement}/evidence", w.a_key, files=[("files", DOCUMENT)])
        service.post(f"/v1/disbursements/{w.a_disbursement}/evidence", w.a_key, files=[("files", DOCUMENT)])
        service.post(
            "/v1/donations/batch", w.a_key, json={"donations": [_donation(w.a_campaign)] * 3}
        ).raise_for_status()
        pending = service.post("/v1/donations?wait=false", w.a_key, json=_donation(w.a_campaign))
        service.get(pending.json()["transaction"]["href"], w.a_key)
        repeated = _donation(w.a_campaign)
        for _ in range(2):
            service.post("/v1/donations", w.a_key, json=repeated, headers={"Idempotency-Key": "same"})
        # ... and failures of every kind: rejected by the contract, invalid, unknown,
        # unauthorised, forbidden, idempotency mismatch.
        overdrawn = service.post(
            f"/v1/donations/{w.a_donation}/refunds", w.a_key, json={"amount": 10**9, "reason": "too much"}
        )
        assert overdrawn.status_code == 409, overdrawn.text
        service.post("/v1/donations", w.a_key, json={**_donation(w.a_campaign), "amount": 1.5})
        service.post(
            "/v1/donations", w.a_key, content=b"{not json", headers={"content-type": "application/json"}
        )
        service.post("/v1/donations", w.a_key, json=_donation(ids.new("campaign")))
        service.post("/v1/donations", w.b_key, json=_donation(w.a_campaign))
        service.post("/v1/donations", None, json=_donation(w.a_campaign))
        service.post("/v1/donations", "lk_abcdefghijkl_" + "x" * 43, json=_donation(w.a_campaign))
        service.post("/v1/charities", w.auditor_key, json={"name": "x"})
        service.post(
            "/v1/donations",
            w.a_key,
            json={**_donation(w.a_campaign), "amount": 7},
            headers={"Idempotency-Key": "same"},
        )
        service.post(f"/v1/campaigns/{w.a_campaign}/close", w.a_key)
        closed = service.post("/v1/donations", w.a_key, json=_donation(w.a_campaign))
        assert closed.status_code == 409, closed.text
        service.get("/healthz")
        service.get("/openapi.json")
        service.get("/metrics")
    finally:
        service.client.event_hooks["response"].remove(keep)
        logging.getLogger().removeHandler(handler)
        for logger in silent:
            logger.removeHandler(handler)

    addresses = runtime.keystore.addresses()
    assert len(addresses) == 3  # the service account and one operator per charity
    private_keys = [bytes(runtime.keystore.account(address).key) for address in addresses]
    for private_key, address in zip(private_keys, addresses, strict=True):
        assert to_checksum_address(address) == runtime.keystore.account(address).address
        assert len(private_key) == 32
    needles = [form for key in private_keys for form in _forms(key)] + _forms(passphrase)
    api_keys = [ADMIN_KEY, w.a_key, w.b_key, w.auditor_key]

    assert len(responses) > 30 and len(handler.records) > 50
    # The capture is wide: SQL with its parameters, JSON-RPC traffic, access logs.
    sources = {record.name.split(".")[0] for record in handler.records}
    assert {"sqlalchemy", "web3", "uvicorn"} <= sources, sources
    statuses = {response.status_code for response in responses}
    assert {200, 201, 202, 401, 403, 404, 409, 422} <= statuses
    # (Which secret leaked is reported by its index, so that a failure does not print it.)
    for response in responses:
        text = response.content.decode("utf-8", "replace") + repr(response.headers.multi_items())
        leaked = [i for i, needle in enumerate(needles) if needle in text]
        assert not leaked, (response.request.url, response.status_code, leaked)
    for text in handler.texts():
        leaked = [i for i, needle in enumerate(needles) if needle in text]
        assert not leaked, ("a log record holds a signing key or the passphrase", leaked)
        leaked = [i for i, api_key in enumerate(api_keys) if api_key in text]
        assert not leaked, ("a log record holds an API key", leaked)
    assert passphrase not in repr(runtime.keystore) and passphrase not in repr(runtime.settings)

    # On disk the keys are encrypted: no key and no passphrase in any file's bytes.
    files = sorted(runtime.settings.keystore_path.glob("*.json"))
    assert [f.stem for f in files] == addresses
    for path, private_key in zip(files, private_keys, strict=True):
        raw = path.read_bytes()
        for other in private_keys:
            assert other not in raw
            for form in _forms(other):
                assert form.encode() not in raw and form.lower().encode() not in raw.lower()
        assert passphrase.encode() not in raw
        document = json.loads(raw)
        assert "crypto" in document and document["crypto"]["ciphertext"]
        assert document["crypto"]["ciphertext"] != private_key.hex()
        assert document["crypto"]["kdf"] in ("scrypt", "pbkdf2")
        # ... and it is this key's store: the passphrase opens it, nothing else does.
        assert bytes(Account.decrypt(document, passphrase)) == private_key
        with pytest.raises(ValueError):
            Account.decrypt(document, DEV_PASSPHRASE)
        assert path.stat().st_mode & 0o077 == 0, oct(path.stat().st_mode)


def test_a_wrong_passphrase_error_names_neither_passphrase(tmp_path: Path) -> None:
    right, wrong = "right-" + secrets.token_hex(8), "wrong-" + secrets.token_hex(8)
    address = Keystore(tmp_path, SecretStr(right), fast_kdf=True).create("operator")
    with pytest.raises(KeystoreError) as failure:
        Keystore(tmp_path, SecretStr(wrong), fast_kdf=True).account(address)
    message = str(failure.value) + repr(failure.value)
    assert right not in message and wrong not in message
    assert address in message


# --------------------------------------------------------- production


STRONG_ADMIN = "a" * 16 + secrets.token_urlsafe(24)
STRONG_PASSPHRASE = secrets.token_urlsafe(24)
STRONG_SECRET = secrets.token_urlsafe(32)
PUBLIC_URL = "https://ledger.example.org"
STRONG = {
    "LEDGER_KEYSTORE_PASSPHRASE": STRONG_PASSPHRASE,
    "LEDGER_ADMIN_KEY": STRONG_ADMIN,
    "LEDGER_SECRET_KEY": STRONG_SECRET,
    "LEDGER_PUBLIC_URL": PUBLIC_URL,
}


@pytest.mark.parametrize(
    ("passphrase", "admin_key", "secret_key", "public_url", "complaints"),
    [
        (DEV_PASSPHRASE, STRONG_ADMIN, STRONG_SECRET, PUBLIC_URL, ["LEDGER_KEYSTORE_PASSPHRASE"]),
        ("", STRONG_ADMIN, STRONG_SECRET, PUBLIC_URL, ["LEDGER_KEYSTORE_PASSPHRASE"]),
        (STRONG_PASSPHRASE, None, STRONG_SECRET, PUBLIC_URL, ["LEDGER_ADMIN_KEY"]),
        (STRONG_PASSPHRASE, "", STRONG_SECRET, PUBLIC_URL, ["LEDGER_ADMIN_KEY"]),
        (STRONG_PASSPHRASE, "short-admin-key", STRONG_SECRET, PUBLIC_URL, ["LEDGER_ADMIN_KEY"]),
        (STRONG_PASSPHRASE, STRONG_ADMIN, None, PUBLIC_URL, ["LEDGER_SECRET_KEY"]),
        (STRONG_PASSPHRASE, STRONG_ADMIN, "short", PUBLIC_URL, ["LEDGER_SECRET_KEY"]),
        # Without it, receipts would print whatever Host header a request named.
        (STRONG_PASSPHRASE, STRONG_ADMIN, STRONG_SECRET, None, ["LEDGER_PUBLIC_URL"]),
        (
            DEV_PASSPHRASE,
            None,
            None,
            None,
            ["LEDGER_KEYSTORE_PASSPHRASE", "LEDGER_ADMIN_KEY", "LEDGER_SECRET_KEY", "LEDGER_PUBLIC_URL"],
        ),
    ],
    # Named, not numbered from the values: the strong ones are random, and test names must be
    # the same in every pytest-xdist worker (and had better not print secrets).
    ids=[
        "dev-passphrase",
        "empty-passphrase",
        "no-admin-key",
        "empty-admin-key",
        "short-admin-key",
        "no-secret-key",
        "short-secret-key",
        "no-public-url",
        "all-placeholders",
    ],
)
def test_production_refuses_placeholder_secrets(
    passphrase: str,
    admin_key: str | None,
    secret_key: str | None,
    public_url: str | None,
    complaints: list[str],
) -> None:
    settings = Settings(
        env="production",
        keystore_passphrase=SecretStr(passphrase),
        admin_key=SecretStr(admin_key) if admin_key is not None else None,
        secret_key=SecretStr(secret_key) if secret_key is not None else None,
        public_url=public_url,
    )
    with pytest.raises(InsecureSettings) as refused:
        settings.check_secrets()
    message = str(refused.value)
    for complaint in complaints:
        assert complaint in message
    # The message names what is wrong, never the values.
    assert passphrase == "" or passphrase not in message
    assert not admin_key or admin_key not in message
    assert not secret_key or secret_key not in message
    # Development runs on placeholders; production with real secrets is fine.
    Settings(env="development", keystore_passphrase=SecretStr(passphrase)).check_secrets()
    Settings(
        env="production",
        keystore_passphrase=SecretStr(STRONG_PASSPHRASE),
        admin_key=SecretStr(STRONG_ADMIN),
        secret_key=SecretStr(STRONG_SECRET),
        public_url=PUBLIC_URL,
    ).check_secrets()


def _ledger_serve(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run(
        [sys.executable, "-m", "ledger_api.cli", "serve", "--port", "1"],
        cwd=ROOT,
        env={
            **inherited,
            "LEDGER_ENV": "production",
            "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
            "LEDGER_KEYSTORE_PATH": str(tmp_path / "keystore"),
            "LEDGER_EVIDENCE_PATH": str(tmp_path / "evidence"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


@anvil
def test_ledger_serve_refuses_placeholder_secrets_in_production(anvil: Any, tmp_path: Path) -> None:
    from ledger_api.cli import app

    if "serve" not in {command.callback.__name__ for command in app.registered_commands if command.callback}:
        pytest.skip("there is no `ledger serve` command")
    weak = _ledger_serve({"LEDGER_RPC_URL": anvil.url}, tmp_path)
    assert weak.returncode != 0, weak.stdout + weak.stderr
    assert "LEDGER_KEYSTORE_PASSPHRASE" in weak.stderr and "LEDGER_ADMIN_KEY" in weak.stderr, weak.stderr
    assert not (tmp_path / "keystore").exists()  # refused before it touched anything
    short_admin = _ledger_serve(
        {**STRONG, "LEDGER_RPC_URL": anvil.url, "LEDGER_ADMIN_KEY": "0123456789"}, tmp_path
    )
    assert short_admin.returncode != 0
    assert "LEDGER_ADMIN_KEY" in short_admin.stderr and "PASSPHRASE" not in short_admin.stderr
    assert "0123456789" not in short_admin.stderr
    # With real secrets it gets past the check (and stops at the next thing it lacks:
    # a deployment), which shows the refusals above were about the secrets.
    strong = _ledger_serve({**STRONG, "LEDGER_RPC_URL": anvil.url}, tmp_path)
    assert strong.returncode != 0
    assert "LEDGER_KEYSTORE_PASSPHRASE" not in strong.stderr and "deploy" in strong.stderr, strong.stderr


# ------------------------------------------------------------ bodies


def _campaign(charity_id: str) -> dict[str, Any]:
    return {"charity_id": charity_id, "name": "Winter coats", "currency": "CNY", "goal": 10_000}


def _donation(campaign_id: str, amount: int = 100) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "amount": amount, "donor_reference": "donor-" + secrets.token_hex(4)}


def _refund() -> dict[str, Any]:
    return {"amount": 100, "reason": "paid twice"}


def _disbursement(campaign_id: str, allocations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "campaign_id": campaign_id,
        "amount": 100,
        "recipient": "CN-USCC-3",
        "purpose": "x",
    }
    if allocations is not None:
        body["allocations"] = allocations
    return body
