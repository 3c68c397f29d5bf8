"""`ledger dev` as a real process: it deploys the ledger and serves /healthz over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from ledger_api.chain.anvil import AnvilNode, free_port
from ledger_api.chain.contract import ledger_contract, make_web3
from ledger_api.core import db
from ledger_api.core.models import Deployment

ROOT = Path(__file__).resolve().parents[2]


def _serve(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ledger_api.cli", "dev", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
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
