"""`ledger import` as a subprocess against the real service over HTTP: the preview table
(with nothing from the file reaching the terminal as a control), --commit waiting until
mined, --report writing the report."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.api.service import Service
from tests.imports.statements import MAPPING, csv_text, rows

ROOT = Path(__file__).resolve().parents[2]


def _ledger(*args: str, key: str) -> subprocess.CompletedProcess[bytes]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run(
        [sys.executable, "-m", "ledger_api.cli", *args],
        cwd=ROOT,
        env={**inherited, "LEDGER_API_KEY": key, "COLUMNS": "200"},
        capture_output=True,
        timeout=120,
    )


def test_ledger_import_previews_commits_and_writes_the_report(importing: Service, tmp_path: Path) -> None:
    charity, key = importing.charity("Imports CLI")
    campaign = importing.campaign(charity, key)
    body = rows(4, prefix="C")
    body[0][2] = "捐赠人 \x1b]0;owned\x07\x1b[2J"  # a payer name with terminal escapes: invalid
    body[1][1] = "C\x1b[31mRED"  # a bank reference with one: refused as invalid, printed safely
    statement = tmp_path / "statement.csv"
    statement.write_bytes(csv_text(body).encode("gb18030"))
    mapping = tmp_path / "bank-x.json"
    mapping.write_text(json.dumps({**MAPPING, "campaign_id": campaign}))

    preview = _ledger("import", str(statement), "--mapping", str(mapping), "--api", importing.base, key=key)
    assert preview.returncode == 0, preview.stderr
    out = preview.stdout.decode()
    assert "\x1b" not in out and "\x07" not in out
    assert "2 invalid, 2 record" in out
    assert "bank-reference-invalid" in out and "payer-reference-invalid" in out
    assert importing.get(f"/v1/campaigns/{campaign}").json()["received"] == 0

    put = importing.client.put(
        "/v1/import-profiles/bank-x",
        content=mapping.read_bytes(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert put.status_code == 200, put.text
    report = tmp_path / "report.csv"
    committed = _ledger(
        "import",
        str(statement),
        "--profile",
        "bank-x",
        "--commit",
        "--report",
        str(report),
        "--api",
        importing.base,
        key=key,
    )
    assert committed.returncode == 0, committed.stderr
    assert "done: 2/2 rows sent, 1 transactions mined" in committed.stderr.decode()
    lines = list(csv.DictReader(report.read_text(encoding="utf-8-sig").splitlines()))
    assert [r["verdict"] for r in lines] == ["invalid", "invalid", "recorded", "recorded"]
    assert importing.get(f"/v1/campaigns/{campaign}").json()["received"] == 1002 + 1003
