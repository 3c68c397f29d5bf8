"""Regulators over HTTP: the audit trail, reconciliation (including against a mirror
tampered with directly in SQL), anomaly reports and the exports, with who may see what."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest
from lxml import etree
from sqlalchemy import text

from ledger_api.audit import iati
from ledger_api.core import ids
from tests.api.checks import campaign_view, problem, reconciled, sender, wait_for_mirror
from tests.api.service import ADMIN_KEY, Service

pytestmark = pytest.mark.anvil


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


@pytest.fixture
def ledger(service: Service) -> dict[str, Any]:
    """Charity A: a CNY campaign with three donations, a disbursement with evidence drawing
    on them (FIFO), a second one without evidence, a refund of the partly allocated third, then closed; and a
    JPY campaign with one donation. Charity B: one campaign, one donation. Keys: A's, B's,
    an auditor's."""
    a, a_key = service.charity("Sunrise Children Fund 朝阳儿童基金")
    b, b_key = service.charity("Other Fund")
    auditor = _ok(service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}))["key"]
    meals = service.campaign(a, a_key)
    books = service.campaign(a, a_key, currency="JPY")
    other = service.campaign(b, b_key)
    donations = [service.donate(meals, a_key, amount) for amount in (10_000, 20_000, 30_000)]
    service.donate(books, a_key, 1_500)
    service.donate(other, b_key, 7_000)
    wait_for_mirror(service)
    first = _ok(
        service.post(
            "/v1/disbursements",
            a_key,
            json={"campaign_id": meals, "amount": 35_000, "recipient": "CN-USCC-9111", "purpose": "meals"},
        )
    )
    _ok(
        service.post(
            f"/v1/disbursements/{first['id']}/evidence",
            a_key,
            files={"files": ("invoice.txt", b"INVOICE 42")},
        )
    )
    second = _ok(
        service.post(
            "/v1/disbursements",
            a_key,
            json={"campaign_id": meals, "amount": 5_000, "recipient": "CN-USCC-7777", "purpose": "transport"},
        )
    )
    refund = _ok(
        service.post(
            f"/v1/donations/{donations[2]['id']}/refunds", a_key, json={"amount": 1_000, "reason": "asked"}
        )
    )
    _ok(service.post(f"/v1/campaigns/{meals}/close", a_key))
    wait_for_mirror(service)
    return {
        "a": a,
        "b": b,
        "a_key": a_key,
        "b_key": b_key,
        "auditor": auditor,
        "meals": meals,
        "books": books,
        "other": other,
        "donations": donations,
        "disbursements": [first["id"], second["id"]],
        "refund": refund["id"],
    }


