"""The access log (使用痕迹) over HTTP: every authenticated audit read, and every refusal,
leaves exactly one row, hash-chained and append-only; anonymous public reads leave none;
the regulator's list, the charity's report and a row's proof, with who may see what."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from ledger_api.core import access_log, db
from ledger_api.core.models import AccessLogRow
from tests.api.checks import PROBLEM, wait_for_mirror
from tests.api.processes import DevProcess, concurrently, create_charity, dev_env
from tests.api.service import ADMIN_KEY, Service
from tests.support.anvil import AnvilNode

pytestmark = pytest.mark.anvil


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201, 202), response.text
    return dict(response.json())


KINDS = {401: "unauthenticated", 403: "forbidden", 404: "not-found", 422: "invalid-request"}


def problem(response: httpx.Response, status: int) -> bool:
    """Whether `response` is the problem of `status`, of its stable kind."""
    assert response.status_code == status, (status, response.text)
    assert response.json()["type"] == PROBLEM + KINDS[status], response.text
    return True


def _rows(service: Service, after: int = 0) -> list[dict[str, Any]]:
    """The log's rows past `after`, read from the database (reading them over HTTP would
    add a row)."""
    with service.runtime.engine.connect() as connection:
        found = connection.execute(
            select(AccessLogRow).where(AccessLogRow.seq > after).order_by(AccessLogRow.seq)
        )
        return [access_log.public_row(row) for row in found.all()]


def _last(service: Service) -> int:
    rows = _rows(service)
    return rows[-1]["seq"] if rows else 0


def _chain_is_whole(rows: list[dict[str, Any]]) -> None:
    previous = access_log.GENESIS
    for expected_seq, row in enumerate(rows, start=1):
        assert row["seq"] == expected_seq
        assert row["prev_hash"] == previous
        assert access_log.row_hash(row) == row["row_hash"]
        previous = row["row_hash"]


@pytest.fixture
def ledger(service: Service) -> dict[str, Any]:
    """Charity A with a campaign and two donations, charity B with one; their keys, an
    auditor's and a second auditor's."""
    a, a_key = service.charity("Sunrise Children Fund")
    b, b_key = service.charity("Other Fund")
    auditor = _ok(service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}))
    other_auditor = _ok(service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}))
    meals = service.campaign(a, a_key)
    donations = [service.donate(meals, a_key, amount)["id"] for amount in (10_000, 20_000)]
    service.donate(service.campaign(b, b_key), b_key, 7_000)
    wait_for_mirror(service)
    return {
        "a": a,
        "b": b,
        "a_key": a_key,
        "a_id": a_key[3:15],
        "b_key": b_key,
        "auditor": auditor["key"],
        "auditor_id": auditor["id"],
        "other_auditor": other_auditor["key"],
        "meals": meals,
        "donations": donations,
    }


def test_every_audit_read_leaves_exactly_its_row(service: Service, ledger: dict[str, Any]) -> None:
    auditor, a = ledger["auditor"], ledger["a"]
    start = _last(service)

    def one_row(
        response: httpx.Response, key_id: str = ledger["auditor_id"], **expected: Any
    ) -> dict[str, Any]:
        nonlocal start
        rows = _rows(service, start)
        assert len(rows) == 1, (response.status_code, rows)
        row = rows[0]
        start = row["seq"]
        assert row["key_id"] == key_id
        for name, value in expected.items():
            assert row[name] == value, (name, row)
        return row

    # Anonymous public reads (and a public evidence lookup) leave nothing.
    for path in (
        f"/v1/charities/{a}",
        f"/v1/campaigns/{ledger['meals']}",
        f"/v1/donations/{ledger['donations'][0]}",
    ):
        assert service.get(path).status_code == 200
    assert service.get("/v1/audit/trail").status_code == 401
    assert _rows(service, start) == []

    response = service.get("/v1/audit/trail", auditor, params={"charity_id": a})
    trail = _ok(response)
    row = one_row(response, charity_id=a)
    assert row["route"] == "/v1/audit/trail" and row["method"] == "GET" and row["role"] == "auditor"
    assert row["outcome"] == "served" and row["status"] == 200
    assert row["record_count"] == len(trail["items"]) > 0
    assert row["record_ids"] == [f"{i['proof']['tx_hash']}:{i['proof']['log_index']}" for i in trail["items"]]

    job = _ok(service.post("/v1/audit/reconciliations", auditor, json={"charity_id": a}))
    one_row(
        httpx.Response(202),
        method="POST",
        route="/v1/audit/reconciliations",
        charity_id=a,
        record_ids=[job["id"]],
    )
    listed = _ok(service.get("/v1/audit/reconciliations", auditor))
    one_row(
        httpx.Response(200),
        route="/v1/audit/reconciliations",
        charity_id=None,
        record_count=len(listed["items"]),
    )
    _ok(service.get(f"/v1/audit/reconciliations/{job['id']}", auditor))
    one_row(
        httpx.Response(200), route="/v1/audit/reconciliations/{job_id}", charity_id=a, record_ids=[job["id"]]
    )
    _ok(service.get("/v1/audit/reconciliation", auditor, params={"charity_id": a}))
    one_row(httpx.Response(202), route="/v1/audit/reconciliation", charity_id=a, record_count=1)

    report = _ok(service.get("/v1/audit/anomalies", auditor, params={"campaign_id": ledger["meals"]}))
    one_row(
        httpx.Response(200),
        route="/v1/audit/anomalies",
        charity_id=a,
        campaign_id=ledger["meals"],
        record_count=len(report["items"]),
    )
    for fmt in ("csv", "json", "iati"):
        exported = service.get("/v1/audit/export", auditor, params={"format": fmt, "charity_id": a})
        assert exported.status_code == 200
        one_row(
            exported, route=f"/v1/audit/export?format={fmt}", charity_id=a, record_count=None, record_ids=None
        )

    page = _ok(service.get("/v1/audit/access-log", auditor, params={"limit": 3}))
    one_row(
        httpx.Response(200), route="/v1/audit/access-log", record_ids=[str(r["seq"]) for r in page["items"]]
    )
    _ok(service.get("/v1/audit/access-log/1/proof", auditor))
    one_row(httpx.Response(200), route="/v1/audit/access-log/{seq}/proof", record_ids=["1"])

    # The charity's own report is logged with its key.
    _ok(service.get(f"/v1/charities/{a}/access-report", ledger["a_key"]))
    one_row(
        httpx.Response(200),
        route="/v1/charities/{charity_id}/access-report",
        charity_id=a,
        role="charity",
        key_id=ledger["a_id"],
    )

    # Refusals: a charity asking for another charity's trail, report or reconciliation.
    refused = service.get("/v1/audit/trail", ledger["a_key"], params={"charity_id": ledger["b"]})
    assert problem(refused, 404)
    one_row(
        refused,
        outcome="refused",
        status=404,
        charity_id=ledger["b"],
        record_count=None,
        key_id=ledger["a_id"],
    )
    refused = service.get(f"/v1/charities/{ledger['b']}/access-report", ledger["a_key"])
    assert problem(refused, 404)
    one_row(refused, outcome="refused", status=404, charity_id=ledger["b"], key_id=ledger["a_id"])
    refused = service.get(f"/v1/audit/reconciliations/{job['id']}", ledger["b_key"])
    assert problem(refused, 404)
    one_row(
        refused,
        outcome="refused",
        status=404,
        route="/v1/audit/reconciliations/{job_id}",
        key_id=ledger["b_key"][3:15],
    )

    _chain_is_whole(_rows(service))


def test_the_log_is_append_only_and_a_dropped_trigger_shows(service: Service, ledger: dict[str, Any]) -> None:
    for _ in range(3):
        _ok(service.get("/v1/audit/trail", ledger["auditor"]))
    engine = service.runtime.engine
    for statement in (
        "UPDATE access_log SET key_id = 'someone' WHERE seq = 2",
        "DELETE FROM access_log WHERE seq = 2",
    ):
        with pytest.raises(Exception, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    _chain_is_whole(_rows(service))
    # A DB admin drops the trigger and edits a row: the chain no longer holds.
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("DROP TRIGGER access_log_no_change ON access_log"))
        else:
            connection.execute(text("DROP TRIGGER access_log_no_update"))
        connection.execute(text("UPDATE access_log SET key_id = 'someone' WHERE seq = 2"))
    with pytest.raises(AssertionError):
        _chain_is_whole(_rows(service))


def test_parallel_readers_never_fork_the_chain(service: Service, ledger: dict[str, Any]) -> None:
    failures: list[str] = []

    def read(key: str) -> None:
        with httpx.Client(base_url=service.base, timeout=60) as client:
            for _ in range(6):
                answer = client.get("/v1/audit/trail", headers={"Authorization": f"Bearer {key}"})
                if answer.status_code != 200:
                    failures.append(answer.text)

    before = _last(service)
    threads = [threading.Thread(target=read, args=(key,)) for key in [ledger["auditor"], ledger["a_key"]] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    rows = _rows(service)
    assert len(rows) == before + 48
    _chain_is_whole(rows)


def test_the_access_log_pages_filters_and_refuses_bad_filters(
    service: Service, ledger: dict[str, Any]
) -> None:
    auditor, a = ledger["auditor"], ledger["a"]
    for _ in range(3):
        _ok(service.get("/v1/audit/trail", auditor, params={"charity_id": a}))
    _ok(service.get("/v1/audit/trail", ledger["a_key"]))
    assert service.get("/v1/audit/export", ledger["a_key"], params={"format": "csv"}).status_code == 200

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "key_id": ledger["auditor_id"], "endpoint": "/v1/audit/trail"}
        if cursor:
            params["cursor"] = cursor
        page = _ok(service.get("/v1/audit/access-log", ledger["other_auditor"], params=params))
        seen += [row["seq"] for row in page["items"]]
        assert all(row["key_id"] == ledger["auditor_id"] for row in page["items"])
        cursor = page["next"]
        if cursor is None:
            break
    assert len(seen) == 3 and seen == sorted(seen)

    exports = _ok(service.get("/v1/audit/access-log", auditor, params={"endpoint": "/v1/audit/export"}))
    assert [row["route"] for row in exports["items"]] == ["/v1/audit/export?format=csv"]
    by_charity = _ok(service.get("/v1/audit/access-log", auditor, params={"charity_id": a}))
    assert {row["charity_id"] for row in by_charity["items"]} == {a}
    today = access_log.day_date(_rows(service)[-1]["day"]).isoformat()
    dated = _ok(service.get("/v1/audit/access-log", auditor, params={"from": today, "to": today}))
    assert len(dated["items"]) > 0
    assert _ok(service.get("/v1/audit/access-log", auditor, params={"to": "2000-01-01"}))["items"] == []

    for params in (
        {"from": "2026-12-02", "to": "2026-12-01"},
        {"from": "yesterday"},
        {"key_id": "x" * 40},
        {"key_id": "DROP TABLE"},
        {"charity_id": "CH-nope"},
        {"endpoint": "/v1/<script>"},
        {"endpoint": "v1/audit/trail"},
        {"limit": 0},
        {"cursor": "made-up"},
    ):
        assert problem(service.get("/v1/audit/access-log", auditor, params=params), 422), params
    assert problem(service.get("/v1/audit/access-log/0/proof", auditor), 422)
    assert problem(service.get("/v1/audit/access-log/999999/proof", auditor), 404)

    # Who may read what.
    assert problem(service.get("/v1/audit/access-log"), 401)
    assert problem(service.get("/v1/audit/access-log", ledger["a_key"]), 403)
    assert problem(service.get("/v1/audit/access-log/1/proof", ledger["a_key"]), 403)
    assert problem(service.get(f"/v1/charities/{a}/access-report"), 401)
    assert problem(service.get(f"/v1/charities/{a}/access-report", auditor), 403)
    assert problem(service.get(f"/v1/charities/{a}/access-report", ledger["b_key"]), 404)
    assert problem(service.get("/v1/charities/CH-0000-0000-0000-0000/access-report", ADMIN_KEY), 404)


def test_the_charity_report_says_who_read_its_data(service: Service, ledger: dict[str, Any]) -> None:
    auditor, a, b = ledger["auditor"], ledger["a"], ledger["b"]
    _ok(service.get("/v1/audit/trail", auditor, params={"charity_id": a}))
    _ok(service.get("/v1/audit/trail", auditor, params={"charity_id": a}))
    _ok(service.get("/v1/audit/trail", auditor, params={"charity_id": b}))  # B's: not in A's report
    assert service.get("/v1/audit/export", auditor, params={"format": "json"}).status_code == 200  # A's too

    report = _ok(service.get(f"/v1/charities/{a}/access-report", ADMIN_KEY))
    routes = [
        (row["route"], row["charity_id"]) for row in report["items"] if row["key_id"] == ledger["auditor_id"]
    ]
    assert routes == [("/v1/audit/trail", a), ("/v1/audit/trail", a), ("/v1/audit/export?format=json", None)]
    (mine,) = [group for group in report["summary"] if group["key_id"] == ledger["auditor_id"]]
    assert mine["reads"] == 3 and mine["refused"] == 0 and mine["role"] == "auditor"
    assert mine["records"] == sum(
        r["record_count"] or 0 for r in report["items"] if r["key_id"] == ledger["auditor_id"]
    )
    assert report["charity_id"] == a
    own = _ok(service.get(f"/v1/charities/{a}/access-report", ledger["a_key"]))
    assert [row["seq"] for row in own["items"]][: len(report["items"])] == [
        row["seq"] for row in report["items"]
    ]


def test_a_row_proof_leads_to_the_days_root(service: Service, ledger: dict[str, Any]) -> None:
    for _ in range(5):
        _ok(service.get("/v1/audit/trail", ledger["auditor"]))
    rows = _rows(service)
    day_hashes = [row["row_hash"] for row in rows if row["day"] == rows[2]["day"]]
    proof = _ok(service.get(f"/v1/audit/access-log/{rows[2]['seq']}/proof", ledger["auditor"]))
    assert proof["row"] == rows[2]
    assert proof["root"] == access_log.merkle_root(day_hashes)
    assert proof["path"] == access_log.merkle_path(day_hashes, proof["index"])
    assert proof["sealed"] is None


def test_an_auditor_limited_to_some_charities_is_refused_and_logged_outside_them(
    service: Service, ledger: dict[str, Any]
) -> None:
    a, b = ledger["a"], ledger["b"]
    limited = _ok(service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor", "charities": [a]}))
    key, key_id = limited["key"], limited["id"]
    _ok(service.get("/v1/audit/trail", ledger["auditor"], params={"charity_id": b}))  # another key, B
    start = _last(service)

    for path, params in (
        ("/v1/audit/trail", {"charity_id": b}),
        ("/v1/audit/anomalies", {"charity_id": b}),
        ("/v1/audit/export", {"charity_id": b, "format": "csv"}),
        ("/v1/audit/access-log", {"charity_id": b}),
    ):
        assert problem(service.get(path, key, params=params), 404), path
    refused = _rows(service, start)
    assert [(r["key_id"], r["outcome"], r["status"], r["charity_id"]) for r in refused] == [
        (key_id, "refused", 404, b)
    ] * 4
    assert [r["route"] for r in refused] == [
        "/v1/audit/trail",
        "/v1/audit/anomalies",
        "/v1/audit/export",
        "/v1/audit/access-log",
    ]

    # Its own charity is served; its view of the log holds only rows about that charity.
    _ok(service.get("/v1/audit/trail", key))
    page = _ok(service.get("/v1/audit/access-log", key))
    assert page["items"] and {row["charity_id"] for row in page["items"]} == {a}
    b_row = next(r for r in _rows(service) if r["charity_id"] == b and r["outcome"] == "served")
    assert problem(service.get(f"/v1/audit/access-log/{b_row['seq']}/proof", key), 404)
    last = _rows(service)[-1]
    assert (last["key_id"], last["outcome"], last["route"]) == (
        key_id,
        "refused",
        "/v1/audit/access-log/{seq}/proof",
    )


def test_two_workers_reading_at_once_keep_one_chain(database_url: str, tmp_path: Path) -> None:
    """`ledger serve --workers 2` on each database: parallel audit reads answered by both
    processes append to one chain, no seq twice, no fork."""
    with AnvilNode() as node:
        env = dev_env(node.url, database_url, tmp_path)
        with DevProcess(env, tmp_path / "dev.log") as dev:  # deploys the ledger
            dev.start()
            _charity_id, key, _operator = create_charity(dev.base)
        command = ("serve", "--workers", "2", "--host", "127.0.0.1")
        with DevProcess(env, tmp_path / "serve.log", command) as served:
            served.start()
            answers = concurrently(
                partial(
                    httpx.get,
                    f"{served.base}/v1/audit/trail",
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=60,
                )
                for _ in range(40)
            )
            assert [getattr(a, "status_code", None) for a in answers] == [200] * 40, served.log()
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(select(AccessLogRow).order_by(AccessLogRow.seq)).all()
    finally:
        engine.dispose()
    rows = [access_log.public_row(row) for row in stored]
    assert len(rows) == 40
    _chain_is_whole(rows)
