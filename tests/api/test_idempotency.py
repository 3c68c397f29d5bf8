"""`Idempotency-Key`: a retried write gets the first answer byte for byte and sends no
second transaction; the same key with another request is refused, and so is a second
request while the first is still running; a request that was refused is not remembered;
and each caller has keys of its own."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from ledger_api.core import ids
from ledger_api.core.errors import WriteTimeout
from tests.api.checks import (
    as_service_account,
    campaign_view,
    contract_error,
    problem,
    transactions,
)
from tests.api.service import ADMIN_KEY, Service

pytestmark = pytest.mark.anvil


def donation(campaign_id: str, amount: int = 1_000, donor: str = "donor-1") -> dict[str, Any]:
    return {"campaign_id": campaign_id, "amount": amount, "donor_reference": donor}


def post(service: Service, path: str, key: str, idempotency_key: str, **kwargs: Any) -> httpx.Response:
    headers = {"Idempotency-Key": idempotency_key, **kwargs.pop("headers", {})}
    return service.post(path, key, headers=headers, **kwargs)


def assert_replay(first: httpx.Response, again: httpx.Response) -> None:
    """`again` is `first`, byte for byte, marked as a replay."""
    assert again.status_code == first.status_code, again.text
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers


def test_a_retry_gets_the_first_answer_byte_for_byte_and_sends_nothing(service: Service) -> None:
    """For every kind of write. The first answers carry fresh random values (IDs, the
    donor's receipt secret), so a second execution could never reproduce them."""
    assert service.runtime.keystore is not None
    accounts = len(service.runtime.keystore.addresses())
    outbox = transactions(service)
    charity = post(service, "/v1/charities", ADMIN_KEY, "register-1", json={"name": "Sunrise"})
    assert charity.status_code == 201, charity.text
    assert_replay(charity, post(service, "/v1/charities", ADMIN_KEY, "register-1", json={"name": "Sunrise"}))
    # One operator account made, the two registration transactions sent once.
    assert len(service.runtime.keystore.addresses()) == accounts + 1
    assert transactions(service) == outbox + 2
    charity_id = charity.json()["id"]
    issued = post(service, "/v1/keys", ADMIN_KEY, "key-1", json={"role": "charity", "charity_id": charity_id})
    assert issued.status_code == 201
    key = issued.json()["key"]
    # A key is shown once: its replay is the same issuance (the same key id, no second
    # key), with the key itself withheld.
    again = post(service, "/v1/keys", ADMIN_KEY, "key-1", json={"role": "charity", "charity_id": charity_id})
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
    assert again.json() == {**issued.json(), "key": None, "withheld_on_replay": ["key"]}
    assert key not in again.text
    assert "x-ledger-withhold-on-replay" not in issued.headers

    body = {"charity_id": charity_id, "name": "School meals", "currency": "CNY", "goal": 10**6}
    created = post(service, "/v1/campaigns", key, "campaign-1", json=body)
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    before = transactions(service)
    assert_replay(created, post(service, "/v1/campaigns", key, "campaign-1", json=body))
    assert transactions(service) == before

    first = post(service, "/v1/donations", key, "donation-1", json=donation(campaign_id))
    assert first.status_code == 201, first.text
    assert first.json()["receipt_secret"].startswith("0x")
    before = transactions(service)
    for _ in range(3):
        assert_replay(first, post(service, "/v1/donations", key, "donation-1", json=donation(campaign_id)))
    assert transactions(service) == before
    assert campaign_view(service, campaign_id)["donation_count"] == 1

    batch = {"donations": [donation(campaign_id, 10, f"donor-{i}") for i in range(600)]}
    first = post(service, "/v1/donations/batch", key, "batch-1", json=batch)
    assert first.status_code == 201, first.text
    assert len(first.json()["transactions"]) == 2
    before = transactions(service)
    assert_replay(first, post(service, "/v1/donations/batch", key, "batch-1", json=batch))
    assert transactions(service) == before
    assert campaign_view(service, campaign_id)["donation_count"] == 601

    donation_id = first.json()["donations"][0]["id"]
    refund = {"amount": 4, "reason": "paid twice"}
    first = post(service, f"/v1/donations/{donation_id}/refunds", key, "refund-1", json=refund)
    assert first.status_code == 201, first.text
    assert_replay(first, post(service, f"/v1/donations/{donation_id}/refunds", key, "refund-1", json=refund))
    assert service.contract.functions.donationOf(ids.to_bytes32(donation_id)).call()[3] == 4

    payout = {"campaign_id": campaign_id, "amount": 1_500, "recipient": "CN-USCC-1", "purpose": "meals"}
    first = post(service, "/v1/disbursements", key, "payout-1", json=payout)
    assert first.status_code == 201, first.text
    before = transactions(service)
    assert_replay(first, post(service, "/v1/disbursements", key, "payout-1", json=payout))
    assert transactions(service) == before
    assert campaign_view(service, campaign_id)["disbursement_count"] == 1

    # Evidence is multipart: a client that sends the same files again builds a new body
    # (httpx picks a new random boundary each time); it is still the same request.
    disbursement_id = first.json()["id"]
    files = [("files", ("invoice.pdf", b"%PDF-1.4 invoice 7", "application/pdf"))]
    url = f"/v1/disbursements/{disbursement_id}/evidence"
    first = post(service, url, key, "evidence-1", files=files)
    assert first.status_code == 201, first.text
    assert "already_anchored" not in first.json()["documents"][0]
    before = transactions(service)
    assert_replay(first, post(service, url, key, "evidence-1", files=files))
    assert transactions(service) == before

    # A 202 (not waited for) is remembered too.
    first = post(service, "/v1/donations?wait=false", key, "later-1", json=donation(campaign_id))
    assert first.status_code == 202, first.text
    assert_replay(
        first, post(service, "/v1/donations?wait=false", key, "later-1", json=donation(campaign_id))
    )

    first = post(service, f"/v1/campaigns/{campaign_id}/close", key, "close-1")
    assert first.status_code == 201, first.text
    assert_replay(first, post(service, f"/v1/campaigns/{campaign_id}/close", key, "close-1"))


def test_the_same_key_with_another_request_is_refused(service: Service) -> None:
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    first = post(service, "/v1/donations", key, "k", json=donation(campaign_id, 1_000))
    assert first.status_code == 201, first.text
    before = transactions(service)
    others = [
        ("/v1/donations", {"json": donation(campaign_id, 1_001)}),  # another amount
        ("/v1/donations", {"json": donation(campaign_id, 1_000, "donor-2")}),  # another donor
        ("/v1/donations?wait=false", {"json": donation(campaign_id, 1_000)}),  # another query
        ("/v1/donations/batch", {"json": {"donations": [donation(campaign_id, 1_000)]}}),  # another path
        (f"/v1/campaigns/{campaign_id}/close", {}),
    ]
    for path, kwargs in others:
        body = problem(post(service, path, key, "k", **kwargs), 422, "idempotency-key-reused")
        assert "different request" in body["detail"]
    assert transactions(service) == before
    assert campaign_view(service, campaign_id)["closed"] is False
    assert campaign_view(service, campaign_id)["donation_count"] == 1
    # The first request is still answered as before.
    assert_replay(first, post(service, "/v1/donations", key, "k", json=donation(campaign_id, 1_000)))


def test_a_second_request_while_the_first_runs_is_409(service: Service) -> None:
    """The first request is held inside the service (in the writer's simulation step)
    until the second one has been answered."""
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    writer = service.runtime.writer
    assert writer is not None
    entered, release = threading.Event(), threading.Event()
    simulate = writer.simulate

    once = threading.Lock()

    def held(signer: str, call: Any) -> int:
        if once.acquire(blocking=False):  # only the first call waits
            entered.set()
            assert release.wait(30)
        return simulate(signer, call)

    body = {"donations": [donation(campaign_id, 5, f"donor-{i}") for i in range(20)]}
    results: dict[str, httpx.Response] = {}
    before = transactions(service)
    writer.simulate = held  # type: ignore[method-assign]
    try:

        def first_request() -> None:
            results["first"] = httpx.post(
                f"{service.base}/v1/donations/batch",
                json=body,
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "slow"},
                timeout=60,
            )

        thread = threading.Thread(target=first_request)
        thread.start()
        assert entered.wait(30), "the first request never reached the writer"
        second = post(service, "/v1/donations/batch", key, "slow", json=body)
        body_409 = problem(second, 409, "idempotency-in-flight")
        assert "not finished" in body_409["detail"]
        # Another request with the key is still a mismatch, not a conflict.
        problem(
            post(service, "/v1/donations", key, "slow", json=donation(campaign_id)),
            422,
            "idempotency-key-reused",
        )
        # Without the key, the same charity is not blocked.
        other = service.post("/v1/donations", key, json=donation(campaign_id, 7))
        assert other.status_code == 201, other.text
    finally:
        release.set()
        thread.join(60)
        writer.simulate = simulate  # type: ignore[method-assign]
    first = results["first"]
    assert first.status_code == 201, first.text
    assert_replay(first, post(service, "/v1/donations/batch", key, "slow", json=body))
    assert transactions(service) == before + 2  # the batch and the donation without a key
    assert campaign_view(service, campaign_id)["donation_count"] == 21


