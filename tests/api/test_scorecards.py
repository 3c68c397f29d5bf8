"""Every scorecard, recomputed from the CSV export alone by an independent script
(scripts/scorecard_from_csv.py: standard library only, none of the service's code), equals
the API's, field by field; on the demo ledger, which has grants, approvals, recipients'
confirmations, refunds, evidence, reports, a disposal and a correction."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger_api.demo import load_demo
from ledger_api.scorecards.figures import days, nearest_rank, percent, tenths
from tests.api.service import ADMIN_KEY, Service

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "ledger_api" / "disclosure" / "rulesets" / "cn-mca-81.json"


def recomputed(csv_path: Path, as_of: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            str(ROOT / "scripts" / "scorecard_from_csv.py"),
            str(csv_path),
            "--rules",
            str(RULES),
            "--as-of",
            as_of,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(done.stdout))


def api_card(service: Service, path: str, as_of: str) -> dict[str, Any]:
    answer = service.get(path, params={"as_of": as_of})
    assert answer.status_code == 200, answer.text
    card = dict(answer.json())
    assert set(card.pop("definitions")) >= {
        "money",
        "evidence",
        "days_to_evidence",
        "corrections",
        "disclosure",
    }
    assert all(link.startswith("/v1/") for link in card.pop("links").values())
    return card


def test_every_scorecard_recomputed_from_the_csv_export_equals_the_apis(
    embedded_service: Service, tmp_path: Path
) -> None:
    service = embedded_service
    made = load_demo(service.runtime, echo=lambda _line: None)
    service.runtime.indexer.indexer.sync()  # type: ignore[union-attr]
    export = service.get("/v1/audit/export", ADMIN_KEY, params={"format": "csv"})
    assert export.status_code == 200, export.text
    csv_path = tmp_path / "ledger.csv"
    csv_path.write_bytes(export.content)
    today = datetime.now(UTC).date()
    compared = 0
    for as_of in (today.isoformat(), (today + timedelta(days=150)).isoformat()):
        script = recomputed(csv_path, as_of)
        assert len(script["campaigns"]) >= 7 and len(script["charities"]) >= 6
        for kind, path in (
            ("campaigns", "/v1/campaigns/{}/scorecard"),
            ("charities", "/v1/charities/{}/scorecard"),
        ):
            for record_id, theirs in script[kind].items():
                ours = api_card(service, path.format(record_id), as_of)
                assert ours == theirs, (kind, record_id, as_of)
                for money in ours["money"]:
                    assert money["received"] - money["refunded"] - money["allocated"] == money["unspent"]
                compared += 1
    assert compared >= 26
    # The ledger is rich enough for every section to be exercised, not just present.
    every = recomputed(csv_path, (today + timedelta(days=150)).isoformat())["charities"].values()
    assert any(card["approvals"] for card in every) and any(card["recipients"] for card in every)
    assert any(card["corrections"]["count"] for card in every)
    assert any(card["evidence"]["days_to_evidence"]["count"] for card in every)
    assert sum(card["disclosure"]["overdue"] + card["disclosure"]["met"] for card in every) > 0
    assert made["disclosure"]["correction"].startswith("CR-")


def test_the_figures_round_as_defined() -> None:
    assert tenths(1, 3) == "0.3" and tenths(2, 3) == "0.7"
    assert tenths(1, 20) == "0.0" and tenths(3, 20) == "0.2"  # 0.05 -> 0.0, 0.15 -> 0.2: half to even
    assert percent(0, 0) is None and percent(1, 8) == "12.5" and percent(7, 7) == "100.0"
    assert nearest_rank([], 50) is None
    assert nearest_rank([5, 1, 3, 2, 4], 50) == 3 and nearest_rank([1, 2, 3, 4], 50) == 2
    assert nearest_rank(list(range(1, 11)), 90) == 9 and nearest_rank([7], 90) == 7
    assert days(129_600) == "1.5" and days(None) is None


@pytest.mark.parametrize(
    "path",
    [
        "/v1/campaigns/CP-0000-0000-0000-0000/scorecard",
        "/v1/charities/CH-0000-0000-0000-0001/scorecard",
        "/v1/campaigns/DN-0000-0000-0000-0001/scorecard",
    ],
)
def test_an_unknown_or_malformed_id_is_a_clear_error(embedded_service: Service, path: str) -> None:
    answer = embedded_service.get(path)
    assert answer.status_code in (404, 422), answer.text
    assert answer.json()["status"] == answer.status_code
