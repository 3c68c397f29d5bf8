"""A charity's writes end to end over HTTP, checked against the chain and the mirror:
batches, donor commitments and what the service keeps of a donor (nothing), writes it
does not wait for, explicit and first-in-first-out allocations, evidence documents,
refunds and closing a campaign."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any

import pytest
from eth_utils import keccak
from sqlalchemy import MetaData, select

from indexer import models as im
from ledger_api.core import ids
from tests.api.checks import (
    campaign_view,
    contract_error,
    donation_view,
    problem,
    sender,
    transactions,
    wait_for_mirror,
)
from tests.api.service import Service

pytestmark = pytest.mark.anvil


def disburse(service: Service, key: str, campaign_id: str, amount: int, **extra: Any) -> dict[str, Any]:
    response = service.post(
        "/v1/disbursements",
        key,
        json={
            "campaign_id": campaign_id,
            "amount": amount,
            "recipient": "CN-USCC-9111",
            "purpose": "meals",
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def refund(service: Service, key: str, donation_id: str, amount: int) -> dict[str, Any]:
    response = service.post(
        f"/v1/donations/{donation_id}/refunds", key, json={"amount": amount, "reason": "donor asked"}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def database_text(service: Service) -> str:
    """Every value of every table, as text (bytes also as hex)."""
    metadata = MetaData()
    metadata.reflect(service.runtime.engine)
    parts: list[str] = []
    with service.runtime.engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        raw = bytes(value)
                        parts += [raw.decode("utf-8", "replace"), raw.hex()]
                    elif value is not None:
                        parts.append(str(value))
    return "\n".join(parts)


# ---------------------------------------------------------------- donations


def test_a_batch_of_a_thousand_donations(service: Service) -> None:
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    tag = secrets.token_hex(4)
    references = [f"捐赠人-{i}-{tag}" for i in range(1000)]
    amounts = [100 + i for i in range(1000)]
    before = transactions(service)
    started = time.monotonic()
    response = service.post(
        "/v1/donations/batch",
        key,
        json={
            "donations": [
                {
                    "campaign_id": campaign_id,
                    "amount": amount,
                    "donor_reference": reference,
                    "channel": "bank",
                }
                for amount, reference in zip(amounts, references, strict=True)
            ]
        },
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 201, response.text
    body = response.json()
    donations = body["donations"]
    # Two transactions of 500, both mined, both from the charity's operator.
    assert transactions(service) == before + 2
    assert len(body["transactions"]) == 2
    assert all(t["status"] == "mined" for t in body["transactions"])
    for transaction in body["transactions"]:
        assert sender(service, transaction["tx_hash"]) == service.operators[charity_id]
    # A thousand donations, in order, each with its own ID and its own receipt secret.
    assert [d["amount"] for d in donations] == amounts
    assert len({d["id"] for d in donations}) == 1000
    assert len({d["receipt_secret"] for d in donations}) == 1000
    assert all(d["id"].startswith("DN-") and d["campaign_id"] == campaign_id for d in donations)
    view = campaign_view(service, campaign_id)
    assert view["donation_count"] == 1000
    assert view["received"] == sum(amounts)

    # Each receipt secret and donor reference reproduce the commitment on chain.
    contract = service.contract
    events = []
    for transaction in body["transactions"]:
        receipt = service.runtime.w3.eth.get_transaction_receipt(transaction["tx_hash"])
        events += contract.events.DonationRecorded().process_receipt(receipt)
    assert len(events) == 1000
    for donation, reference, event in zip(donations, references, events, strict=True):
        salt = bytes.fromhex(donation["receipt_secret"][2:])
        assert len(salt) == 32
        expected = keccak(salt + reference.encode("utf-8"))
        assert event["args"]["donationId"] == ids.to_bytes32(donation["id"])
        assert event["args"]["donorCommitment"] == expected
        assert event["args"]["amount"] == donation["amount"]
        assert donation["donor_commitment"] == "0x" + expected.hex()
        # ... and the commitment binds the reference: another one does not match.
        assert keccak(salt + (reference + " ").encode()) != expected
    # The mirror has the same commitments.
    wait_for_mirror(service)
    with service.runtime.engine.connect() as connection:
        mirrored = dict(
            connection.execute(
                select(im.Donation.donation_id, im.Donation.donor_commitment).where(
                    im.Donation.campaign_id == ids.to_hex(campaign_id)
                )
            ).all()
        )
    assert mirrored == {ids.to_hex(d["id"]): d["donor_commitment"] for d in donations}

    # First in, first out follows the batch's order.
    paid = disburse(service, key, campaign_id, amounts[0] + amounts[1] + amounts[2] + 1)
    assert paid["allocations"] == [
        {"donation_id": donations[0]["id"], "amount": amounts[0]},
        {"donation_id": donations[1]["id"], "amount": amounts[1]},
        {"donation_id": donations[2]["id"], "amount": amounts[2]},
        {"donation_id": donations[3]["id"], "amount": 1},
    ]
    assert elapsed < 60


def test_the_service_keeps_no_donor_reference(service: Service) -> None:
    """Not in any table: not the outbox's signed bytes, not the mirror's events, not the
    stored answers of idempotent requests."""
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    tag = secrets.token_hex(6)
    single, keyed, batched = f"Zhang San {tag}", f"李四 {tag}", [f"Wang Wu {tag} #{i}" for i in range(3)]
    service.donate(campaign_id, key, 500, single)
    response = service.post(
        "/v1/donations",
        key,
        json={"campaign_id": campaign_id, "amount": 600, "donor_reference": keyed},
        headers={"Idempotency-Key": "donor-privacy"},
    )
    assert response.status_code == 201, response.text
    response = service.post(
        "/v1/donations/batch",
        key,
        json={
            "donations": [{"campaign_id": campaign_id, "amount": 7, "donor_reference": r} for r in batched]
        },
    )
    assert response.status_code == 201, response.text
    pending = service.post(
        "/v1/donations?wait=false",
        key,
        json={"campaign_id": campaign_id, "amount": 8, "donor_reference": f"pending {tag}"},
    )
    assert pending.status_code == 202, pending.text
    wait_for_mirror(service)
    dump = database_text(service)
    assert ids.to_hex(campaign_id) in dump and "0x" in dump  # the dump does see the records
    for reference in [single, keyed, *batched, f"pending {tag}"]:
        for form in (reference, reference.encode().hex(), json.dumps(reference)[1:-1]):
            assert form not in dump, reference
    assert tag not in dump


def test_a_write_not_waited_for_is_202_and_its_transaction_gets_mined(service: Service) -> None:
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    response = service.post(
        "/v1/donations?wait=false",
        key,
        json={"campaign_id": campaign_id, "amount": 900, "donor_reference": "d"},
    )
    assert response.status_code == 202, response.text
    donation = response.json()
    transaction = donation["transaction"]
    assert transaction["status"] in ("signed", "sent")
    assert transaction["href"] == f"/v1/transactions/{transaction['id']}"
    deadline = time.monotonic() + 20
    while True:
        view = service.get(transaction["href"], key)
        assert view.status_code == 200, view.text
        if view.json()["status"] == "mined":
            break
        assert view.json()["status"] in ("queued", "sent"), view.json()
        assert time.monotonic() < deadline, view.json()
        time.sleep(0.2)
    mined = view.json()
    assert mined["tx_hash"] == transaction["tx_hash"]
    assert mined["records"] == {"kind": "donation", "ids": [donation["id"]]}
    assert mined["signer"] == service.operators[charity_id]
    receipt = service.runtime.w3.eth.get_transaction_receipt(mined["tx_hash"])
    assert mined["block_number"] == receipt["blockNumber"]
    assert mined["block_hash"] == "0x" + bytes(receipt["blockHash"]).hex()
    assert donation_view(service, donation["id"])["amount"] == 900
    # A batch not waited for: 202 and one link per transaction.
    batch = service.post(
        "/v1/donations/batch?wait=false",
        key,
        json={"donations": [{"campaign_id": campaign_id, "amount": 1, "donor_reference": "d"}] * 501},
    )
    assert batch.status_code == 202, batch.text
    assert [t["href"] for t in batch.json()["transactions"]] == [
        f"/v1/transactions/{t['id']}" for t in batch.json()["transactions"]
    ]
    assert len(batch.json()["transactions"]) == 2


# ------------------------------------------------------------ disbursements


def test_explicit_allocations_are_recorded_as_given(service: Service) -> None:
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    d1, d2, d3 = (service.donate(campaign_id, key, amount)["id"] for amount in (100, 200, 300))
    given = [{"donation_id": d3, "amount": 200}, {"donation_id": d1, "amount": 50}]
    paid = disburse(service, key, campaign_id, 250, allocations=given)
    assert paid["allocation"] == "explicit"
    assert paid["allocations"] == given
    assert [donation_view(service, d)["allocated"] for d in (d1, d2, d3)] == [50, 0, 200]
    view = service.contract.functions.disbursementOf(ids.to_bytes32(paid["id"])).call()
    assert (view[1], view[2]) == (250, 2)
    # Donation IDs may be given in any case or as hex.
    more = disburse(
        service,
        key,
        campaign_id,
        30,
        allocations=[
            {"donation_id": ids.to_hex(d2), "amount": 20},
            {"donation_id": d1.lower(), "amount": 10},
        ],
    )
    assert [donation_view(service, d)["allocated"] for d in (d1, d2, d3)] == [60, 20, 200]
    wait_for_mirror(service)
    with service.runtime.engine.connect() as connection:
        rows = connection.execute(
            select(im.Allocation.disbursement_id, im.Allocation.donation_id, im.Allocation.amount)
        ).all()
    assert sorted(rows) == sorted(
        [
            (ids.to_hex(paid["id"]), ids.to_hex(d3), 200),
            (ids.to_hex(paid["id"]), ids.to_hex(d1), 50),
            (ids.to_hex(more["id"]), ids.to_hex(d2), 20),
            (ids.to_hex(more["id"]), ids.to_hex(d1), 10),
        ]
    )


def test_first_in_first_out_skips_spent_and_refunded_donations(service: Service) -> None:
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    d1, d2, d3, d4, d5 = (service.donate(campaign_id, key, 100)["id"] for _ in range(5))
    disburse(service, key, campaign_id, 100, allocations=[{"donation_id": d1, "amount": 100}])  # d1 spent
    refund(service, key, d2, 100)  # d2 refunded in full
    refund(service, key, d3, 40)  # d3 has 60 left
    paid = disburse(service, key, campaign_id, 120)
    assert paid["allocation"] == "automatic (first in, first out)"
    assert paid["allocations"] == [{"donation_id": d3, "amount": 60}, {"donation_id": d4, "amount": 60}]
    paid = disburse(service, key, campaign_id, 60)
    assert paid["allocations"] == [{"donation_id": d4, "amount": 40}, {"donation_id": d5, "amount": 20}]
    remaining = [donation_view(service, d)["remaining"] for d in (d1, d2, d3, d4, d5)]
    assert remaining == [0, 0, 0, 0, 80]
    # More than is left: refused, with what is available, and nothing sent.
    before = transactions(service)
    body = problem(
        service.post(
            "/v1/disbursements",
            key,
            json={"campaign_id": campaign_id, "amount": 81, "recipient": "r", "purpose": "p"},
        ),
        409,
        "conflict",
    )
    assert body["available"] == 80
    assert transactions(service) == before


def test_evidence_is_stored_by_its_hash_and_anchored_once(service: Service) -> None:
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    service.donate(campaign_id, key, 1_000)
    paid = disburse(service, key, campaign_id, 400)
    invoice, photo = b"%PDF-1.7 invoice 2024-117: 400 meals", bytes(range(256)) * 40
    url = f"/v1/disbursements/{paid['id']}/evidence"
    response = service.post(
        url,
        key,
        files=[
            ("files", ("invoice.pdf", invoice, "application/pdf")),
            ("files", ("photo.jpg", photo, "image/jpeg")),
        ],
    )
    assert response.status_code == 201, response.text
    documents = response.json()["documents"]
    assert response.json()["disbursement_id"] == paid["id"]
    root = service.runtime.settings.evidence_path
    contract = service.contract.functions
    for document, (name, content) in zip(
        documents, [("invoice.pdf", invoice), ("photo.jpg", photo)], strict=True
    ):
        sha = hashlib.sha256(content).hexdigest()
        assert document["sha256"] == sha and document["size"] == len(content) and document["filename"] == name
        assert document["transaction"]["status"] == "mined"
        assert sender(service, document["transaction"]["tx_hash"]) == service.operators[charity_id]
        assert (root / sha[:2] / sha).read_bytes() == content
        assert contract.isEvidenceAnchored(ids.to_bytes32(paid["id"]), bytes.fromhex(sha)).call() is True
        assert "already_anchored" not in document
    assert contract.disbursementOf(ids.to_bytes32(paid["id"])).call()[3] == 2
    assert not list(root.glob(".upload-*"))  # no temporary file left behind

    # The same invoice again, with a new document: the invoice is reported as already
    # anchored (no transaction), the new one is anchored.
    receipt = b"delivery receipt signed by the school"
    before = transactions(service)
    again = service.post(
        url,
        key,
        files=[
            ("files", ("copy.pdf", invoice, "application/pdf")),
            ("files", ("receipt.txt", receipt, "text/plain")),
        ],
    )
    assert again.status_code == 201, again.text
    first, second = again.json()["documents"]
    assert first["already_anchored"] is True and "transaction" not in first
    assert first["sha256"] == hashlib.sha256(invoice).hexdigest()
    assert second["transaction"]["status"] == "mined" and "already_anchored" not in second
    assert transactions(service) == before + 1
    assert contract.disbursementOf(ids.to_bytes32(paid["id"])).call()[3] == 3
    only_old = service.post(url, key, files=[("files", ("invoice.pdf", invoice, "application/pdf"))])
    assert only_old.status_code == 201, only_old.text
    assert only_old.json()["documents"][0]["already_anchored"] is True
    assert transactions(service) == before + 1
    # Another disbursement may cite the same invoice: anchored anew, for it.
    other = disburse(service, key, campaign_id, 100)
    response = service.post(
        f"/v1/disbursements/{other['id']}/evidence",
        key,
        files=[("files", ("invoice.pdf", invoice, "application/pdf"))],
    )
    assert response.status_code == 201, response.text
    assert "already_anchored" not in response.json()["documents"][0]
    wait_for_mirror(service)
    with service.runtime.engine.connect() as connection:
        anchored = connection.execute(select(im.Evidence.disbursement_id, im.Evidence.document_hash)).all()
    sha = "0x" + hashlib.sha256(invoice).hexdigest()
    assert (ids.to_hex(paid["id"]), sha) in anchored and (ids.to_hex(other["id"]), sha) in anchored
    assert len(anchored) == 4


# ----------------------------------------------------- refunds and closing


def test_refunds_draw_down_a_donation_and_no_further(service: Service) -> None:
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    donation_id = service.donate(campaign_id, key, 1_000)["id"]
    created = refund(service, key, donation_id, 300)
    assert created["id"].startswith("RF-") and created["donation_id"] == donation_id
    assert (created["amount"], created["reason"]) == (300, "donor asked")
    assert created["transaction"]["status"] == "mined"
    on_chain = service.contract.functions.refundOf(ids.to_bytes32(created["id"])).call()
    assert list(on_chain) == [ids.to_bytes32(donation_id), 300]
    assert donation_view(service, donation_id) == {
        "amount": 1_000,
        "allocated": 0,
        "refunded": 300,
        "remaining": 700,
    }
    refund(service, key, donation_id, 700)
    assert donation_view(service, donation_id)["remaining"] == 0
    body = contract_error(
        service.post(f"/v1/donations/{donation_id}/refunds", key, json={"amount": 1, "reason": "again"}),
        "DonationOverdrawn",
    )
    assert body["error"]["args"]["available"] == 0
    view = campaign_view(service, campaign_id)
    assert (view["received"], view["refunded"], view["available"]) == (1_000, 1_000, 0)


def test_a_closed_campaign_takes_no_donations_but_pays_out_and_refunds(service: Service) -> None:
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    donation_id = service.donate(campaign_id, key, 1_000)["id"]
    closed = service.post(f"/v1/campaigns/{campaign_id}/close", key)
    assert closed.status_code == 201, closed.text
    assert closed.json()["id"] == campaign_id and closed.json()["closed"] is True
    assert closed.json()["transaction"]["status"] == "mined"
    assert campaign_view(service, campaign_id)["closed"] is True
    response = service.post(
        "/v1/donations", key, json={"campaign_id": campaign_id, "amount": 5, "donor_reference": "late"}
    )
    contract_error(response, "CampaignIsClosed")
    disburse(service, key, campaign_id, 600)
    refund(service, key, donation_id, 400)
    view = campaign_view(service, campaign_id)
    assert (view["donation_count"], view["disbursed"], view["refunded"], view["available"]) == (
        1,
        600,
        400,
        0,
    )
    wait_for_mirror(service)
    with service.runtime.engine.connect() as connection:
        closed_block = connection.execute(
            select(im.Campaign.closed_block).where(im.Campaign.campaign_id == ids.to_hex(campaign_id))
        ).scalar_one()
    assert closed_block == closed.json()["transaction"]["block_number"]


def test_the_embedded_chain_records_and_refuses_alike(embedded_service: Service) -> None:
    """`ledger dev`'s default chain (eth-tester reports reverts differently from a node)."""
    service = embedded_service
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    d1, d2 = (service.donate(campaign_id, key, amount)["id"] for amount in (100, 200))
    paid = disburse(service, key, campaign_id, 150)
    assert paid["allocations"] == [{"donation_id": d1, "amount": 100}, {"donation_id": d2, "amount": 50}]
    body = contract_error(
        service.post(f"/v1/donations/{d2}/refunds", key, json={"amount": 151, "reason": "r"}),
        "DonationOverdrawn",
    )
    assert body["error"]["args"] == {"donationId": d2, "available": 150, "requested": 151}
    assert service.post(f"/v1/campaigns/{campaign_id}/close", key).status_code == 201
    contract_error(
        service.post(
            "/v1/donations", key, json={"campaign_id": campaign_id, "amount": 5, "donor_reference": "d"}
        ),
        "CampaignIsClosed",
    )
    assert sender(service, paid["transaction"]["tx_hash"]) == service.operators[charity_id]