def test_simultaneous_retries_send_one_transaction(service: Service) -> None:
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    body = donation(campaign_id, 250)
    barrier = threading.Barrier(8)
    responses: list[httpx.Response] = []
    lock = threading.Lock()
    before = transactions(service)

    def fire() -> None:
        with httpx.Client(base_url=service.base, timeout=60) as client:
            barrier.wait()
            response = client.post(
                "/v1/donations",
                json=body,
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "race"},
            )
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=fire) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(responses) == 8
    created = [r for r in responses if r.status_code == 201]
    assert created, [r.text for r in responses]
    assert len({r.content for r in created}) == 1  # every success is the one answer
    for response in responses:
        if response.status_code != 201:
            problem(response, 409, "idempotency-in-flight")
    assert transactions(service) == before + 1
    assert campaign_view(service, campaign_id)["donation_count"] == 1


def test_a_refused_request_is_not_remembered(service: Service) -> None:
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    before = transactions(service)
    # 422: the schema refused it.
    problem(post(service, "/v1/donations", key, "a", json=donation(campaign_id, 0)), 422, "invalid-request")
    problem(
        post(service, "/v1/donations", key, "a", json={**donation(campaign_id), "amount": 1.5}),
        422,
        "invalid-request",
    )
    # 404: the campaign does not exist.
    problem(post(service, "/v1/donations", key, "a", json=donation(ids.new("campaign"))), 404, "not-found")
    assert transactions(service) == before
    fixed = post(service, "/v1/donations", key, "a", json=donation(campaign_id))
    assert fixed.status_code == 201, fixed.text
    assert_replay(fixed, post(service, "/v1/donations", key, "a", json=donation(campaign_id)))
    donation_id = fixed.json()["id"]

    # 409: the contract would revert (an allocation larger than the donation).
    over = {
        "campaign_id": campaign_id,
        "amount": 1_001,
        "recipient": "CN-USCC-1",
        "purpose": "meals",
        "allocations": [{"donation_id": donation_id, "amount": 1_001}],
    }
    before = transactions(service)
    contract_error(post(service, "/v1/disbursements", key, "b", json=over), "CampaignOverdrawn")
    again = post(service, "/v1/disbursements", key, "b", json=over)  # evaluated again, not replayed
    contract_error(again, "CampaignOverdrawn")
    assert "idempotent-replayed" not in again.headers
    assert transactions(service) == before
    fixed_body = {**over, "amount": 600, "allocations": [{"donation_id": donation_id, "amount": 600}]}
    fixed = post(service, "/v1/disbursements", key, "b", json=fixed_body)
    assert fixed.status_code == 201, fixed.text
    assert transactions(service) == before + 1

    # 409 for a reason that goes away: the same request, the same key, succeeds later.
    as_service_account(service, "pause")
    paused = post(service, "/v1/donations", key, "c", json=donation(campaign_id, 77))
    contract_error(paused, "EnforcedPause")
    as_service_account(service, "unpause")
    later = post(service, "/v1/donations", key, "c", json=donation(campaign_id, 77))
    assert later.status_code == 201, later.text
    assert campaign_view(service, campaign_id)["donation_count"] == 2


