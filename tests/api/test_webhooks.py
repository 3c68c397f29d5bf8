"""Webhooks over HTTP, to a real receiver on 127.0.0.1 that checks every signature with
standardwebhooks' own Webhook.verify: each final event arrives once, through an outage
with backoff (the dispatcher's clock injected, no sleeping), never before it is final;
private targets are refused outside development; another key's webhook is not found;
bad input is a 4xx that stores nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from ledger_api.core.config import Settings
from ledger_api.core.models import WebhookDelivery, WebhookEndpoint
from ledger_api.webhooks import targets
from ledger_api.webhooks.dispatcher import Dispatcher, backoff, send
from scripts import webhook_relay
from tests.api.checks import wait_for_mirror
from tests.api.service import ADMIN_KEY, Service, serve, settings_for


class Receiver:
    """An HTTP server in a thread: verifies each delivery's signature, answers `status`."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.status = 204
        self.received: list[tuple[str, dict[str, Any]]] = []  # (webhook-id, payload), verified
        self.failures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if receiver.status >= 300:
                    receiver.failures += 1
                    self.send_response(receiver.status)
                    self.end_headers()
                    return
                assert receiver.secret is not None
                payload = Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                receiver.received.append((self.headers["webhook-id"], payload))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ids(self) -> list[str]:
        return [webhook_id for webhook_id, _ in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()
    running.server.server_close()


def _service(tmp_path: Path, **extra: Any) -> Any:
    settings = settings_for(
        tmp_path,
        None,
        f"sqlite:///{tmp_path / 'ledger.db'}",
        webhooks_allow_private=True,
        run_webhooks=False,  # the test runs the dispatcher's rounds itself
        webhook_retry_base=10.0,
    )
    return serve(settings.model_copy(update=extra))


@pytest.fixture
def hooked(tmp_path: Path) -> Iterator[Service]:
    with _service(tmp_path) as service:
        yield service


def _register(service: Service, key: str, url: str, **body: Any) -> dict[str, Any]:
    answer = service.post("/v1/webhooks", key, json={"url": url, "events": ["donation.recorded"], **body})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_each_final_event_arrives_once_signed(hooked: Service, receiver: Receiver) -> None:
    charity, key = hooked.charity()
    campaign = hooked.campaign(charity, key)
    hook = _register(hooked, key, receiver.url)
    assert hook["secret"].startswith("whsec_")
    receiver.secret = hook["secret"]
    donations = [hooked.donate(campaign, key, amount)["id"] for amount in (100, 250)]
    wait_for_mirror(hooked)
    dispatcher = Dispatcher(hooked.runtime.mirror)
    for _ in range(3):  # more rounds send nothing more
        dispatcher.run_once()
    told = sorted(payload["data"]["record"]["donationId"] for _, payload in receiver.received)
    assert told == sorted(donations)
    assert len(receiver.ids()) == len(set(receiver.ids())) == 2
    first = receiver.received[0][1]
    assert first["type"] == "donation.recorded"
    assert first["data"]["record"]["channel"] == "unspecified"
    chain = first["data"]["chain"]
    assert f"{chain['tx_hash']}:{chain['log_index']}" in receiver.ids()
    log = hooked.get(f"/v1/webhooks/{hook['id']}/deliveries", key).json()["items"]
    assert {item["status"] for item in log} == {"delivered"}
    assert all(len(item["log"]) == 1 and item["log"][0]["status_code"] == 204 for item in log)
    # The secret is shown once and kept sealed, never in plain text.
    assert "secret" not in hooked.get(f"/v1/webhooks/{hook['id']}", key).json()
    with hooked.runtime.engine.connect() as connection:
        sealed = connection.execute(select(WebhookEndpoint.secret_sealed)).scalar_one()
    assert hook["secret"].encode() not in sealed and hook["secret"][6:].encode() not in sealed


def test_an_outage_is_retried_with_backoff_and_each_event_arrives_once(
    hooked: Service, receiver: Receiver
) -> None:
    charity, key = hooked.charity()
    campaign = hooked.campaign(charity, key)
    hook = _register(hooked, key, receiver.url)
    receiver.secret = hook["secret"]
    hooked.donate(campaign, key, 100)
    wait_for_mirror(hooked)
    moment = datetime.now(UTC)
    dispatcher = Dispatcher(hooked.runtime.mirror, clock=lambda: moment)
    receiver.status = 503
    dispatcher.run_once()
    assert receiver.failures == 1
    dispatcher.run_once()  # not due yet: nothing sent
    assert receiver.failures == 1
    settings = hooked.runtime.settings
    for attempt in (1, 2):  # each wait twice the one before
        assert backoff(settings, attempt) == timedelta(seconds=10 * 2 ** (attempt - 1))
        moment += backoff(settings, attempt)
        dispatcher.run_once()
        assert receiver.failures == attempt + 1
    receiver.status = 200  # it recovers
    moment += backoff(settings, 3)
    dispatcher.run_once()
    moment += timedelta(days=2)
    dispatcher.run_once()
    assert len(receiver.received) == 1
    [item] = hooked.get(f"/v1/webhooks/{hook['id']}/deliveries", key).json()["items"]
    assert item["status"] == "delivered" and item["attempts"] == 4
    assert [attempt["status_code"] for attempt in item["log"]] == [503, 503, 503, 200]


def test_nothing_is_sent_before_it_is_final(tmp_path: Path, receiver: Receiver) -> None:
    with _service(tmp_path, confirmations=3) as service:
        charity, key = service.charity()
        campaign = service.campaign(charity, key)
        hook = _register(service, key, receiver.url)
        receiver.secret = hook["secret"]
        service.donate(campaign, key, 100)
        wait_for_mirror(service)
        dispatcher = Dispatcher(service.runtime.mirror)
        dispatcher.run_once()
        assert receiver.received == []
        service.runtime.w3.provider.ethereum_tester.mine_blocks(3)  # type: ignore[attr-defined]
        wait_for_mirror(service)
        dispatcher.run_once()
        assert len(receiver.received) == 1


PRIVATE = [
    "http://127.0.0.1/hook",
    "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://localhost/hook",
    "https://127.0.0.1/hook",
    "https://10.0.0.1/",
    "https://[::ffff:127.0.0.1]/",
    "https://[fe80::1]/",
    "https://224.0.0.1/",
    "https://0.0.0.0/",
    "https://localhost/",
]


@pytest.mark.parametrize("url", PRIVATE)
def test_private_targets_are_refused_in_production(url: str) -> None:
    production = Settings(env="production", webhooks_allow_private=True)  # the flag is ignored there
    with pytest.raises(targets.RefusedTarget):
        targets.resolve(url, production)


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://0.0.0.0/"]
)
def test_link_local_and_unspecified_targets_are_refused_even_in_development(url: str) -> None:
    development = Settings(env="development", webhooks_allow_private=True)
    with pytest.raises(targets.RefusedTarget):
        targets.resolve(url, development)
    assert targets.resolve("http://127.0.0.1/", development).address == "127.0.0.1"


