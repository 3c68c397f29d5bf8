"""`ledger dev` as a real process: it deploys the ledger and serves /healthz over HTTP."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from ledger_api.chain.contract import ledger_contract, make_web3
from ledger_api.core import db
from ledger_api.core.models import Deployment
from tests.api.processes import DevProcess, dev_env, poll
from tests.support.anvil import AnvilNode, free_port

ROOT = Path(__file__).resolve().parents[2]


def _serve(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    # On the embedded chain, a keystore of its own: the checkout's var/embedded-keystore
    # belongs to the user's `ledger dev` (which locks it, and which this one would wipe).
    keystore = {}
    if not env.get("LEDGER_RPC_URL") and "LEDGER_KEYSTORE_PATH" not in env:
        keystore["LEDGER_KEYSTORE_PATH"] = tempfile.mkdtemp(prefix="keystore-")
    process = subprocess.Popen(
        [sys.executable, "-m", "ledger_api.cli", "dev", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **keystore, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"ledger dev exited: {process.stdout.read().decode()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("ledger dev did not serve /healthz within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def embedded_service(tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    yield from ((base, url) for base in _serve({"LEDGER_DATABASE_URL": url, "LEDGER_RPC_URL": ""}))


def test_dev_serves_health_with_the_embedded_deployment(embedded_service: tuple[str, str]) -> None:
    base, database_url = embedded_service
    body = httpx.get(f"{base}/healthz").json()
    assert body["status"] == "ok"
    chain = body["chain"]
    assert chain["embedded"] is True
    assert chain["chain_id"] == 131277322940537  # eth-tester's chain id
    assert chain["contract_address"].startswith("0x") and len(chain["contract_address"]) == 42
    assert chain["head_block"] >= chain["deployment_block"] >= 1
    assert body["database"] == {"status": "ok", "dialect": "sqlite"}
    # The deployment is recorded for the indexer (next issue) to start from.
    engine = db.make_engine(database_url)
    with engine.connect() as connection:
        row = connection.execute(select(Deployment)).one()
    engine.dispose()
    assert (row.chain_id, row.address, row.deployment_block) == (
        chain["chain_id"],
        chain["contract_address"],
        chain["deployment_block"],
    )


@pytest.mark.anvil
@pytest.mark.postgres
def test_dev_against_anvil_and_postgres_deploys_a_real_contract(anvil: AnvilNode, postgres_url: str) -> None:
    for base in _serve({"LEDGER_RPC_URL": anvil.url, "LEDGER_DATABASE_URL": postgres_url}):
        body = httpx.get(f"{base}/healthz").json()
    assert body["status"] == "ok"
    assert body["database"]["dialect"] == "postgresql"
    chain = body["chain"]
    w3 = make_web3(anvil.url)
    assert chain["chain_id"] == w3.eth.chain_id == 31337
    assert chain["embedded"] is False
    contract = ledger_contract(w3, chain["contract_address"])
    assert contract.functions.deploymentBlock().call() == chain["deployment_block"]


@pytest.mark.anvil
@pytest.mark.usefixtures("anvil")  # only for its check that anvil is installed
def test_health_reports_a_missing_node_as_degraded(tmp_path: Path) -> None:
    """A service whose node goes away answers 503 with a clear reason, not a stack trace."""
    anvil = AnvilNode()  # a node of its own, stopped halfway
    try:
        for base in _serve(
            {"LEDGER_RPC_URL": anvil.url, "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
        ):
            anvil.stop()
            response = httpx.get(f"{base}/healthz")
            assert response.status_code == 503
            body = response.json()
            assert body["status"] == "degraded"
            assert body["chain"]["error"].startswith("chain node unreachable")
            assert body["database"]["status"] == "ok"
    finally:
        anvil.stop()


@pytest.mark.anvil
@pytest.mark.usefixtures("anvil")  # only for its check that anvil is installed
def test_health_is_degraded_when_the_writer_this_process_stands_by_for_stalls(tmp_path: Path) -> None:
    """Two processes on one database: `ledger dev` writes the mirror, `ledger serve` stands
    by on the writer lock. While the writer runs, the standby is healthy; when the writer
    stops advancing (SIGSTOP: alive, lock held, nothing done) and the chain moves on, the
    standby says degraded (it used to say ok forever), and ok again once the writer resumes."""
    with AnvilNode() as node:
        env = dev_env(node.url, f"sqlite:///{tmp_path / 'shared.db'}", tmp_path)
        with DevProcess(env, tmp_path / "writer.log") as writer:
            writer.start()
            assert writer.process is not None
            with DevProcess(env, tmp_path / "standby.log", ("serve",)) as standby:
                standby.start()
                w3 = make_web3(node.url)
                w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
                head = w3.eth.block_number
                healthy = poll(
                    lambda: (h := standby.wait_healthy())["indexer"].get("indexed_block") == head and h,
                    30,
                    "the standby to see the writer's mirror at the head",
                )
                assert healthy["status"] == "ok" and healthy["indexer"]["standing_by"] is True
                assert writer.wait_healthy()["indexer"]["standing_by"] is False

                writer.process.send_signal(signal.SIGSTOP)
                try:
                    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
                    stalled = poll(
                        lambda: (
                            (r := httpx.get(f"{standby.base}/healthz", timeout=10)).status_code == 503 and r
                        ),
                        40,
                        "the standby to report the stalled writer",
                    ).json()
                finally:
                    writer.process.send_signal(signal.SIGCONT)
                assert stalled["status"] == "degraded", stalled
                indexer = stalled["indexer"]
                assert indexer["status"] == "stalled" and indexer["standing_by"] is True, indexer
                assert indexer["stalled_seconds"] >= 10 and "writer lock" in indexer["error"]
                assert stalled["chain"]["head_block"] == head + 1 and indexer["indexed_block"] == head
                poll(
                    lambda: httpx.get(f"{standby.base}/healthz", timeout=10).status_code == 200,
                    40,
                    "the standby healthy again once the writer resumed",
                )


def test_a_long_lived_app_freezes_what_it_built_once_started(tmp_path: Path) -> None:
    """`ledger serve` and `ledger dev` build the app with long_lived=True: once started, the
    collector no longer walks the process's long-lived objects (a full collection of them
    paused every request in flight). An app built for a test leaves them alone."""
    from ledger_api.app import create_app
    from ledger_api.runtime import dev_runtime
    from tests.api.service import settings_for

    runtimes = [
        dev_runtime(settings_for(tmp_path / name, None, f"sqlite:///{tmp_path / name}.db"))
        for name in ("test", "served")
    ]

    async def frozen_once_started(app: FastAPI) -> int:
        async with app.router.lifespan_context(app):
            return gc.get_freeze_count()

    before = gc.get_freeze_count()
    try:
        assert asyncio.run(frozen_once_started(create_app(runtimes[0]))) == before
        assert asyncio.run(frozen_once_started(create_app(runtimes[1], long_lived=True))) > before + 100_000
    finally:
        gc.unfreeze()
        for runtime in runtimes:
            runtime.engine.dispose()
