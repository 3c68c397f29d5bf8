"""What the benchmarks share: a minimal anvil launcher, the ledger deployed with two
charities, raw JSON-RPC and locally signed transactions, a service process, throwaway
PostgreSQL databases, and the figures' helpers (median, percentile, progress, revision).

The benchmarks import the product (ledger_api, indexer) and nothing from tests/: this
module has its own anvil launcher rather than tests/support/anvil.py.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.engine import make_url
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from ledger_api.chain.contract import Deployment, deploy_ledger, ledger_contract
from ledger_api.core import db
from ledger_api.core.models import Deployment as DeploymentRow

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
DEFAULT_POSTGRES = os.environ.get(
    "LEDGER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ZERO = b"\0" * 32
BATCH_GAS = 16_000_000  # gas limit of a recordDonations batch of 500 (it uses ~14.8M)


# ------------------------------------------------------------------ figures


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def revision() -> str | None:
    """The checkout's commit, with `-dirty` if files differ from it (the code measured)."""
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


# -------------------------------------------------------------------- anvil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AnvilNode:
    """anvil from node_modules on a free loopback port, with its ten funded dev accounts;
    stopped on leaving the `with` block."""

    def __init__(self, *extra_args: str, timeout: float = 20.0) -> None:
        if not ANVIL.exists():
            raise SystemExit(f"anvil not found at {ANVIL}: run `npm ci`")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # --max-persisted-states 0: anvil spills older blocks' states to ~/.foundry/anvil/tmp
        # and never removes them; a benchmark chain once filled a 79 GB disk. --prune-history
        # (which persists nothing either) excludes it.
        persisted = () if "--prune-history" in extra_args else ("--max-persisted-states", "0")
        self.process = subprocess.Popen(
            [
                *(str(ANVIL), "--host", "127.0.0.1", "--port", str(self.port), "--silent"),
                *persisted,
                *extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"anvil did not listen on port {self.port} within {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> AnvilNode:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------- ledger


def rid(label: str) -> bytes:
    """A bytes32 record ID derived from a readable label."""
    return keccak(text=label)


def commitment(label: str) -> bytes:
    return keccak(b"salt" + label.encode())


@dataclass
class BenchLedger:
    """A deployed ledger with two charities (A and B), an operator each (the node's
    accounts 1 and 2; account 0 is the admin) and a campaign each."""

    w3: Web3
    contract: Contract
    deployment: Deployment
    admin: str
    op_a: str
    op_b: str
    charity_a: bytes = rid("charity-a")
    charity_b: bytes = rid("charity-b")
    campaign_a: bytes = rid("campaign-a")
    campaign_b: bytes = rid("campaign-b")

    @classmethod
    def deploy(cls, w3: Web3) -> BenchLedger:
        admin, op_a, op_b = (str(account) for account in w3.eth.accounts[:3])
        deployment = deploy_ledger(w3, admin)
        led = cls(w3, ledger_contract(w3, deployment.address), deployment, admin, op_a, op_b)
        for charity, operator, campaign, name in (
            (led.charity_a, op_a, led.campaign_a, "A"),
            (led.charity_b, op_b, led.campaign_b, "B"),
        ):
            led.send(led.fn.registerCharity(charity, f"Charity {name}", ZERO), admin)
            led.send(led.fn.addOperator(charity, operator), admin)
            create = led.fn.createCampaign(campaign, charity, f"Campaign {name}", b"CNY", 10**9, ZERO)
            led.send(create, operator)
        return led

    @property
    def fn(self) -> Any:
        return self.contract.functions

    def send(self, call: ContractFunction, sender: str) -> TxReceipt:
        """Send a transaction that must succeed; its receipt."""
        tx_hash = call.transact({"from": sender})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        if receipt["status"] != 1:
            raise SystemExit(f"transaction {tx_hash.to_0x_hex()} reverted")
        return receipt

    def donation(
        self, donation_id: bytes, amount: int, campaign: bytes | None = None, donor: str = "donor"
    ) -> tuple[bytes, bytes, int, bytes, bytes, bytes]:
        """A DonationInput tuple (channel "bank", no metadata)."""
        return (
            donation_id,
            campaign or self.campaign_a,
            amount,
            commitment(donor),
            b"bank".ljust(32, b"\0"),
            ZERO,
        )


# ----------------------------------------------------------------- JSON-RPC


class Rpc:
    """Plain JSON-RPC over one keep-alive httpx connection, parsed with orjson."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(timeout=300, headers={"Content-Type": "application/json"})

    def call(self, method: str, *params: Any) -> Any:
        body = orjson.loads(self._post({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}))
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        payload = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": list(params)}
            for i, (method, params) in enumerate(calls)
        ]
        answers = sorted(orjson.loads(self._post(payload)), key=lambda a: a["id"])
        errors = [a["error"] for a in answers if "error" in a]
        if errors:
            raise RuntimeError(f"{len(errors)} failed calls, first: {errors[0]}")
        return [a["result"] for a in answers]

    def _post(self, payload: Any) -> bytes:
        response = self.client.post(self.url, content=orjson.dumps(payload))
        response.raise_for_status()
        return response.content

    def close(self) -> None:
        self.client.close()


class Sender:
    """Signs transactions of one local account and sends them raw, without waiting."""

    GAS_PRICE = 10**10

    def __init__(self, rpc: Rpc, account: LocalAccount, to: str, chain_id: int) -> None:
        self.rpc, self.account, self.to, self.chain_id = rpc, account, to, chain_id
        self.nonce = int(rpc.call("eth_getTransactionCount", account.address, "pending"), 16)
        self.hashes: list[str] = []

    def send(self, data: bytes, gas: int) -> None:
        tx: dict[str, Any] = {
            "nonce": self.nonce,
            "gas": gas,
            "gasPrice": self.GAS_PRICE,
            "to": self.to,
            "value": 0,
            "data": data,
            "chainId": self.chain_id,
        }
        signed = self.account.sign_transaction(tx)
        self.hashes.append(self.rpc.call("eth_sendRawTransaction", "0x" + signed.raw_transaction.hex()))
        self.nonce += 1

    def check_receipts(self) -> None:
        for i in range(0, len(self.hashes), 50):
            receipts = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in self.hashes[i : i + 50]])
            for tx_hash, receipt in zip(self.hashes[i : i + 50], receipts, strict=True):
                if receipt is None or receipt["status"] != "0x1":
                    raise SystemExit(f"fill transaction {tx_hash} failed or was not mined: {receipt}")


# ---------------------------------------------------------------- databases


@contextlib.contextmanager
def postgres_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on `admin_url`'s server, dropped afterwards."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def new_deployment(url: str, chain_id: int, address: str, block: int) -> tuple[Engine, int]:
    """Migrate `url` and record a deployment for the indexer; (engine, deployment id)."""
    db.upgrade(url)
    engine = db.make_engine(url)
    with engine.begin() as connection:
        deployment_id = connection.execute(
            insert(DeploymentRow)
            .values(chain_id=chain_id, address=address, deployment_block=block, source_hash="0" * 64)
            .returning(DeploymentRow.id)
        ).scalar_one()
    return engine, deployment_id


# ------------------------------------------------------------------ service


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def tail(self, lines: int = 40) -> str:
        text_lines = self.log.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(["--- last lines of the service log ---", *text_lines])


def healthy(response: httpx.Response) -> bool:
    return response.status_code == 200


@contextlib.contextmanager
def service(
    command: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    ready: Callable[[httpx.Response], bool] = healthy,
    timeout: float = 90,
) -> Iterator[Service]:
    """`ledger <command> --port P` as a process of its own (its own interpreter: the load
    generator does not share its GIL), with this environment added to ours, its output in
    `log`; yielded once /healthz answers `ready`, terminated afterwards. On an error the
    log's last lines are printed."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ledger_api.cli", *command, "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Service(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the service exited with {process.returncode}")
            try:
                response = httpx.get(f"{running.base}/healthz", timeout=5)
                last = response.text[:300]
                if ready(response):
                    break
            except (httpx.TransportError, ValueError):  # not listening yet; not JSON
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the service was not ready within {timeout:.0f} s: {last}")
            time.sleep(0.2)
        yield running
    except BaseException:
        print(running.tail(), file=sys.stderr)
        raise
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def profiled(pid: int, out: Path | None, idle: bool = False, subprocesses: bool = False) -> Iterator[None]:
    """py-spy records the service process (every thread; CPU samples, or with `idle` wall
    time, waits included; with `subprocesses`, its worker processes too) while the block
    runs, into `out` as collapsed stacks; nothing when `out` is None."""
    if out is None:
        yield
        return
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "-p",
            str(pid),
            "-o",
            str(out),
            "-f",
            "raw",
            "-r",
            "200",
            "--threads",
            "--nonblocking",
            *(["--idle"] if idle else []),
            *(["--subprocesses"] if subprocesses else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