def test_production_refuses_to_start_with_private_targets_allowed() -> None:
    with pytest.raises(Exception, match="WEBHOOKS_ALLOW_PRIVATE"):
        Settings(env="production", webhooks_allow_private=True).check_secrets()


def test_private_targets_are_422_without_the_development_flag(embedded_service: Service) -> None:
    _, key = embedded_service.charity()
    for url in ("http://127.0.0.1/hook", "http://10.0.0.1/", "http://169.254.169.254/", "http://[::1]/"):
        body = {"url": url, "events": ["donation.recorded"]}
        answer = embedded_service.post("/v1/webhooks", key, json=body)
        assert answer.status_code == 422, (url, answer.text)
    assert embedded_service.get("/v1/webhooks", key).json()["items"] == []


def test_another_keys_webhook_is_not_found(hooked: Service, receiver: Receiver) -> None:
    a, a_key = hooked.charity("Charity A")
    _, b_key = hooked.charity("Charity B")
    hook = _register(hooked, a_key, receiver.url)
    for path in (f"/v1/webhooks/{hook['id']}", f"/v1/webhooks/{hook['id']}/deliveries"):
        assert hooked.get(path, b_key).status_code == 404
    assert (
        hooked.client.delete(
            f"/v1/webhooks/{hook['id']}", headers={"Authorization": f"Bearer {b_key}"}
        ).status_code
        == 404
    )
    assert hooked.get("/v1/webhooks", b_key).json()["items"] == []
    assert hooked.get("/v1/webhooks").status_code == 401
    body = {"url": receiver.url, "events": ["donation.recorded"]}
    assert hooked.post("/v1/webhooks", json=body).status_code == 401
    # A charity key may not scope to another charity (404, as if it did not exist).
    other = hooked.post("/v1/webhooks", b_key, json={**body, "scope": {"charity_id": a}})
    assert other.status_code == 404
    # The owner deletes it: disabled, its log still readable.
    assert (
        hooked.client.delete(
            f"/v1/webhooks/{hook['id']}", headers={"Authorization": f"Bearer {a_key}"}
        ).status_code
        == 204
    )
    assert hooked.get(f"/v1/webhooks/{hook['id']}", a_key).json()["disabled_at"] is not None


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://example.org/", "events": ["donation.recorded"]},
        {"url": "file:///etc/passwd", "events": ["donation.recorded"]},
        {"url": "http://user:pw@127.0.0.1/", "events": ["donation.recorded"]},
        {"url": "http://127.0.0.1/" + "a" * 3000, "events": ["donation.recorded"]},
        {"url": "not a url", "events": ["donation.recorded"]},
        {"url": "http://127.0.0.1/", "events": ["donation.stolen"]},
        {"url": "http://127.0.0.1/", "events": []},
        {"url": "http://127.0.0.1/", "events": ["donation.recorded"], "secret": "mine"},
        {"url": "http://127.0.0.1/", "events": ["donation.recorded"], "scope": {"charity_id": "CH-NOPE"}},
    ],
)
def test_bad_input_is_4xx_and_stores_nothing(hooked: Service, body: dict[str, Any]) -> None:
    _, key = hooked.charity()
    answer = hooked.post("/v1/webhooks", key, json=body)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    with hooked.runtime.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(WebhookEndpoint)).scalar_one() == 0
        assert connection.execute(select(func.count()).select_from(WebhookDelivery)).scalar_one() == 0


