"""Fixtures that build real things: chains (eth-tester in process, anvil as a real node),
databases (SQLite files, a fresh PostgreSQL database) and a deployed ledger.

PostgreSQL and anvil are mandatory when CI=true; elsewhere a test that needs one that is
not there is skipped with a message saying what is missing.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from web3 import Web3

from ledger_api.chain.contract import deploy_ledger, ledger_contract, make_web3
from tests.ledger import SHARED_CLOCKS, Ledger, clock_of
from tests.support.anvil import ANVIL, AnvilNode

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get(
    "LEDGER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def unavailable(reason: str) -> None:
    """Skip on a laptop; fail in CI, where every backend must be tested."""
    if IN_CI:
        pytest.fail(f"{reason} (mandatory when CI=true)")
    pytest.skip(reason)


# ------------------------------------------------------------------ chains


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilNode]:
    if not ANVIL.exists():
        unavailable(f"anvil not found at {ANVIL}: run `npm ci`")
    # Every service the tests start funds its new accounts from the first dev account:
    # anvil's default 10,000 ether lasts about ten services.
    node = AnvilNode("--balance", str(10**9))
    SHARED_CLOCKS.add(clock_of(make_web3(node.url)))
    yield node
    node.stop()


@pytest.fixture(scope="session")
def eth_tester_web3() -> Web3:
    w3 = make_web3(None)
    SHARED_CLOCKS.add(clock_of(w3))
    return w3


@pytest.fixture(params=["eth-tester", pytest.param("anvil", marks=pytest.mark.anvil)])
def w3(request: pytest.FixtureRequest) -> Web3:
    """A connection to each chain in turn: the embedded eth-tester and a real anvil node."""
    if request.param == "anvil":
        return make_web3(request.getfixturevalue("anvil").url)
    return request.getfixturevalue("eth_tester_web3")  # type: ignore[no-any-return]


@pytest.fixture(params=["eth-tester", pytest.param("anvil", marks=pytest.mark.anvil)])
def clock_w3(request: pytest.FixtureRequest) -> Iterator[Web3]:
    """A chain of the test's own, in turn eth-tester and anvil, whose clock the test may move
    forward (tests.ledger.advance_time). The shared chains must keep real time: signed calls
    carry deadlines taken from the wall clock, which a moved clock would have passed."""
    if request.param == "eth-tester":
        yield make_web3(None)
        return
    if not ANVIL.exists():
        unavailable(f"anvil not found at {ANVIL}: run `npm ci`")
    node = AnvilNode()
    try:
        yield make_web3(node.url)
    finally:
        node.stop()


@pytest.fixture
def ledger(w3: Web3) -> Ledger:
    """A freshly deployed ledger with two charities, one operator each, and a campaign each."""
    return _ledger_on(w3)


@pytest.fixture
def clock_ledger(clock_w3: Web3) -> Ledger:
    """The same, on a chain of the test's own whose clock it may move (clock_w3)."""
    return _ledger_on(clock_w3)


def _ledger_on(w3: Web3) -> Ledger:
    deployment = deploy_ledger(w3, w3.eth.accounts[0])
    return Ledger.setup(w3, ledger_contract(w3, deployment.address), deployment)


# --------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        unavailable(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {type(exc).__name__}")
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind in turn: a SQLite file and a PostgreSQL database."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")  # type: ignore[no-any-return]
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(scope="session")
def node_available() -> None:
    if shutil.which("node") is None or not (ROOT / "node_modules" / "solc").exists():
        unavailable("node and node_modules/solc are needed: run `npm ci`")
