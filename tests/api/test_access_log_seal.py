"""The access log's daily seal on a real chain: a finished day's root goes on chain once,
today's never; `ledger verify access-day` rebuilds the root from the rows and finds the
chain's; a row's proof checks out against it; a row deleted or edited afterwards (the
trigger dropped first, as a DB admin would) makes both checks fail, saying where."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ledger_verify.cli import main as verify
from sqlalchemy import text

from ledger_api.audit import seals
from ledger_api.core import access_log
from ledger_api.core.access_log import Read
from tests.api.checks import sender, wait_for_mirror
from tests.api.service import ADMIN_KEY, Service

pytestmark = pytest.mark.anvil


def _run(*argv: str) -> tuple[int, list[str]]:
    lines: list[str] = []
    return verify(list(argv), lines.append), lines


def test_a_finished_day_is_sealed_once_and_checks_out(service: Service, anvil: Any) -> None:
    engine, writes = service.runtime.engine, service.runtime.writes
    assert writes is not None
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1)
    day = access_log.day_number(yesterday)
    for n in range(5):
        read = Read("auditor00001", "auditor", "GET", "/v1/audit/trail", record_ids=[f"0x{n:02x}:0"])
        access_log.append(engine, read, now=yesterday.replace(hour=10, minute=n))
    auditor = service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}).json()["key"]
    assert service.get("/v1/audit/trail", auditor).status_code == 200  # today's row

    with pytest.raises(ValueError, match="not over yet"):
        seals.seal_day(writes, engine, access_log.day_number(now))
    (sealed,) = seals.seal_finished_days(writes, engine)
    assert (sealed.day, sealed.outcome, sealed.row_count) == (day, "sealed", 5)
    assert [s.outcome for s in seals.seal_finished_days(writes, engine)] == ["already"]
    with engine.connect() as connection:
        hashes = [row.row_hash for row in access_log.day_rows(connection, day)]
    root, count, last = service.contract.functions.accessLogSeal(day).call()
    assert ("0x" + root.hex(), count, last.hex()) == (access_log.merkle_root(hashes), 5, hashes[-1])
    assert service.contract.functions.accessLogSeal(access_log.day_number(now)).call()[1] == 0
    # The seal is in the deployment's audit trail (it belongs to no charity), as mirrored.
    wait_for_mirror(service)
    trail = service.get("/v1/audit/trail", auditor, params={"kind": "access_log_sealed"}).json()
    [entry] = trail["items"]
    assert entry["charity_id"] is None
    assert entry["data"] == {
        "day": day,
        "root": access_log.merkle_root(hashes),
        "row_count": 5,
        "last_row_hash": "0x" + hashes[-1],
        "sealer": entry["sender"],
    }
    assert entry["sender"] == sender(service, entry["proof"]["tx_hash"])  # the log sealer signed it

    date = access_log.day_date(day).isoformat()
    common = ("--api", service.base, "--key", auditor, "--rpc-url", anvil.url)
    code, lines = _run("access-day", date, *common)
    assert code == 0, lines
    assert any(line.startswith("ok        root rebuilt from the rows") for line in lines), lines
    code, lines = _run("access-row", "--seq", "3", *common)
    assert code == 0, lines
    assert any("sealed on chain" in line and line.startswith("ok") for line in lines), lines
    proof = service.get("/v1/audit/access-log/3/proof", auditor).json()
    assert proof["root"] == access_log.merkle_root(hashes)

    # A DB admin drops the trigger and deletes row 3: the day no longer matches its seal.
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("DROP TRIGGER access_log_no_change ON access_log"))
        else:
            connection.execute(text("DROP TRIGGER access_log_no_delete"))
        connection.execute(text("DELETE FROM access_log WHERE seq = 3"))
    code, lines = _run("access-day", date, *common)
    assert code == 1, lines
    assert any(line.startswith("MISMATCH  row 4 follows row 2") for line in lines), lines
    assert any(line.startswith("MISMATCH  row count sealed on chain") for line in lines), lines
    code, lines = _run("access-row", "--seq", "2", *common)
    assert code == 1 and any("MISMATCH" in line and "sealed on chain" in line for line in lines), lines
    assert [s.outcome for s in seals.seal_finished_days(writes, engine)] == ["mismatch"]

    # Editing a row (and recomputing its hash) is caught the same way.
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(text("DROP TRIGGER access_log_no_update"))
        connection.execute(text("UPDATE access_log SET key_id = 'someone' WHERE seq = 5"))
    code, lines = _run("access-day", date, *common)
    assert code == 1 and any(line.startswith("MISMATCH  row 5's hash") for line in lines), lines