def test_a_huge_body_is_413(hooked: Service) -> None:
    _, key = hooked.charity()
    answer = hooked.post("/v1/webhooks", key, json={"url": "http://127.0.0.1/", "events": ["x" * 100_000]})
    assert answer.status_code == 413
    assert hooked.get("/v1/webhooks", ADMIN_KEY).json()["items"] == []


# ---------------------------------------------------------------- a real node: reorgs, two dispatchers


@pytest.fixture
def on_anvil(anvil: Any, database_url: str, tmp_path: Path) -> Iterator[Any]:
    """A factory of services on anvil with the given settings, on each database in turn."""

    def start(**extra: Any) -> Any:
        settings = settings_for(
            tmp_path, anvil.url, database_url, webhooks_allow_private=True, run_webhooks=False
        )
        return serve(settings.model_copy(update=extra))

    return start


def _revert_and_mine(service: Service, snapshot: str, blocks: int) -> None:
    """Abandon everything since `snapshot` for `blocks` empty blocks, and wait until the
    service's indexer has seen the reorg and mirrored the new chain."""
    w3 = service.runtime.w3
    assert service.runtime.indexer is not None
    reorgs = service.runtime.indexer.indexer.reorgs
    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    w3.provider.make_request("anvil_mine", [blocks])  # type: ignore[arg-type]
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while service.runtime.indexer.indexer.reorgs == reorgs:
        assert datetime.now(UTC) < deadline, "the indexer did not see the reorg"
        threading.Event().wait(0.05)
    wait_for_mirror(service)


@pytest.mark.anvil
def test_a_reorg_inside_the_window_sends_only_the_surviving_records(
    on_anvil: Any, receiver: Receiver
) -> None:
    with on_anvil(confirmations=3) as service:
        charity, key = service.charity()
        campaign = service.campaign(charity, key)
        hook = _register(service, key, receiver.url)
        receiver.secret = hook["secret"]
        survivor = service.donate(campaign, key, 100)["id"]
        snapshot = service.runtime.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        orphan = service.donate(campaign, key, 200)["id"]
        wait_for_mirror(service)
        dispatcher = Dispatcher(service.runtime.mirror)
        dispatcher.run_once()
        assert receiver.received == []  # neither is final yet
        _revert_and_mine(service, snapshot, 5)
        dispatcher.run_once()
        dispatcher.run_once()
        told = [payload["data"]["record"]["donationId"] for _, payload in receiver.received]
        assert told == [survivor]
        assert orphan not in told