def _trail(service: Service, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of the trail, following the cursor."""
    entries: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = _ok(service.get("/v1/audit/trail", key, params=query))
        entries += page["items"]
        cursor = page["next"]
        if cursor is None:
            return entries


def test_the_trail_has_every_event_in_chain_order_with_its_sender(
    service: Service, ledger: dict[str, Any]
) -> None:
    entries = _trail(service, ledger["auditor"], charity_id=ledger["a"])
    positions = [(e["proof"]["block_number"], e["proof"]["log_index"]) for e in entries]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    kinds = [e["kind"] for e in entries]
    # Registration, operator, 2 campaigns, 4 donations, 2 disbursements + 4 allocations,
    # 1 evidence, 1 refund, 1 close: every one of charity A's, none of B's.
    assert kinds.count("donation_recorded") == 4
    assert kinds.count("disbursement_recorded") == 2
    assert kinds.count("donation_allocated") == 4
    assert kinds.count("evidence_anchored") == 1
    assert kinds.count("donation_refunded") == 1
    assert kinds.count("campaign_closed") == 1
    assert kinds[:2] == ["charity_registered", "operator_added"]
    assert {e["charity_id"] for e in entries} == {ledger["a"]}
    assert ledger["other"] not in json.dumps(entries)
    operator = service.operators[ledger["a"]]
    for entry in entries:
        # The on-chain sender is the account that signed the transaction (allocations too).
        assert entry["sender"] == sender(service, entry["proof"]["tx_hash"])
        if entry["kind"] not in ("charity_registered", "operator_added"):
            assert entry["sender"].lower() == operator.lower()
    donation = next(e for e in entries if e["kind"] == "donation_recorded")
    assert donation["data"]["donation_id"] == ledger["donations"][0]["id"]
    assert donation["data"]["donor_commitment"].startswith("0x")  # auditors see the commitment
    allocation = next(e for e in entries if e["kind"] == "donation_allocated")
    assert allocation["campaign_id"] == ledger["meals"]


def test_the_trail_filters_by_campaign_kind_blocks_and_time(service: Service, ledger: dict[str, Any]) -> None:
    auditor = ledger["auditor"]
    everything = _trail(service, auditor)
    assert {e["charity_id"] for e in everything} == {ledger["a"], ledger["b"], None}
    # Only the deployment's own role grants belong to no charity; every event, theirs too,
    # names the account that sent it.
    assert {e["kind"] for e in everything if e["charity_id"] is None} == {"role_granted"}
    for entry in everything:
        assert entry["sender"] == sender(service, entry["proof"]["tx_hash"]), entry
    # The whole deployment exports too (the role grants included).
    exported = service.get("/v1/audit/export", auditor, params={"format": "csv"})
    assert exported.status_code == 200, exported.text
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [(int(r["block_number"]), int(r["log_index"])) for r in rows] == [
        (e["proof"]["block_number"], e["proof"]["log_index"]) for e in everything
    ]
    as_json = service.get("/v1/audit/export", auditor, params={"format": "json"})
    assert as_json.status_code == 200 and as_json.json()["entries"] == everything
    books = _trail(service, auditor, campaign_id=ledger["books"])
    assert [e["kind"] for e in books] == ["campaign_created", "donation_recorded"]
    refunds = _trail(service, auditor, kind=["donation_refunded", "campaign_closed"])
    assert sorted(e["kind"] for e in refunds) == ["campaign_closed", "donation_refunded"]
    assert (
        refunds[0]["data"]["refund_id"] == ledger["refund"]
        or refunds[1]["data"]["refund_id"] == (ledger["refund"])
    )
    middle = everything[len(everything) // 2]["proof"]["block_number"]
    ranged = _trail(service, auditor, from_block=middle, to_block=middle)
    assert ranged and all(e["proof"]["block_number"] == middle for e in ranged)
    assert len(ranged) == sum(e["proof"]["block_number"] == middle for e in everything)
    future = _trail(service, auditor, since="2999-01-01T00:00:00Z")
    assert future == []
    past = _trail(service, auditor, until="2999-01-01T00:00:00Z")
    assert len(past) == len(everything)


def test_who_may_see_what(service: Service, ledger: dict[str, Any]) -> None:
    a_key, b_key, auditor = ledger["a_key"], ledger["b_key"], ledger["auditor"]
    paths = (
        "/v1/audit/trail",
        "/v1/audit/reconciliation",  # starts a reconciliation job: 202
        "/v1/audit/reconciliations",
        "/v1/audit/anomalies",
    )
    for path in (*paths, "/v1/audit/export?format=csv"):
        problem(service.get(path), 401, "unauthenticated")
    # A charity key sees its own charity (the default scope), and 404 for another's.
    own = _trail(service, a_key)
    assert own and {e["charity_id"] for e in own} == {ledger["a"]}
    for path in paths:
        expected = 202 if path.endswith("/reconciliation") else 200
        assert service.get(path, a_key, params={"charity_id": ledger["a"]}).status_code == expected
        problem(service.get(path, a_key, params={"charity_id": ledger["b"]}), 404, "not-found")
        problem(service.get(path, a_key, params={"campaign_id": ledger["other"]}), 404, "not-found")
        problem(service.get(path, b_key, params={"campaign_id": ledger["meals"]}), 404, "not-found")
    problem(
        service.get("/v1/audit/export", a_key, params={"format": "json", "charity_id": ledger["b"]}),
        404,
        "not-found",
    )
    # The 404 for another charity's campaign reads exactly like one for a campaign that
    # does not exist.
    unknown = service.get("/v1/audit/trail", a_key, params={"campaign_id": ids.new("campaign")})
    foreign = service.get("/v1/audit/trail", a_key, params={"campaign_id": ledger["other"]})
    assert unknown.json()["detail"] == foreign.json()["detail"]
    # Auditors see everything.
    assert service.get("/v1/audit/trail", auditor, params={"charity_id": ledger["b"]}).status_code == 200


def test_public_answers_hold_nothing_only_auditors_see(service: Service, ledger: dict[str, Any]) -> None:
    entries = _trail(service, ledger["auditor"])
    commitments = {e["data"]["donor_commitment"] for e in entries if "donor_commitment" in e["data"]}
    operators = {e["sender"] for e in entries if e["sender"]}
    assert commitments and operators
    public = [
        f"/v1/donations/{ledger['donations'][1]['id']}",
        f"/v1/disbursements/{ledger['disbursements'][0]}",
        f"/v1/campaigns/{ledger['meals']}",
        f"/v1/campaigns/{ledger['meals']}/donations",
        f"/v1/campaigns/{ledger['meals']}/disbursements",
        f"/v1/campaigns/{ledger['meals']}/flows",
        "/v1/campaigns",
        "/v1/charities",
        f"/v1/charities/{ledger['a']}",
    ]
    for path in public:
        response = service.get(path)
        assert response.status_code == 200, (path, response.text)
        body = response.text.lower()
        for secret in commitments:
            assert secret.lower() not in body, (path, secret)
        if not path.startswith("/v1/charities/"):  # a charity's page lists its signing accounts
            for account in operators:
                assert account.lower() not in body, (path, account)
        for field in ("donor_commitment", "sender", "operator", "donor_reference", "metadata_hash"):
            assert f'"{field}"' not in body, (path, field)


def test_reconciliation_is_clean_on_an_honest_mirror(service: Service, ledger: dict[str, Any]) -> None:
    for params in ({}, {"charity_id": ledger["a"]}, {"campaign_id": ledger["meals"]}):
        answer = reconciled(service, ledger["auditor"], **params)
        assert answer["clean"] is True, answer["differences"]
        assert answer["differences"] == [] and answer["difference_count"] == 0
        assert answer["digest"]["chain"] == answer["digest"]["mirror"]
        head = service.runtime.w3.eth.block_number
        assert answer["checked_at"]["block_number"] == head
        counts = answer["counts"]
        assert counts["events"]["chain"] == counts["events"]["mirror"] > 0
    whole = reconciled(service, ledger["auditor"])
    assert whole["counts"]["donations"] == {"chain": 5, "mirror": 5}
    assert whole["views_checked"] == {"campaigns": 3, "donations": 5, "disbursements": 2}
    meals = reconciled(service, ledger["auditor"], campaign_id=ledger["meals"])
    assert meals["counts"]["donations"] == {"chain": 3, "mirror": 3}


def test_reconciliation_catches_a_tampered_mirror(service: Service, ledger: dict[str, Any]) -> None:
    auditor = ledger["auditor"]
    engine = service.runtime.engine
    first, second = (ids.to_hex(d["id"]) for d in ledger["donations"][:2])
    disbursement = ids.to_hex(ledger["disbursements"][1])
    with engine.begin() as connection:
        # An inflated total, an edited recipient, a dropped event, a dropped donation row.
        connection.execute(
            text("UPDATE donations SET allocated = allocated + 1 WHERE donation_id = :d"), {"d": first}
        )
        connection.execute(
            text("UPDATE disbursements SET recipient = 'ME' WHERE disbursement_id = :d"), {"d": disbursement}
        )
        connection.execute(
            text("DELETE FROM events WHERE name = 'EvidenceAnchored' AND deployment_id = :dep"),
            {"dep": service.runtime.deployment_id},
        )
        connection.execute(text("DELETE FROM donations WHERE donation_id = :d"), {"d": second})
    answer = reconciled(service, auditor, charity_id=ledger["a"])
    assert answer["clean"] is False
    assert answer["digest"]["chain"] != answer["digest"]["mirror"]
    found = answer["differences"]

    def has(**expected: Any) -> bool:
        return any(all(d.get(k) == v for k, v in expected.items()) for d in found)

    first_id, second_id = ledger["donations"][0]["id"], ledger["donations"][1]["id"]
    assert has(
        check="records", table="donations", key=first_id, field="allocated", problem="altered in the mirror"
    )
    assert has(check="view", table="donations", key=first_id, field="allocated")
    assert has(
        check="records", table="disbursements", key=ledger["disbursements"][1], field="recipient", mirror="ME"
    )
    assert has(check="records", table="events", problem="on chain, missing from the mirror")
    assert has(check="records", table="donations", key=second_id, problem="on chain, missing from the mirror")
    assert answer["difference_count"] == len(found) >= 5
    # Charity B's records were not touched: its scope is still clean.
    assert reconciled(service, auditor, charity_id=ledger["b"])["clean"]
    # A row that is not on chain at all is found too.
    fake = ids.to_hex(ids.new("donation"))
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO donations (deployment_id, donation_id, campaign_id, amount, donor_commitment,"
                " channel, metadata_hash, operator, allocated, refunded, block_number, tx_hash, log_index)"
                " SELECT deployment_id, :fake, campaign_id, 1, donor_commitment, channel, metadata_hash,"
                " operator, 0, 0, block_number, tx_hash, log_index FROM donations WHERE donation_id = :d"
            ),
            {"fake": fake, "d": first},
        )
    again = reconciled(service, auditor)
    fake_id = ids.from_bytes32(fake)
    assert any(
        d.get("key") == fake_id and d["problem"] == "in the mirror, not on chain"
        for d in again["differences"]
    )
    assert any(d.get("key") == fake_id and d["check"] == "view" for d in again["differences"])


def test_anomalies_are_reported_with_their_records(service: Service, ledger: dict[str, Any]) -> None:
    auditor = ledger["auditor"]
    params = {"charity_id": ledger["a"], "evidence_days": 0, "recipient_share": 0.8, "large_share": 0.5}
    answer = _ok(service.get("/v1/audit/anomalies", auditor, params=params))
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for item in answer["items"]:
        by_kind.setdefault(item["kind"], []).append(item)
    # The second disbursement has no evidence; the first has.
    assert [i["record"]["id"] for i in by_kind["missing_evidence"]] == [ledger["disbursements"][1]]
    # 35,000 of 40,000 (87.5%) went to one recipient; it is also 35,000/60,000 of receipts.
    (concentration,) = by_kind["recipient_concentration"]
    assert concentration["record"]["id"] == "CN-USCC-9111" and concentration["share"] == 0.875
    # Texts give money as people read it, with its currency (the fields keep minor units).
    assert "(350.00 CNY of 400.00 CNY, 1 disbursements)" in concentration["detail"]
    assert concentration["amount"] == 35_000 and concentration["currency"] == "CNY"
    assert "disbursement of 50.00 CNY to 'CN-USCC-7777'" in by_kind["missing_evidence"][0]["detail"]
    assert [i["record"]["id"] for i in by_kind["large_disbursement"]] == [ledger["disbursements"][0]]
    # The refunded donation had been allocated to the first disbursement before.
    (refund,) = by_kind["refund_after_allocation"]
    assert refund["record"]["id"] == ledger["refund"]
    assert refund["detail"].startswith("refund of 10.00 CNY ('asked')")
    assert refund["donation_id"] == ledger["donations"][2]["id"]
    assert refund["proof"]["tx_hash"].startswith("0x")
    assert answer["counts"]["not_finalized"] == 0
    assert answer["counts"] == {k: len(by_kind.get(k, [])) for k in answer["counts"]}
    # Looser thresholds report less; charity B has none of these.
    loose = _ok(service.get("/v1/audit/anomalies", auditor, params={"charity_id": ledger["a"]}))
    assert loose["counts"]["missing_evidence"] == 0  # nothing is 30 days old yet
    assert loose["counts"]["large_disbursement"] == 1  # 58% > the default 25%
    other = _ok(
        service.get("/v1/audit/anomalies", auditor, params={"charity_id": ledger["b"], "evidence_days": 0})
    )
    assert sum(other["counts"].values()) == 0


def test_a_transaction_that_never_made_it_is_an_anomaly(service: Service, ledger: dict[str, Any]) -> None:
    """The outbox row of a transaction that was mined and then dropped by a reorg (its
    events are not in the mirror) is written here directly: causing a real reorg below the
    finalized height needs a second chain (tests/indexer covers reorgs)."""
    engine = service.runtime.engine
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO chain_transactions (id, chain_id, signer, nonce, function, charity_id, records,"
                " raw_tx, tx_hash, status, block_number) VALUES ('dropped-1', :chain, :signer, 999999,"
                " 'recordDonation', :charity, :records, '0x00', :tx, 'mined', 1)"
            ),
            {
                "chain": service.runtime.deployment.chain_id,
                "signer": service.operators[ledger["a"]],
                "charity": ids.to_hex(ledger["a"]),
                "records": json.dumps({"kind": "donation", "ids": ["DN-0000-0000-0000-0001"]}),
                "tx": "0x" + "ab" * 32,
            },
        )
    answer = _ok(service.get("/v1/audit/anomalies", ledger["auditor"], params={"charity_id": ledger["a"]}))
    (item,) = [i for i in answer["items"] if i["kind"] == "not_finalized"]
    assert item["transaction"]["tx_hash"] == "0x" + "ab" * 32
    assert "dropped" in item["detail"]
    other = _ok(service.get("/v1/audit/anomalies", ledger["auditor"], params={"charity_id": ledger["b"]}))
    assert other["counts"]["not_finalized"] == 0


def test_exports_csv_json_and_iati(service: Service, ledger: dict[str, Any]) -> None:
    auditor = ledger["auditor"]
    trail = _trail(service, auditor, charity_id=ledger["a"])
    as_json = service.get("/v1/audit/export", auditor, params={"format": "json", "charity_id": ledger["a"]})
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    exported = as_json.json()
    assert exported["count"] == len(trail) and exported["entries"] == trail
    assert exported["scope"] == {"charity_id": ledger["a"], "campaign_id": None}

    as_csv = service.get("/v1/audit/export", auditor, params={"format": "csv", "charity_id": ledger["a"]})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert f'filename="{ledger["a"]}.csv"' in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert len(rows) == len(trail)
    donations = [r for r in rows if r["kind"] == "donation_recorded"]
    assert sorted(int(r["amount"]) for r in donations) == [1_500, 10_000, 20_000, 30_000]
    assert {r["currency"] for r in donations} == {"CNY", "JPY"}
    assert all(r["tx_hash"] == e["proof"]["tx_hash"] for r, e in zip(rows, trail, strict=True))

    as_xml = service.get("/v1/audit/export", auditor, params={"format": "iati", "charity_id": ledger["a"]})
    assert as_xml.status_code == 200
    assert iati.validate(as_xml.content) == []
    root = etree.fromstring(as_xml.content)
    activities = root.findall("iati-activity")
    org = iati.organisation_ref(service.runtime.deployment.chain_id, ledger["a"])
    assert sorted(a.findtext("iati-identifier") for a in activities) == sorted(
        f"{org}-{c}" for c in (ledger["meals"], ledger["books"])
    )
    meals = next(a for a in activities if a.findtext("iati-identifier").endswith(ledger["meals"]))
    values = [
        (t.find("transaction-type").get("code"), t.findtext("value")) for t in meals.findall("transaction")
    ]
    view = campaign_view(service, ledger["meals"])
    incoming = sum(round(float(v) * 100) for code, v in values if code == "1")
    outgoing = sum(round(float(v) * 100) for code, v in values if code == "3")
    assert incoming == view["received"] - view["refunded"] and outgoing == view["disbursed"]
    assert ("1", "-10.00") in values  # the refund, as negative incoming funds
    assert meals.find("activity-status").get("code") == "3"  # closed
    books = next(a for a in activities if a.findtext("iati-identifier").endswith(ledger["books"]))
    assert [t.findtext("value") for t in books.findall("transaction")] == ["1500"]  # yen: no decimals
    assert "Other Fund" not in as_xml.text

    one = service.get("/v1/audit/export", auditor, params={"format": "iati", "campaign_id": ledger["other"]})
    assert iati.validate(one.content) == [] and len(etree.fromstring(one.content)) == 1


def test_bad_audit_input_is_a_clear_422_or_404(service: Service, ledger: dict[str, Any]) -> None:
    auditor = ledger["auditor"]
    for path, params in (
        ("/v1/audit/trail", {"charity_id": "CH-nope"}),
        ("/v1/audit/trail", {"campaign_id": ledger["a"]}),  # a charity ID where a campaign's goes
        ("/v1/audit/trail", {"kind": "donation_stolen"}),
        ("/v1/audit/trail", {"limit": 201}),
        ("/v1/audit/trail", {"limit": 0}),
        ("/v1/audit/trail", {"from_block": -1}),
        ("/v1/audit/trail", {"cursor": "garbage"}),
        ("/v1/audit/trail", {"since": "yesterday"}),
        ("/v1/audit/trail", {"since": "2026-01-01T00:00:00"}),  # no time zone
        ("/v1/audit/anomalies", {"recipient_share": 2}),
        ("/v1/audit/anomalies", {"evidence_days": -1}),
        ("/v1/audit/export", {"format": "pdf"}),
        ("/v1/audit/export", {}),
    ):
        response = service.get(path, auditor, params=params)
        assert response.status_code == 422, (path, params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    for path in (
        "/v1/audit/trail",
        "/v1/audit/reconciliation",
        "/v1/audit/reconciliations",
        "/v1/audit/anomalies",
    ):
        problem(service.get(path, auditor, params={"charity_id": ids.new("charity")}), 404, "not-found")
    problem(
        service.get(
            "/v1/audit/export", auditor, params={"format": "iati", "campaign_id": ids.new("campaign")}
        ),
        404,
        "not-found",
    )


def test_the_command_line_traces_reconciles_and_exports(
    service: Service, ledger: dict[str, Any], tmp_path: Any
) -> None:
    from typer.testing import CliRunner

    from ledger_api.cli import app

    runner = CliRunner()
    third = ledger["donations"][2]["id"]
    traced = runner.invoke(app, ["trace", third, "--api", service.base])
    assert traced.exit_code == 0, traced.output
    out = traced.output
    assert third in out and ledger["disbursements"][0] in out and ledger["disbursements"][1] in out
    assert ledger["refund"] in out and "asked" in out and "meals" in out and "transport" in out
    unknown = runner.invoke(app, ["trace", ids.new("donation"), "--api", service.base])
    assert unknown.exit_code == 2 and "404" in unknown.output

    auditor = ["--api", service.base, "--key", ledger["auditor"]]
    clean = runner.invoke(app, ["reconcile", "--charity-id", ledger["a"], *auditor])
    assert clean.exit_code == 0, clean.output
    assert clean.stdout.startswith("CLEAN")
    # The job's progress goes to stderr, the summary alone to stdout.
    assert clean.stderr.startswith("reconciliation ") and "CLEAN" not in clean.stderr
    others = runner.invoke(
        app, ["reconcile", "--charity-id", ledger["b"], "--api", service.base, "--key", ledger["a_key"]]
    )
    assert others.exit_code == 2 and "404" in others.stderr and others.stdout == ""
    target = tmp_path / "ledger.xml"
    exported = runner.invoke(
        app, ["export", "--format", "iati", "--charity-id", ledger["a"], "-o", str(target), *auditor]
    )
    assert exported.exit_code == 0, exported.output
    assert iati.validate(target.read_bytes()) == []
    as_csv = runner.invoke(app, ["export", "--format", "csv", "--campaign-id", ledger["books"], *auditor])
    assert as_csv.exit_code == 0 and as_csv.output.count("\n") == 3  # header, created, donation
    refused = runner.invoke(
        app,
        [
            "export",
            "--format",
            "csv",
            "--charity-id",
            ledger["b"],
            "--api",
            service.base,
            "--key",
            ledger["a_key"],
        ],
    )
    assert refused.exit_code == 2 and "404" in refused.output

    with service.runtime.engine.begin() as connection:
        connection.execute(
            text("UPDATE campaigns SET received = received + 5 WHERE campaign_id = :c"),
            {"c": ids.to_hex(ledger["books"])},
        )
    dirty = runner.invoke(app, ["reconcile", *auditor])
    assert dirty.exit_code == 1, dirty.output
    assert "DIFFERENCE" in dirty.stdout and "received" in dirty.stdout


def test_reconciliation_on_the_embedded_chain(embedded_service: Service) -> None:
    """The embedded eth-tester chain has no HTTP endpoint: logs and view calls go through
    the web3 provider instead of raw JSON-RPC batches."""
    service = embedded_service
    charity, key = service.charity()
    campaign = service.campaign(charity, key)
    donation = service.donate(campaign, key, 2_500)
    wait_for_mirror(service)
    auditor = _ok(service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}))["key"]
    clean = reconciled(service, auditor)
    assert clean["clean"] is True, clean["differences"]
    assert clean["views_checked"] == {"campaigns": 1, "donations": 1, "disbursements": 0}
    with service.runtime.engine.begin() as connection:
        connection.execute(
            text("UPDATE donations SET amount = 2400 WHERE donation_id = :d"),
            {"d": ids.to_hex(donation["id"])},
        )
    dirty = reconciled(service, auditor, campaign_id=campaign)
    fields = {(d["check"], d.get("field")) for d in dirty["differences"]}
    assert ("records", "amount") in fields and ("view", "amount") in fields
