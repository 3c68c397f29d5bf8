"""Helpers for reliability tests: `ledger dev` as a real process (that can be stopped,
killed and restarted), a JSON-RPC proxy that makes the node disappear (wholly, or only
for some methods), and what the chain and the outbox hold for an account."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select
from web3 import Web3

from ledger_api.chain.contract import ledger_contract
from ledger_api.core import ids
from ledger_api.core.models import ChainTransaction, Signer
from tests.api.service import ADMIN_KEY
from tests.support.anvil import free_port

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------- `ledger dev`


class DevProcess:
    """`python -m ledger_api.cli dev --port P` (or another command) with the given LEDGER_*
    environment (and no other LEDGER_* variable of this process), its output in a log file."""

    def __init__(self, env: dict[str, str], log_path: Path, command: tuple[str, ...] = ("dev",)) -> None:
        self.env = env
        self.command = command
        self.log_path = log_path
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> DevProcess:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.env.get('LEDGER_CRASH_AT', '')}\n".encode())
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ledger_api.cli", *self.command, "--port", str(self.port)],
                cwd=ROOT,
                env={**inherited, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_healthy()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def wait_healthy(self, timeout: float = 60.0) -> dict[str, Any]:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"ledger dev exited ({self.process.returncode}):\n{self.log()}")
            try:
                response = httpx.get(f"{self.base}/healthz", timeout=5)
                if response.status_code == 200:
                    return dict(response.json())
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"ledger dev did not serve /healthz within {timeout} s:\n{self.log()}")
            time.sleep(0.1)

    def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> DevProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def dev_env(rpc_url: str, database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "LEDGER_RPC_URL": rpc_url,
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_KEYSTORE_PATH": str(tmp_path / "keystore"),
        "LEDGER_EVIDENCE_PATH": str(tmp_path / "evidence"),
        "LEDGER_ADMIN_KEY": ADMIN_KEY,
        "LEDGER_CONFIRMATIONS": "0",
        **extra,
    }


# ------------------------------------------------------------- the API over HTTP


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def create_charity(base: str) -> tuple[str, str, str]:
    """A new charity and a charity key for it, through the API: (charity id, key, operator)."""
    created = httpx.post(
        f"{base}/v1/charities", headers=_bearer(ADMIN_KEY), json={"name": "Relief"}, timeout=60
    )
    assert created.status_code == 201, created.text
    charity_id = created.json()["id"]
    key = httpx.post(
        f"{base}/v1/keys",
        headers=_bearer(ADMIN_KEY),
        json={"role": "charity", "charity_id": charity_id},
        timeout=60,
    )
    assert key.status_code == 201, key.text
    return charity_id, key.json()["key"], created.json()["operator"]


def create_campaign(base: str, charity_id: str, key: str) -> str:
    created = httpx.post(
        f"{base}/v1/campaigns",
        headers=_bearer(key),
        json={"charity_id": charity_id, "name": "Flood relief", "currency": "CNY", "goal": 10**9},
        timeout=60,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def post_donation(base: str, key: str, campaign_id: str, amount: int, timeout: float = 60) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/donations",
        headers=_bearer(key),
        json={"campaign_id": campaign_id, "amount": amount, "donor_reference": f"donor-{amount}"},
        timeout=timeout,
    )


def concurrently(calls: Iterable[Callable[[], Any]]) -> list[Any]:
    """Run every call on a thread of its own, all released at once; their results in order
    (an exception is returned in place of its result)."""
    calls = list(calls)
    results: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


# ------------------------------------------------------------- what is stored


@dataclass(frozen=True)
class Outbox:
    rows: list[Any]  # chain_transactions rows of one signer, by nonce
    next_nonce: int | None  # signers.next_nonce


def outbox_of(database_url: str, chain_id: int, signer: str) -> Outbox:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(ChainTransaction)
                .where(ChainTransaction.chain_id == chain_id, ChainTransaction.signer == signer)
                .order_by(ChainTransaction.nonce)
            ).all()
            next_nonce = connection.execute(
                select(Signer.next_nonce).where(Signer.chain_id == chain_id, Signer.address == signer)
            ).scalar_one_or_none()
    finally:
        engine.dispose()
    return Outbox(list(rows), next_nonce)


def records_of(row: Any) -> dict[str, Any]:
    return dict(json.loads(row.records))


def assert_consecutive_nonces(outbox: Outbox, w3: Web3, signer: str) -> None:
    """The signer's nonces in the outbox are 0..n-1, each once, every one mined, and the
    chain and signers.next_nonce both say n: nothing skipped, doubled or sent twice."""
    nonces = [row.nonce for row in outbox.rows]
    assert nonces == list(range(len(nonces))), nonces
    assert [row.status for row in outbox.rows] == ["mined"] * len(nonces)
    assert outbox.next_nonce == len(nonces)
    assert w3.eth.get_transaction_count(Web3.to_checksum_address(signer), "latest") == len(nonces)
    assert w3.eth.get_transaction_count(Web3.to_checksum_address(signer), "pending") == len(nonces)
    for row in outbox.rows:
        receipt = w3.eth.get_transaction_receipt(row.tx_hash)
        assert receipt["status"] == 1
        assert receipt["blockNumber"] == row.block_number


def donation_count(w3: Web3, address: str, campaign_id: str) -> int:
    view = ledger_contract(w3, address).functions.campaignOf(ids.to_bytes32(campaign_id, "campaign")).call()
    return int(view[8])


def donations_recorded(w3: Web3, address: str, donation_id: str) -> list[Any]:
    """Every DonationRecorded event for `donation_id` on chain."""
    contract = ledger_contract(w3, address)
    return list(
        contract.events.DonationRecorded.get_logs(
            from_block=0, argument_filters={"donationId": ids.to_bytes32(donation_id, "donation")}
        )
    )


def poll(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


# ------------------------------------------------------------- a node that goes away


class NodeProxy:
    """A JSON-RPC proxy in front of a node on a fixed port. `down()` closes the port
    (connections refused), `up()` opens it again. `drop` lists methods whose requests
    are answered by closing the connection without forwarding them (the node never sees
    them); `lose_answer` lists methods that are forwarded but whose answer is lost.
    While `stall` is set, requests get no answer at all (a node that hangs); when it is
    cleared, the stalled connections are closed unanswered. `seen` counts the requests
    of each method that reached the proxy."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.drop: set[str] = set()
        self.lose_answer: set[str] = set()
        self.stall = threading.Event()
        self.seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def up(self) -> NodeProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: one request per connection, so that down() leaves no live one.
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = json.loads(body)
                methods = [r.get("method") for r in (request if isinstance(request, list) else [request])]
                with proxy._lock:
                    for method in methods:
                        proxy.seen[method] = proxy.seen.get(method, 0) + 1
                if proxy.stall.is_set():
                    while proxy.stall.is_set():
                        time.sleep(0.02)
                    self.close_connection = True
                    return
                if any(m in proxy.drop for m in methods):
                    self.close_connection = True
                    return
                forwarded = urllib.request.Request(
                    proxy.upstream, data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(forwarded, timeout=30) as response:
                    answer = response.read()
                if any(m in proxy.lose_answer for m in methods):
                    self.close_connection = True
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        self.stall.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> NodeProxy:
        return self.up()

    def __exit__(self, *_exc: object) -> None:
        self.down()
