"""The indexer as it runs for real: in the background of `ledger dev` (new records show
up in SQL while the API serves, and a restart resumes from the cursor), and as separate
`ledger index` processes, of which exactly one writes while the other stands by and
takes over when the writer is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from indexer import models as m
from ledger_api.chain.contract import deploy_ledger, ledger_contract, make_web3
from ledger_api.core import db
from tests.api.test_health import _serve
from tests.indexer.test_mirror import _indexer, activity, dump
from tests.ledger import Ledger, rid
from tests.support.anvil import AnvilNode

pytestmark = pytest.mark.anvil
ROOT = Path(__file__).resolve().parents[2]
METRICS_TOKEN = "metrics-token-0123456789abcdefghijklmnopqrstuvwxyz"


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def donation_rows(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(m.Donation.donation_id)).scalars())


def caught_up(base: str, head: int) -> dict[str, Any] | None:
    health: dict[str, Any] = httpx.get(f"{base}/healthz").json()
    return health if (health["indexer"].get("indexed_block") or 0) >= head else None


def test_dev_indexes_in_the_background_and_resumes_after_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    with AnvilNode() as node:
        w3 = make_web3(node.url)
        # A ledger the test administers from a node account, served by `ledger dev`.
        deployment = deploy_ledger(w3, w3.eth.accounts[0])
        led = Ledger.setup(w3, ledger_contract(w3, deployment.address), deployment)
        env = {
            "LEDGER_RPC_URL": node.url,
            "LEDGER_DATABASE_URL": url,
            "LEDGER_CONFIRMATIONS": "0",
            "LEDGER_KEYSTORE_PATH": str(tmp_path / "keystore"),
            "LEDGER_METRICS_TOKEN": METRICS_TOKEN,
        }
        engine = db.make_engine(url)
        for base in _serve({**env, "LEDGER_CONTRACT_ADDRESS": deployment.address}):
            led.donate("live", 1_234)
            block = w3.eth.block_number
            seen = time.monotonic()
            wait_for(lambda: "0x" + rid("live").hex() in donation_rows(engine), 10, "the live donation")
            latency = time.monotonic() - seen
            health = httpx.get(f"{base}/healthz").json()
            assert health["indexer"]["status"] == "ok" and health["indexer"]["running"] is True
            assert health["indexer"]["indexed_block"] >= block
            metrics = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
            assert (
                f'ledger_indexer_indexed_block{{chain_id="31337",contract="{deployment.address}"}}' in metrics
            )
            assert "ledger_indexer_lag_blocks" in metrics
        assert latency < 5, f"a new donation took {latency:.2f} s to appear in SQL"

        # While the service is down, the charity goes on recording.
        activity(led, "offline", n=20)
        head = w3.eth.block_number
        for base in _serve(env):  # no address given: it resumes the one the database mirrors
            health = wait_for(lambda b=base: caught_up(b, head), 30, "the restarted service to catch up")
            assert health["chain"]["contract_address"] == deployment.address  # resumed, not redeployed
        fresh, fresh_engine = _indexer(led, f"sqlite:///{tmp_path / 'fresh.db'}")
        fresh.sync()
        assert dump(engine) == dump(fresh_engine)
        assert len(donation_rows(engine)) == 21


def _index_process(node_url: str, database_url: str, address: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ledger_api.cli",
            "index",
            "--rpc-url",
            node_url,
            "--database-url",
            database_url,
            "--address",
            address,
            "--confirmations",
            "0",
            "--progress",
            "log",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def test_a_standby_indexer_takes_over_when_the_writer_is_killed(
    anvil: AnvilNode, database_url: str, tmp_path: Path
) -> None:
    w3 = make_web3(anvil.url)
    from ledger_api.chain.contract import deploy_ledger

    deployment = deploy_ledger(w3, w3.eth.accounts[0])
    led = Ledger.setup(w3, ledger_contract(w3, deployment.address), deployment)
    activity(led, "before")
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    first = _index_process(anvil.url, database_url, deployment.address, logs[0])
    second = None
    try:
        wait_for(lambda: len(donation_rows(engine)) == 5, 30, "the first indexer to write")
        second = _index_process(anvil.url, database_url, deployment.address, logs[1])
        wait_for(lambda: b"standing by" in logs[1].read_bytes(), 30, "the second indexer to stand by")
        # Both run; only the first writes: new records still arrive exactly once.
        led.donate("while-both", 7)
        wait_for(lambda: "0x" + rid("while-both").hex() in donation_rows(engine), 10, "the first to index")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        activity(led, "after", n=8)
        head = w3.eth.block_number
        with engine.connect() as connection:
            cursor = lambda: connection.execute(select(m.Cursor.block_number)).scalar()  # noqa: E731
            wait_for(
                lambda: (connection.rollback(), (cursor() or 0) >= head)[1], 30, "the standby to take over"
            )
        assert b"took over as the single writer" in logs[1].read_bytes()
        assert second.poll() is None
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)
    fresh, fresh_engine = _indexer(led, f"sqlite:///{tmp_path / 'fresh.db'}")
    fresh.sync()
    assert dump(engine) == dump(fresh_engine)
    assert len(donation_rows(engine)) == 5 + 1 + 8
