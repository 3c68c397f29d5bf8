"""On PostgreSQL: one commit, and two commits of the same statement racing record each
bank transaction once (the imported_references primary key decides)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.api.service import Service, serve, settings_for
from tests.imports.conftest import commit_and_wait, upload
from tests.imports.statements import MAPPING, csv_text, rows

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def on_postgres(
    anvil: Any, postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    try:
        with serve(settings_for(tmp_path_factory.mktemp("pg-imports"), anvil.url, url)) as running:
            yield running
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_two_commits_of_one_statement_racing_record_each_row_once(on_postgres: Service) -> None:
    charity, key = on_postgres.charity("Imports race")
    campaign = on_postgres.campaign(charity, key)
    data = csv_text(rows(120, prefix="P")).encode("gb18030")
    mapping = {**MAPPING, "campaign_id": campaign}
    first, second = (upload(on_postgres, key, data, mapping).json() for _ in range(2))
    assert first["verdicts"] == second["verdicts"] == {"record": 120}
    results: dict[str, dict[str, Any]] = {}

    def run(import_id: str) -> None:
        results[import_id] = commit_and_wait(on_postgres, key, import_id)

    threads = [threading.Thread(target=run, args=(i["id"],)) for i in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    states = {r["progress"]["state"] for r in results.values()}
    assert states == {"done"}, results
    recorded = sum(r["verdicts"].get("recorded", 0) for r in results.values())
    duplicates = sum(r["verdicts"].get("duplicate", 0) for r in results.values())
    assert (recorded, duplicates) == (120, 120)
    received = on_postgres.get(f"/v1/campaigns/{campaign}").json()["received"]
    assert received == sum(1000 + i for i in range(120))
