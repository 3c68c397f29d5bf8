"""The demo ledger (`ledger dev --demo`'s data) served over HTTP on each chain, and
`ledger verify` run as a real process against it: on the embedded chain through the
service's own read-only /rpc, on anvil against the node."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, insert, select, text, update
from sqlalchemy.engine import make_url

from indexer import models as m
from ledger_api.core import ids
from ledger_api.demo import load_demo
from tests.api.checks import wait_for_mirror
from tests.api.service import Service, serve, settings_for

LEDGER = Path(sys.executable).parent / "ledger"
STANDALONE = Path(sys.executable).parent / "ledger-verify"


@dataclass
class Demo:
    service: Service
    rpc_url: str
    made: dict[str, Any]

    @property
    def donations(self) -> list[str]:
        return [d["id"] for d in self.made["donations"]]

    def trace(self, donation_id: str) -> dict[str, Any]:
        answer = self.service.get(f"/v1/donations/{donation_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def verify(self, *args: str, standalone: bool = False) -> subprocess.CompletedProcess[str]:
        """`ledger verify` (or the standalone `ledger-verify`) as a user runs it, against
        this service and its chain."""
        program = [str(STANDALONE)] if standalone else [str(LEDGER), "verify"]
        command = [*program, *args, "--rpc-url", self.rpc_url]
        if "--bundle" not in args:
            command += ["--api", self.service.base]
        return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)

    def verify_offline(
        self, donation_id: str, bundle: str, trusted: list[str]
    ) -> subprocess.CompletedProcess[str]:
        """`ledger verify --bundle` with no node: only the trusted block hashes given by hand."""
        command = [str(LEDGER), "verify", donation_id, "--bundle", bundle]
        for pair in trusted:
            command += ["--block-hash", pair]
        return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)

    @contextmanager
    def edited(self, *statements: Any) -> Iterator[None]:
        """The mirror edited in SQL (as an intruder with the database would), then put back."""
        engine = self.service.runtime.engine
        leaves = (m.Allocation, m.Refund)  # rows nothing else points at: deleted and put back
        B = m.Disbursement
        with engine.connect() as connection:
            saved = {t: [dict(r._mapping) for r in connection.execute(select(t.__table__))] for t in leaves}
            texts = connection.execute(select(B.disbursement_id, B.recipient, B.purpose)).all()
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(statement)
        try:
            yield
        finally:
            with engine.begin() as connection:
                for table in leaves:
                    connection.execute(delete(table))
                    connection.execute(insert(table), saved[table])
                for row in texts:
                    connection.execute(
                        update(B)
                        .where(B.disbursement_id == row.disbursement_id)
                        .values(recipient=row.recipient, purpose=row.purpose)
                    )


@pytest.fixture(
    scope="module",
    params=["eth-tester", pytest.param("anvil", marks=[pytest.mark.anvil, pytest.mark.postgres])],
)
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The embedded chain with SQLite (`ledger dev --demo`), and anvil with PostgreSQL."""
    tmp = tmp_path_factory.mktemp("verify")
    stack = ExitStack()
    if request.param == "anvil":
        node: str | None = request.getfixturevalue("anvil").url
        database = stack.enter_context(postgres_database(request.getfixturevalue("postgres_server_url")))
    else:
        node, database = None, f"sqlite:///{tmp / 'ledger.db'}"
    with stack, serve(settings_for(tmp, node, database)) as service:
        made = load_demo(service.runtime, echo=lambda _: None)
        wait_for_mirror(service)
        yield Demo(service, node or f"{service.base}/rpc", made)


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for a module's service, dropped afterwards."""
    name = f"ledger_verify_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def hex_id(record_id: str) -> str:
    return ids.to_hex(record_id)


def allocation_amount(donation_id: str, disbursement_id: str, amount: int) -> Any:
    return (
        update(m.Allocation)
        .where(m.Allocation.donation_id == hex_id(donation_id))
        .where(m.Allocation.disbursement_id == hex_id(disbursement_id))
        .values(amount=amount)
    )


def evidence_file(demo: Demo, sha256: str) -> Path:
    return demo.service.runtime.settings.evidence_path / sha256[:2] / sha256


@contextmanager
def swapped(path: Path, content: bytes) -> Iterator[None]:
    saved = path.with_suffix(".saved")
    shutil.copyfile(path, saved)
    path.write_bytes(content)
    try:
        yield
    finally:
        shutil.move(saved, path)