@pytest.mark.anvil
def test_a_delivered_record_removed_by_a_deep_reorg_is_retracted(on_anvil: Any, receiver: Receiver) -> None:
    with on_anvil(confirmations=0) as service:
        charity, key = service.charity()
        campaign = service.campaign(charity, key)
        hook = _register(service, key, receiver.url)
        receiver.secret = hook["secret"]
        service.donate(campaign, key, 100)
        snapshot = service.runtime.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        orphan = service.donate(campaign, key, 200)["id"]
        wait_for_mirror(service)
        dispatcher = Dispatcher(service.runtime.mirror)
        dispatcher.run_once()
        assert len(receiver.received) == 2
        [(orphan_id, orphan_payload)] = [
            (webhook_id, payload)
            for webhook_id, payload in receiver.received
            if payload["data"]["record"]["donationId"] == orphan
        ]
        _revert_and_mine(service, snapshot, 3)
        dispatcher.run_once()
        dispatcher.run_once()
        assert len(receiver.received) == 3
        retraction_id, retraction = receiver.received[2]
        assert retraction_id == f"{orphan_id}:retracted"
        assert retraction["type"] == "record.retracted"
        assert retraction["data"]["retracted_type"] == "donation.recorded"
        assert retraction["data"]["chain"] == orphan_payload["data"]["chain"]


@pytest.mark.anvil
def test_two_dispatchers_never_send_the_same_delivery(on_anvil: Any, receiver: Receiver) -> None:
    with on_anvil() as service:
        charity, key = service.charity()
        campaign = service.campaign(charity, key)
        hook = _register(service, key, receiver.url)
        receiver.secret = hook["secret"]
        batch = service.post(
            "/v1/donations/batch",
            key,
            json={
                "donations": [
                    {"campaign_id": campaign, "amount": 10 + i, "donor_reference": "d"} for i in range(8)
                ]
            },
        )
        assert batch.status_code == 201, batch.text
        wait_for_mirror(service)
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def run() -> None:
            dispatcher = Dispatcher(service.runtime.mirror)
            start.wait()
            try:
                for _ in range(3):
                    dispatcher.run_once()
            except BaseException as error:  # surfaced below
                errors.append(error)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert len(receiver.ids()) == len(set(receiver.ids())) == 8
        with service.runtime.engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(WebhookDelivery)).scalar_one() == 8