def test_a_write_that_timed_out_is_not_sent_twice(service: Service) -> None:
    """A 504 means the transaction was signed and sent and is only not mined yet: a retry
    with the same key must not record the donation a second time."""
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    writer = service.runtime.writer
    assert writer is not None
    wait = writer.wait

    def impatient(tx_id: str, timeout: float) -> Any:
        raise WriteTimeout("transaction is not mined after 0 s; it is tracked", transaction=tx_id)

    before = transactions(service)
    writer.wait = impatient  # type: ignore[method-assign]
    try:
        first = post(service, "/v1/donations", key, "timeout", json=donation(campaign_id))
    finally:
        writer.wait = wait  # type: ignore[method-assign]
    problem(first, 504, "transaction-pending")
    assert transactions(service) == before + 1
    again = post(service, "/v1/donations", key, "timeout", json=donation(campaign_id))
    assert transactions(service) == before + 1, again.text
    assert_replay(first, again)
    deadline = time.monotonic() + 20
    while campaign_view(service, campaign_id)["donation_count"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert campaign_view(service, campaign_id)["donation_count"] == 1


def test_a_write_that_failed_unexpectedly_after_signing_is_not_sent_twice(service: Service) -> None:
    """An unexpected error (500) may come after the transaction was signed and sent: its
    outcome is unknown, so a retry with the same key gets the same 500 and signs nothing."""
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    writer = service.runtime.writer
    assert writer is not None
    wait = writer.wait

    def broken(tx_id: str, timeout: float) -> Any:
        raise RuntimeError("the receipt could not be read")

    before = transactions(service)
    writer.wait = broken  # type: ignore[method-assign]
    try:
        # (uvicorn drops the connection after an exception: do not reuse it for the retry.)
        first = post(
            service,
            "/v1/donations",
            key,
            "unexpected",
            json=donation(campaign_id),
            headers={"Connection": "close"},
        )
    finally:
        writer.wait = wait  # type: ignore[method-assign]
    body = problem(first, 500, "internal-error")
    assert "receipt" not in body["detail"]  # nothing about the error itself
    assert transactions(service) == before + 1
    again = post(service, "/v1/donations", key, "unexpected", json=donation(campaign_id))
    assert_replay(first, again)
    assert transactions(service) == before + 1
    assert campaign_view(service, campaign_id)["donation_count"] == 1


def test_keys_belong_to_their_caller(service: Service) -> None:
    a, a_key = service.charity("Sunrise")
    b, b_key = service.charity("Blue Sky")
    a_campaign, b_campaign = service.campaign(a, a_key), service.campaign(b, b_key)
    before = transactions(service)
    mine = post(service, "/v1/donations", a_key, "shared", json=donation(a_campaign))
    theirs = post(service, "/v1/donations", b_key, "shared", json=donation(b_campaign))
    assert mine.status_code == theirs.status_code == 201, (mine.text, theirs.text)
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers
    # B sending A's very request with A's key name gets its own answer (A's campaign is not
    # B's: 404), never A's stored answer with A's donor receipt secret in it.
    problem(post(service, "/v1/donations", b_key, "shared-2", json=donation(a_campaign)), 404, "not-found")
    first_a = post(service, "/v1/donations", a_key, "shared-2", json=donation(a_campaign))
    assert first_a.status_code == 201
    stolen = post(service, "/v1/donations", b_key, "shared-2", json=donation(a_campaign))
    problem(stolen, 404, "not-found")
    assert first_a.json()["receipt_secret"] not in stolen.text
    # Two keys of one charity are two callers.
    second_key = service.post("/v1/keys", ADMIN_KEY, json={"role": "charity", "charity_id": a}).json()["key"]
    other = post(service, "/v1/donations", second_key, "shared", json=donation(a_campaign))
    assert other.status_code == 201 and other.json()["id"] != mine.json()["id"]
    assert transactions(service) == before + 4
    assert campaign_view(service, a_campaign)["donation_count"] == 3
    assert campaign_view(service, b_campaign)["donation_count"] == 1


def test_a_malformed_idempotency_key_is_422(service: Service) -> None:
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    before = transactions(service)
    for value in (b"", b"x" * 256, b"tab\there", "caf\u00e9".encode()):
        response = service.post(
            "/v1/donations", key, json=donation(campaign_id), headers={"Idempotency-Key": value}
        )
        body = problem(response, 422, "invalid-request")
        assert "Idempotency-Key" in body["detail"], value
    assert transactions(service) == before
    # The longest key allowed works.
    response = service.post(
        "/v1/donations", key, json=donation(campaign_id), headers={"Idempotency-Key": "x" * 255}
    )
    assert response.status_code == 201, response.text


def test_stored_answers_are_forgotten_after_a_day(service: Service) -> None:
    """Stored answers hold receipt secrets; they are kept only while a retry is plausible."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert, select

    from ledger_api.core.models import IdempotencyRecord

    engine = service.runtime.engine
    old = datetime.now(UTC) - timedelta(hours=25)
    with engine.begin() as connection:
        for key, created, status in (
            ("old", old, 201),
            ("recent", datetime.now(UTC), 201),
            ("running", old, None),
        ):
            connection.execute(
                insert(IdempotencyRecord).values(
                    principal="p", key=key, request_hash="h", status_code=status, created_at=created
                )
            )
    assert service.runtime.outbox is not None
    service.runtime.outbox.forget_old_answers()
    with engine.connect() as connection:
        left = set(
            connection.execute(
                select(IdempotencyRecord.key).where(IdempotencyRecord.principal == "p")
            ).scalars()
        )
    # A row its request never answered (its process died) goes too.
    assert left == {"recent"}


def _claim_abandoned_row(service: Service, key: str, idempotency_key: str, body: bytes, age: float) -> None:
    """The row a request leaves when its process dies while it runs: claimed, never answered."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from ledger_api.core.idempotency import Fingerprint
    from ledger_api.core.models import IdempotencyRecord

    key_id = key.split("_")[1]
    fingerprint = Fingerprint("POST", "/v1/donations", b"", b"application/json", key.encode())
    fingerprint.update(body)
    with service.runtime.engine.begin() as connection:
        connection.execute(
            insert(IdempotencyRecord).values(
                principal=key_id,
                key=idempotency_key,
                request_hash=fingerprint.hexdigest(),
                created_at=datetime.now(UTC) - timedelta(seconds=age),
            )
        )


def test_a_request_that_never_finished_answers_outcome_unknown_not_409_forever(service: Service) -> None:
    """A key whose first request died mid-way is 409 "in progress" only while that request
    could still be running; then it answers, for good, that the outcome is unknown (a
    transaction may have been signed), and never runs the write a second time."""
    import json

    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    body = json.dumps(donation(campaign_id)).encode()
    headers = {"content-type": "application/json"}
    _claim_abandoned_row(service, key, "fresh", body, age=60)
    _claim_abandoned_row(service, key, "abandoned", body, age=16 * 60)
    before = transactions(service)
    problem(
        post(service, "/v1/donations", key, "fresh", content=body, headers=headers),
        409,
        "idempotency-in-flight",
    )
    for _ in range(2):
        answer = post(service, "/v1/donations", key, "abandoned", content=body, headers=headers)
        found = problem(answer, 409, "idempotency-outcome-unknown")
        assert answer.headers.get("idempotent-replayed") == "true"
        assert "new key" in found["detail"]
    assert transactions(service) == before
    assert campaign_view(service, campaign_id)["donation_count"] == 0


def test_stored_answers_are_sealed_with_the_callers_key(service: Service) -> None:
    """Receipt secrets in stored answers are encrypted under a key derived from the
    caller's API key, which the database does not hold: the table alone reveals nothing,
    and the caller still gets its answer back byte for byte."""
    from sqlalchemy import select

    from ledger_api.core.models import ApiKey, IdempotencyRecord

    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    first = post(service, "/v1/donations", key, "sealed-1", json=donation(campaign_id))
    assert first.status_code == 201, first.text
    secret = first.json()["receipt_secret"]
    with service.runtime.engine.connect() as connection:
        stored = connection.execute(
            select(IdempotencyRecord.body, IdempotencyRecord.headers).where(
                IdempotencyRecord.key == "sealed-1"
            )
        ).one()
        key_hash = connection.execute(
            select(ApiKey.secret_hash).where(ApiKey.id == key.split("_")[1])
        ).scalar_one()
    raw = bytes(stored.body)
    for needle in (secret, secret[2:], bytes.fromhex(secret[2:]).hex(), first.json()["id"], "receipt_secret"):
        assert needle.encode() not in raw, needle
    assert bytes.fromhex(secret[2:]) not in raw
    assert key_hash not in raw.decode("latin-1") and key not in stored.headers
    assert_replay(first, post(service, "/v1/donations", key, "sealed-1", json=donation(campaign_id)))
