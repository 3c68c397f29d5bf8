"""The donor's trace, over HTTP: a donation, every allocation with the disbursement it
funded and that disbursement's evidence, refunds and what is left; every step with a
chain reference that checks out against the node, and nothing personal in the answer."""

from __future__ import annotations

import gc
import threading
import warnings
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from ledger_api.core import ids
from ledger_api.donations.trace import trace
from tests.api.checks import donation_view, problem, wait_for_mirror
from tests.api.service import Service

pytestmark = pytest.mark.anvil

DONOR = "Wang Fang, receipt 0042"


@pytest.fixture
def traced(service: Service) -> dict[str, Any]:
    """Three donations; a disbursement drawing on all three (FIFO) with an invoice; a
    partial refund of the third."""
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    donations = [service.donate(campaign_id, key, amount, DONOR) for amount in (10_000, 20_000, 30_000)]
    wait_for_mirror(service)
    created = service.post(
        "/v1/disbursements",
        key,
        json={"campaign_id": campaign_id, "amount": 35_000, "recipient": "CN-USCC-9111", "purpose": "meals"},
    )
    assert created.status_code == 201, created.text
    disbursement = created.json()
    invoice = b"INVOICE 42: rice, 35,000 fen"
    uploaded = service.post(
        f"/v1/disbursements/{disbursement['id']}/evidence", key, files={"files": ("invoice.txt", invoice)}
    )
    assert uploaded.status_code == 201, uploaded.text
    refund = service.post(
        f"/v1/donations/{donations[2]['id']}/refunds", key, json={"amount": 4_000, "reason": "donor asked"}
    )
    assert refund.status_code == 201, refund.text
    wait_for_mirror(service)
    return {
        "donations": donations,
        "disbursement": disbursement,
        "invoice": invoice,
        "charity_id": charity_id,
        "campaign_id": campaign_id,
        "key": key,
    }


def check_proof(service: Service, reference: dict[str, Any]) -> None:
    """The reference points at a real log of the ledger contract on the node."""
    w3 = service.runtime.w3
    receipt = w3.eth.get_transaction_receipt(reference["tx_hash"])
    assert receipt["blockNumber"] == reference["block_number"]
    assert "0x" + bytes(receipt["blockHash"]).hex() == reference["block_hash"]
    assert "0x" + bytes(w3.eth.get_block(reference["block_number"])["hash"]).hex() == reference["block_hash"]
    logs = {log["logIndex"]: log for log in receipt["logs"]}
    assert logs[reference["log_index"]]["address"] == service.runtime.deployment.address
    assert reference["chain_id"] == w3.eth.chain_id
    assert reference["contract"] == service.runtime.deployment.address
    assert reference["final"] is True  # the test service runs with 0 confirmations
    assert reference["recorded_at"]


def test_a_donor_sees_where_each_part_of_the_donation_went(service: Service, traced: dict[str, Any]) -> None:
    third = traced["donations"][2]
    response = service.get(f"/v1/donations/{third['id']}")
    assert response.status_code == 200, response.text
    trace = response.json()
    view = donation_view(service, third["id"])
    assert (trace["amount"], trace["allocated"], trace["refunded"], trace["remaining"]) == (
        view["amount"],
        view["allocated"],
        view["refunded"],
        view["remaining"],
    )
    assert (trace["allocated"], trace["refunded"], trace["remaining"]) == (5_000, 4_000, 21_000)
    assert trace["currency"] == "CNY" and trace["charity"]["id"] == traced["charity_id"]
    [allocation] = trace["allocations"]
    assert allocation["amount"] == 5_000
    disbursement = allocation["disbursement"]
    assert (
        disbursement["id"],
        disbursement["recipient"],
        disbursement["purpose"],
        disbursement["amount"],
    ) == (
        traced["disbursement"]["id"],
        "CN-USCC-9111",
        "meals",
        35_000,
    )
    [document] = disbursement["evidence"]
    fetched = service.get(document["document"])
    assert fetched.status_code == 200 and fetched.content == traced["invoice"]
    [refund] = trace["refunds"]
    assert (refund["amount"], refund["reason"]) == (4_000, "donor asked")
    for reference in (
        trace["proof"],
        allocation["proof"],
        disbursement["proof"],
        document["proof"],
        refund["proof"],
    ):
        check_proof(service, reference)


def test_the_trace_holds_nothing_personal(service: Service, traced: dict[str, Any]) -> None:
    first = traced["donations"][0]
    text = service.get(f"/v1/donations/{first['id']}").text
    assert DONOR not in text
    assert first["receipt_secret"][2:] not in text
    assert first["donor_commitment"][2:] not in text


