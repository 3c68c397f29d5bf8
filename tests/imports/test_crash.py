"""A commit killed mid-way (SIGKILL, as a power cut) and resumed by the next process:
real `ledger dev` processes on a real anvil node, the crash hook of ledger_api/chain/faults.py.

What must hold: the import reaches `done`; every row is recorded exactly once on chain;
the report maps every row to its donation; importing the statement again records nothing."""

from __future__ import annotations

import csv
import io
import json
import signal
from pathlib import Path

import httpx
import pytest

from ledger_api.chain.contract import make_web3
from tests.api.processes import DevProcess, create_campaign, create_charity, dev_env, donation_count, poll
from tests.imports.statements import MAPPING, csv_text, rows
from tests.support.anvil import AnvilNode

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

ROWS = 600  # two transactions (500 + 100) of one commit group: the kill lands between them


def _upload(base: str, key: str, data: bytes, campaign_id: str) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/imports",
        headers={"Authorization": f"Bearer {key}"},
        files={"file": ("statement.csv", data)},
        data={"mapping": json.dumps({**MAPPING, "campaign_id": campaign_id})},
        timeout=120,
    )


def _show(base: str, key: str, import_id: str) -> dict[str, object]:
    shown = httpx.get(
        f"{base}/v1/imports/{import_id}", headers={"Authorization": f"Bearer {key}"}, timeout=60
    )
    assert shown.status_code == 200, shown.text
    return dict(shown.json())


@pytest.mark.parametrize("crash_at", ["after-sign", "after-send"])
@pytest.mark.usefixtures("anvil")  # only for its check that anvil is installed
def test_a_commit_killed_midway_is_resumed_and_records_every_row_once(crash_at: str, tmp_path: Path) -> None:
    log = tmp_path / "dev.log"
    statement = csv_text(rows(ROWS)).encode()
    with AnvilNode() as node:
        env = dev_env(
            node.url, f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path, LEDGER_IMPORT_STALE_SECONDS="2"
        )
        with DevProcess(env, log) as setup:
            setup.start()
            address = httpx.get(f"{setup.base}/healthz", timeout=10).json()["chain"]["contract_address"]
            charity_id, key, _ = create_charity(setup.base)
            campaign_id = create_campaign(setup.base, charity_id, key)

        # The crash hook kills the process at its first write: the commit's first transaction.
        with DevProcess({**env, "LEDGER_CRASH_AT": crash_at}, log) as crashing:
            crashing.start()
            preview = _upload(crashing.base, key, statement, campaign_id)
            assert preview.status_code == 201, preview.text[:500]
            import_id = preview.json()["id"]
            assert preview.json()["verdicts"] == {"record": ROWS}
            httpx.post(
                f"{crashing.base}/v1/imports/{import_id}/commit",
                headers={"Authorization": f"Bearer {key}"},
                timeout=60,
            )
            assert crashing.wait_exit(60) == -signal.SIGKILL

        w3 = make_web3(node.url)
        with DevProcess(env, log) as restarted:
            restarted.start()
            # The outbox finished what was signed; the import is left mid-way until looked at.
            assert _show(restarted.base, key, import_id)["progress"]["state"] in ("queued", "running")  # type: ignore[index]
            done = poll(
                lambda: (
                    (shown := _show(restarted.base, key, import_id))["progress"]["state"] == "done"  # type: ignore[index]
                    and shown
                ),
                120,
                f"the import resumed and done:\n{restarted.log()}",
            )
            assert done["verdicts"] == {"recorded": ROWS}, done
            assert done["progress"]["rows_sent"] == ROWS  # type: ignore[index]
            assert donation_count(w3, address, campaign_id) == ROWS  # each row once on chain
            # And in the mirror: the campaign's received total is every row's amount once.
            poll(
                lambda: (
                    httpx.get(f"{restarted.base}/v1/campaigns/{campaign_id}", timeout=10).json()["received"]
                    == sum(1000 + i % 1000 for i in range(ROWS))
                ),
                30,
                "the mirror's received total is every row once",
            )

            report = httpx.get(
                f"{restarted.base}/v1/imports/{import_id}/report.csv",
                headers={"Authorization": f"Bearer {key}"},
                timeout=60,
            )
            assert report.status_code == 200, report.text
            lines = list(csv.DictReader(io.StringIO(report.text.lstrip("\ufeff"))))
            assert len(lines) == ROWS
            assert {line["verdict"] for line in lines} == {"recorded"}
            assert len({line["record_id"] for line in lines}) == ROWS
            assert len({line["bank_reference"] for line in lines}) == ROWS

            again = _upload(restarted.base, key, statement, campaign_id)
            assert again.status_code == 201, again.text[:500]
            assert again.json()["verdicts"] == {"duplicate": ROWS}
            assert donation_count(w3, address, campaign_id) == ROWS