def test_the_relay_recipe_verifies_a_real_delivery_and_names_only_the_donation(hooked: Service) -> None:
    """scripts/webhook_relay.py (docs/relay-to-sms-or-wechat.md) behind a real delivery:
    the signature checked, the payout's funding read from the public API, one message
    for the opted-in donor naming the donation ID; a forged body is refused."""
    charity, key = hooked.charity()
    campaign = hooked.campaign(charity, key)
    opted_in = hooked.donate(campaign, key, 1_000)["id"]
    silent = hooked.donate(campaign, key, 1_000)["id"]
    sent: list[webhook_relay.Message] = []
    contacts = {opted_in: [("sms", "+8613800138000")]}
    secret_box: dict[str, str] = {}

    def handler_factory() -> Any:
        return webhook_relay.make_handler(
            secret_box["secret"],
            contacts,
            webhook_relay.public_funding(hooked.base),
            hooked.base,
            sent.append,
        )

    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}/relay"
    hook = hooked.post("/v1/webhooks", key, json={"url": url, "events": ["disbursement.recorded"]})
    assert hook.status_code == 201, hook.text
    secret_box["secret"] = hook.json()["secret"]
    server.RequestHandlerClass = handler_factory()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        paid = hooked.post(
            "/v1/disbursements",
            key,
            json={
                "campaign_id": campaign,
                "amount": 1_500,
                "recipient": "Village school",
                "purpose": "books",
                "allocations": [
                    {"donation_id": opted_in, "amount": 1_000},
                    {"donation_id": silent, "amount": 500},
                ],
            },
        )
        assert paid.status_code == 201, paid.text
        wait_for_mirror(hooked)
        Dispatcher(hooked.runtime.mirror).run_once()
        assert [(m.channel, m.address) for m in sent] == [("sms", "+8613800138000")]
        assert opted_in in sent[0].text and silent not in sent[0].text
        assert "1,000" not in sent[0].text and "Village" not in sent[0].text
        [delivery] = hooked.get(f"/v1/webhooks/{hook.json()['id']}/deliveries", key).json()["items"]
        assert delivery["status"] == "delivered"
        forged = httpx.post(
            url,
            content=b'{"type":"disbursement.recorded"}',
            headers={"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
        )
        assert forged.status_code == 401
        assert len(sent) == 1
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.anvil
def test_ledger_webhooks_run_once_dispatches_outside_the_api(on_anvil: Any, receiver: Receiver) -> None:
    with on_anvil() as service:
        charity, key = service.charity()
        campaign = service.campaign(charity, key)
        hook = _register(service, key, receiver.url)
        receiver.secret = hook["secret"]
        service.donate(campaign, key, 100)
        wait_for_mirror(service)
        settings = service.runtime.settings
        env = {
            **os.environ,
            "LEDGER_RPC_URL": settings.rpc_url or "",
            "LEDGER_DATABASE_URL": settings.database_url,
            "LEDGER_CONTRACT_ADDRESS": service.runtime.deployment.address,
            "LEDGER_KEYSTORE_PATH": str(settings.keystore_path),
            "LEDGER_ADMIN_KEY": ADMIN_KEY,
            "LEDGER_WEBHOOKS_ALLOW_PRIVATE": "true",
        }
        run = subprocess.run(
            [sys.executable, "-m", "ledger_api.cli", "webhooks", "run", "--once"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert "queued=1" in run.stdout and "delivered=1" in run.stdout, run.stdout
        assert len(receiver.received) == 1
        assert hook["secret"] not in run.stdout + run.stderr


def test_an_attempt_checks_the_target_again_and_follows_no_redirect(
    hooked: Service, receiver: Receiver
) -> None:
    """A URL that resolves to a private address by the time it is sent to (DNS rebinding)
    is refused without a connection; a redirect is a failed attempt, never followed."""
    production = Settings(env="production")
    refused = send(production, "https://localhost:1/hook", {}, "{}")
    assert refused.status_code is None and refused.error is not None and "public" in refused.error
    charity, key = hooked.charity()
    campaign = hooked.campaign(charity, key)
    hook = _register(hooked, key, receiver.url)
    receiver.secret = hook["secret"]
    receiver.status = 307
    hooked.donate(campaign, key, 100)
    wait_for_mirror(hooked)
    Dispatcher(hooked.runtime.mirror).run_once()
    [item] = hooked.get(f"/v1/webhooks/{hook['id']}/deliveries", key).json()["items"]
    assert item["status"] == "pending" and item["log"][0]["status_code"] == 307
    assert receiver.failures == 1 and receiver.received == []


def test_an_auditor_key_scopes_only_within_what_it_reads(hooked: Service, receiver: Receiver) -> None:
    a, _ = hooked.charity("Charity A")
    b, _ = hooked.charity("Charity B")
    issued = hooked.post("/v1/keys", ADMIN_KEY, json={"role": "auditor", "charities": [a]})
    assert issued.status_code == 201, issued.text
    auditor = issued.json()["key"]
    body = {"url": receiver.url, "events": ["donation.recorded"]}
    assert hooked.post("/v1/webhooks", auditor, json={**body, "scope": {"charity_id": b}}).status_code == 404
    mine = hooked.post("/v1/webhooks", auditor, json=body)  # no scope: its one charity
    assert mine.status_code == 201, mine.text
    assert mine.json()["scope"]["charity_id"] == a


def test_a_revoked_keys_webhooks_are_told_nothing_more(hooked: Service, receiver: Receiver) -> None:
    charity, _ = hooked.charity()
    issued = hooked.post("/v1/keys", ADMIN_KEY, json={"role": "charity", "charity_id": charity})
    assert issued.status_code == 201, issued.text
    key, key_id = issued.json()["key"], issued.json()["id"]
    campaign = hooked.campaign(charity, key)
    hook = _register(hooked, key, receiver.url)
    receiver.secret = hook["secret"]
    hooked.donate(campaign, key, 100)
    wait_for_mirror(hooked)
    Dispatcher(hooked.runtime.mirror).run_once()
    assert len(receiver.received) == 1
    assert hooked.client.delete(f"/v1/keys/{key_id}", headers=hooked.admin()).status_code == 204
    other = hooked.post("/v1/keys", ADMIN_KEY, json={"role": "charity", "charity_id": charity}).json()["key"]
    hooked.donate(campaign, other, 200)
    wait_for_mirror(hooked)
    Dispatcher(hooked.runtime.mirror).run_once()
    assert len(receiver.received) == 1