def test_a_disbursement_shows_the_donations_that_funded_it(service: Service, traced: dict[str, Any]) -> None:
    disbursement = traced["disbursement"]
    body = service.get(f"/v1/disbursements/{disbursement['id']}").json()
    assert [(f["donation_id"], f["amount"]) for f in body["funded_by"]] == [
        (a["donation_id"], a["amount"]) for a in disbursement["allocations"]
    ]
    assert sum(f["amount"] for f in body["funded_by"]) == body["amount"] == 35_000
    for funded in body["funded_by"]:
        check_proof(service, funded["proof"])


def test_ownership_is_proved_by_the_receipt_secret_and_the_donor_reference(
    service: Service, traced: dict[str, Any]
) -> None:
    donation = traced["donations"][0]
    url = f"/v1/donations/{donation['id']}/ownership"

    def check(secret: str, reference: str) -> httpx.Response:
        return service.post(url, json={"receipt_secret": secret, "donor_reference": reference})

    assert check(donation["receipt_secret"], DONOR).json()["matches"] is True
    assert check(donation["receipt_secret"], DONOR + "!").json()["matches"] is False
    other = traced["donations"][1]["receipt_secret"]
    assert check(other, DONOR).json()["matches"] is False
    problem(check("0x1234", DONOR), 422, "invalid-request")
    problem(service.post(url, json={"receipt_secret": donation["receipt_secret"]}), 422, "invalid-request")


def test_unknown_and_malformed_ids(service: Service) -> None:
    unknown = ids.new("donation")
    problem(service.get(f"/v1/donations/{unknown}"), 404, "not-found")
    problem(service.get("/v1/donations/DN-1234"), 422, "invalid-request")
    problem(service.get(f"/v1/disbursements/{ids.new('disbursement')}"), 404, "not-found")
    problem(service.get("/v1/evidence/" + "ab" * 32), 404, "not-found")
    problem(service.get("/v1/evidence/not-a-hash"), 422, "invalid-request")
    problem(
        service.post(
            f"/v1/donations/{unknown}/ownership",
            json={"receipt_secret": "0x" + "11" * 32, "donor_reference": "x"},
        ),
        404,
        "not-found",
    )


def test_a_fifo_disbursement_closes_its_cursor_on_the_donations(service: Service) -> None:
    """Drawing a disbursement from the oldest donations stops reading them once the amount
    is covered. On PostgreSQL the rows come through a server-side cursor, which must be
    closed then, not left to the garbage collector (a ResourceWarning, and a cursor held
    open on the database until then)."""
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    for amount in (10_000, 20_000, 30_000):
        service.donate(campaign_id, key, amount, DONOR)
    wait_for_mirror(service)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        created = service.post(
            "/v1/disbursements",
            key,
            json={"campaign_id": campaign_id, "amount": 15_000, "recipient": "CN-USCC-1", "purpose": "meals"},
        )
        gc.collect()
    assert created.status_code == 201, created.text
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_a_trace_costs_few_round_trips(service: Service, traced: dict[str, Any]) -> None:
    """A trace's cost is its round trips to the database (the service waits on each), so
    their number is held: the donation with its block, campaign, charity, signer and the
    mirror's position in one; allocations, refunds and evidence only when the donation's
    rows say there are some. The answers are the ones the other tests check."""
    mirror = service.runtime.mirror.public()
    here = threading.get_ident()
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() == here:  # not the in-process indexer's
            statements.append(statement)

    def cost(donation_id: str) -> tuple[int, dict[str, Any]]:
        statements.clear()
        event.listen(mirror.engine, "before_cursor_execute", count)
        try:
            answer = trace(mirror, donation_id)
        finally:
            event.remove(mirror.engine, "before_cursor_execute", count)
        # The mirror's position is read once, with the donation.
        assert all("indexer_cursors" not in s for s in statements[1:]), statements
        return len(statements), answer.model_dump()

    first, third = traced["donations"][0], traced["donations"][2]
    unallocated = service.donate(traced["campaign_id"], traced["key"], 5_000, DONOR)
    wait_for_mirror(service)
    # Nothing allocated or refunded: the donation's own row answers everything.
    queries, answer = cost(unallocated["id"])
    assert queries == 1 and answer["allocations"] == [] and answer["refunds"] == []
    # Allocated (with evidence): the allocations, the anchors with their descriptions, their
    # links and withdrawals.
    queries, answer = cost(first["id"])
    assert queries == 4 and answer["allocations"][0]["disbursement"]["evidence"]
    # Refunded too: one more.
    queries, answer = cost(third["id"])
    assert queries == 5 and answer["refunds"]
    for proofs in (answer["proof"], answer["refunds"][0]["proof"], answer["allocations"][0]["proof"]):
        assert proofs["block_hash"] and proofs["recorded_at"]
