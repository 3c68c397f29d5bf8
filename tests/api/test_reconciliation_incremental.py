"""Incremental reconciliation over HTTP, on anvil and each database: a re-check reads from
the node only the events after the ranges already checked; an edit of the mirror inside
a checked range is still found (its digest, or the records re-derived from it); a reorg
below a stored range drops it, so its blocks are read again; a full re-check reads
everything and finds what it found before."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from ledger_api.cli import app as cli
from ledger_api.core import ids
from ledger_api.core.models import ReconciledRange, ReconciliationJob
from tests.api.checks import reconciled, wait_for_mirror
from tests.api.service import ADMIN_KEY, Service

pytestmark = pytest.mark.anvil


def _auditor(service: Service) -> str:
    created = service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"})
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


def _events(service: Service) -> int:
    with service.runtime.engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM events")).scalar_one())


def _ranges(service: Service) -> list[tuple[int, int]]:
    with service.runtime.engine.connect() as connection:
        rows = connection.execute(
            select(ReconciledRange.first_block, ReconciledRange.last_block).order_by(
                ReconciledRange.first_block
            )
        )
        return [(int(a), int(b)) for a, b in rows]


def _ledger(service: Service) -> tuple[str, str, list[dict[str, Any]], str]:
    charity, key = service.charity()
    campaign = service.campaign(charity, key)
    donations = [service.donate(campaign, key, amount) for amount in (100, 200, 300)]
    wait_for_mirror(service)
    return campaign, key, donations, _auditor(service)


def incremental(service: Service, auditor: str) -> dict[str, Any]:
    return reconciled(service, auditor, full="false")


def test_a_clean_mirror_rechecked_reads_only_the_new_events(service: Service) -> None:
    campaign, key, _, auditor = _ledger(service)
    first = incremental(service, auditor)
    assert first["clean"] and first["full"] is False, first["differences"]
    assert first["chain_events_read"] == _events(service) and first["ranges_reused"] == 0
    head = service.runtime.w3.eth.block_number
    assert _ranges(service)[-1][1] == head
    before = _events(service)
    new = [service.donate(campaign, key, amount)["id"] for amount in (400, 500)]
    wait_for_mirror(service)
    again = incremental(service, auditor)
    assert again["clean"], again["differences"]
    added = _events(service) - before
    assert added >= 2
    assert again["chain_events_read"] == added
    assert again["events_replayed"] == before and again["ranges_reused"] == 1
    # The views are asked about the records the new events name: the new donations and
    # their campaign, not the three older ones.
    assert again["views_checked"]["donations"] == len(new)
    assert again["views_checked"]["campaigns"] == 1
    assert again["counts"]["donations"] == {"chain": 5, "mirror": 5}
    assert [r[0] for r in _ranges(service)][1] == head + 1
    # Nothing new: nothing read from the node, nothing stored.
    idle = incremental(service, auditor)
    assert idle["clean"] and idle["chain_events_read"] == 0
    assert len(_ranges(service)) == 2
    # A full re-check still reads every event and asks about every record.
    full = reconciled(service, auditor, full="true")
    assert full["clean"] and full["full"] is True
    assert full["chain_events_read"] == _events(service)
    assert full["views_checked"]["donations"] == 5


def test_an_edit_inside_a_checked_range_is_found_without_reading_it_again(service: Service) -> None:
    _, _, donations, auditor = _ledger(service)
    assert incremental(service, auditor)["clean"]
    deployment = service.runtime.deployment_id
    with service.runtime.engine.begin() as connection:
        # An event's position edited (replaying the mirror's events would carry the edit
        # into the records alike: only the range's digest can tell) and a donation inflated.
        connection.execute(
            text(
                "UPDATE events SET tx_index = tx_index + 7 WHERE deployment_id = :dep AND id = "
                "(SELECT min(id) FROM events WHERE deployment_id = :dep AND name = 'DonationRecorded')"
            ),
            {"dep": deployment},
        )
        connection.execute(
            text("UPDATE donations SET amount = amount + 1 WHERE donation_id = :d"),
            {"d": ids.to_hex(donations[0]["id"])},
        )
    answer = incremental(service, auditor)
    assert answer["clean"] is False and answer["chain_events_read"] == 0
    found = answer["differences"]
    assert any(
        d["check"] == "records" and d["table"] == "events" and "checked against the node" in d["problem"]
        for d in found
    ), found
    assert any(
        d["table"] == "donations" and d.get("key") == donations[0]["id"] and d.get("field") == "amount"
        for d in found
    ), found
    # A full re-check finds both too, from the node's events.
    full = reconciled(service, auditor, full="true")
    assert any(d["table"] == "events" and d.get("field") == "tx_index" for d in full["differences"])
    assert any(d["table"] == "donations" and d.get("field") == "amount" for d in full["differences"])


def test_a_reorg_below_a_checked_range_drops_it(service: Service) -> None:
    campaign, key, _, auditor = _ledger(service)
    w3 = service.runtime.w3
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    service.donate(campaign, key, 700)
    wait_for_mirror(service)
    assert incremental(service, auditor)["clean"]
    ((_, checked_to),) = _ranges(service)
    indexer = service.runtime.indexer
    assert indexer is not None
    reorgs = indexer.indexer.reorgs
    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    w3.provider.make_request("anvil_mine", [5])  # type: ignore[arg-type]
    for _ in range(400):
        if indexer.indexer.reorgs != reorgs:
            break
        threading.Event().wait(0.05)
    assert indexer.indexer.reorgs != reorgs, "the indexer did not see the reorg"
    wait_for_mirror(service)
    assert w3.eth.block_number > checked_to
    answer = incremental(service, auditor)
    assert answer["clean"], answer["differences"]
    # The stored range ended on a block the chain no longer has: everything is read again.
    assert answer["ranges_reused"] == 0
    assert answer["chain_events_read"] == _events(service)
    assert answer["counts"]["donations"] == {"chain": 3, "mirror": 3}
    with service.runtime.engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(ReconciledRange)).scalar_one()
    assert stored == 1 and _ranges(service)[0][1] == w3.eth.block_number


def test_a_scoped_reconciliation_is_always_full(service: Service) -> None:
    campaign, _, _, auditor = _ledger(service)
    answer = reconciled(service, auditor, campaign_id=campaign, full="false")
    assert answer["clean"] and answer["full"] is True
    assert _ranges(service) == []
    bad = service.post("/v1/audit/reconciliations", auditor, params={"full": "perhaps"})
    assert bad.status_code == 422, bad.text


def test_the_command_line_checks_incrementally_unless_asked_for_full(service: Service) -> None:
    _, _, _, auditor = _ledger(service)
    runner = CliRunner()
    for extra, full in (([], False), (["--full"], True), ([], False)):
        result = runner.invoke(cli, ["reconcile", *extra, "--api", service.base, "--key", auditor])
        assert result.exit_code == 0, result.output
        assert "CLEAN" in result.output
        with service.runtime.engine.connect() as connection:
            newest = connection.execute(
                select(ReconciliationJob.full).order_by(ReconciliationJob.created_at.desc()).limit(1)
            ).scalar_one()
        assert newest is full
    assert len(_ranges(service)) == 1  # the second incremental check found nothing new to store
