"""`ledger dev --demo` loads a small, realistic ledger through the real write path."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from indexer import models as m
from ledger_api.core import ids
from ledger_api.demo import load_demo
from ledger_api.imports import reading
from ledger_api.imports.guess import guess
from ledger_api.imports.sample import MAPPING
from tests.api.processes import DevProcess, poll
from tests.api.service import Service


def test_the_demo_loads_charities_campaigns_donations_and_evidenced_disbursements(
    embedded_service: Service,
) -> None:
    runtime = embedded_service.runtime
    lines: list[str] = []
    made = load_demo(runtime, echo=lines.append)
    assert len(made["charities"]) == 2
    donations = made["donations"]
    assert len(donations) >= 36 and len({d["id"] for d in donations}) == len(donations)
    # Every donation is on chain with the amount the demo chose.
    for donation in donations:
        view = embedded_service.contract.functions.donationOf(ids.to_bytes32(donation["id"])).call()
        assert view[1] == donation["amount"]
    runtime.indexer.indexer.sync()  # type: ignore[union-attr]
    # The secret and the reference the demo prints for each sample prove it, as printed.
    for donation, _ in made["samples"]:
        printed = f"donor reference (typed with the secret to prove it): {donation['donor_reference']}"
        assert any(line.endswith(printed) for line in lines)
        proof = {"receipt_secret": donation["receipt_secret"], "donor_reference": donation["donor_reference"]}
        owned = embedded_service.post(f"/v1/donations/{donation['id']}/ownership", json=proof)
        assert owned.json()["matches"] is True, owned.text
    with runtime.engine.connect() as connection:
        counts = {
            model.__tablename__: connection.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (m.Charity, m.Campaign, m.Donation, m.Disbursement, m.Evidence, m.Refund)
        }
        allocated = connection.execute(select(func.sum(m.Allocation.amount))).scalar_one()
    own = made["self_custody"]
    assert counts == {
        "charities": 3 + 3,  # the third holds its own key; then a foundation, a bureau, a school
        "campaigns": 4 + 3,
        "donations": len(donations) + len(own["donations"]) + 2 + 2,  # 2 to the foundation, 2 grants
        "disbursements": 5 + 4,  # 2 grants, 2 to the supplier (a third waits for its approvals)
        "evidence": 4 + 2,
        "refunds": 1,
    }
    grants = 300_000 + 200_000 + 120_000 + 50_000
    assert allocated == 180_000 + 95_000 + 60_000 + 250_000 + donations_of_wells_last_half(made) + grants
    # The self-custody charity's records were signed by its own key, kept outside the
    # platform's keystore, in the file the demo names with its passphrase.
    assert own["operator"] not in runtime.keystore.addresses()
    assert any(own["key_file"] in line for line in lines) and any(own["passphrase"] in line for line in lines)
    assert any("ledger donate --campaign-id" in line and "--keystore" in line for line in lines)
    for donation in own["donations"]:
        view = embedded_service.contract.functions.donationOf(ids.to_bytes32(donation["id"])).call()
        assert view[1] == donation["amount"]
        assert embedded_service.get(f"/v1/donations/{donation['id']}").json()["signed_by"] == {
            "by": "charity",
            "held_by_charity": True,
        }
    # The charity keys it prints work.
    key = made["charities"][0]["key"]
    assert any(key in line for line in lines)
    campaign = made["charities"][0]["campaigns"][0]
    assert embedded_service.donate(campaign, key, 1_000)["amount"] == 1_000
    # The bank statement it writes for the console's import previews as 30 gifts to record,
    # read with the headings the console recognises by itself.
    statement = made["statement"]
    assert any(str(statement) in line for line in lines)
    assert guess(reading.read(statement.read_bytes()).header) == {
        field: heading for field, heading in MAPPING.items() if field != "refund_of"
    }
    preview = embedded_service.client.post(
        "/v1/imports",
        headers={"Authorization": f"Bearer {key}"},
        files={"file": (statement.name, statement.read_bytes(), "text/csv")},
        data={"mapping": json.dumps({**MAPPING, "campaign_id": campaign})},
    )
    assert preview.status_code == 201, preview.text
    assert preview.json()["verdicts"] == {"record": 30}
    organisations(embedded_service, made["organisations"], lines)


def organisations(service: Service, orgs: dict[str, Any], lines: list[str]) -> None:
    """The foundation's donor follows the money three organisations down: the bureau's
    payout approved by its two approvers, the supplier's confirmation; one proposal waits
    for the approvers the demo prints, one payout for the confirmation it prints how to
    make."""
    donor = orgs["donor"]
    trace = service.get(f"/v1/donations/{donor['id']}", params={"depth": 3}).json()
    assert [len(h["disbursements"]) for h in trace["hops"]] == [1, 1, 2]
    bureau_payout = trace["hops"][1]["disbursements"][0]
    assert [v["account"] for v in bureau_payout["approval"]["approvals"]] == [
        a["account"] for a in orgs["approvers"]
    ]
    receipts = {d["id"]: d["receipt"]["state"] for d in trace["hops"][2]["disbursements"]}
    assert receipts == {
        next(k for k in receipts if k != orgs["unconfirmed"]["id"]): "full",
        orgs["unconfirmed"]["id"]: "none",
    }
    assert service.get(f"/v1/proposals/{orgs['waiting_proposal']}").json()["status"] == "pending"
    waiting = service.get("/v1/proposals", orgs["approvers"][0]["key"], params={"waiting_for": "me"}).json()
    assert [p["id"] for p in waiting["items"]] == [orgs["waiting_proposal"]]
    printed = "\n".join(lines)
    assert f"{donor['id']}?depth=3" in printed and f"ledger verify {donor['id']} --depth 3" in printed
    assert all(a["key"] in printed for a in orgs["approvers"])
    assert orgs["supplier"]["key_file"] in printed and orgs["supplier"]["passphrase"] in printed


def donations_of_wells_last_half(made: dict[str, object]) -> int:
    wells = made["charities"][1]["campaigns"][0]  # type: ignore[index]
    last = [d for d in made["donations"] if d["campaign_id"] == wells][-1]  # type: ignore[attr-defined]
    return int(last["amount"]) // 2


def test_ledger_dev_demo_prints_addresses_to_open_keys_to_use_and_the_admin_key_last(tmp_path: Path) -> None:
    """`ledger dev --demo` as a process: every address it prints opens as printed (full
    URLs), three receipts to try, charity keys and an auditor key that work, and the admin
    key in a box after everything else it and uvicorn print at startup."""
    env = {
        "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "LEDGER_KEYSTORE_PATH": str(tmp_path / "keystore"),
        "LEDGER_EVIDENCE_PATH": str(tmp_path / "evidence"),
    }
    with DevProcess(env, tmp_path / "dev.log", ("dev", "--demo")) as dev:
        dev.start(wait=False)
        dev.wait_healthy(timeout=300)
        poll(lambda: "╚" in dev.log_path.read_text(), 30, "the box with the admin key")
        lines = [line for line in dev.log_path.read_text().splitlines() if line.strip()]
        base = dev.base

        top = next(i for i, line in enumerate(lines) if line.startswith("╔"))
        bottom = next(i for i, line in enumerate(lines) if line.startswith("╚"))
        box = "\n".join(lines[top : bottom + 1])
        assert f"ledger dev is ready: open {base}" in box
        # The embedded chain over JSON-RPC, at the address in the box.
        [rpc_url] = re.findall(r"chain JSON-RPC \(read-only\): (\S+)", box)
        assert rpc_url == f"{base}/rpc"
        chain = httpx.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).json()
        assert int(chain["result"], 16) == httpx.get(f"{base}/v1/contract").json()["chain_id"]
        # The console, for charity staff, at the address in the box and named by the demo.
        [console] = re.findall(r"charity staff and the registrar: (\S+)", box)
        sign_in = httpx.get(console, follow_redirects=True)
        assert sign_in.status_code == 200 and 'action="/console/sign-in"' in sign_in.text
        assert any(f"sign in at {console}" in line for line in lines[:top])
        admin = re.findall(r"lk_admin_[\w-]+", box)
        assert len(admin) == 1
        before = lines[:top]
        assert any("Uvicorn running on" in line for line in before)
        assert any("demo loaded" in line for line in before)
        assert not any("admin" in line.lower() for line in before)  # nowhere but in the box
        # After it, only the log lines of requests and of the indexer.
        assert all(line.startswith(("INFO:", "20")) for line in lines[bottom + 1 :]), lines[bottom + 1 :]
        issued = httpx.post(
            f"{base}/v1/keys", headers={"Authorization": f"Bearer {admin[0]}"}, json={"role": "auditor"}
        )
        assert issued.status_code == 201, issued.text

        printed = "\n".join(before)
        traces = re.findall(r"trace: +(\S+)", printed)
        receipts = re.findall(r"receipt: +(\S+)", printed)
        assert len(traces) == len(receipts) == 3 and len(set(traces)) == 3
        for trace, receipt in zip(traces, receipts, strict=True):
            assert re.fullmatch(rf"{re.escape(base)}/donations/DN(-[0-9A-Z]{{4}}){{4}}", trace), trace
            assert receipt == f"{trace}/receipt"
            for url in (trace, receipt):
                page = httpx.get(url, headers={"Accept-Language": "en"})
                assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), url
        assert not re.search(r"(?<![\w:/.\d])/donations/", printed)  # no address without its host

        [auditor] = re.findall(r"auditor key [^:]*: (lk_\S+)", printed)
        charity_keys = re.findall(r"charity key \(records for (CH-[\w-]+)\): (lk_\S+)", printed)
        assert len(charity_keys) == 2
        for key, charity_id in [(auditor, None), *((k, c) for c, k in charity_keys)]:
            trail = httpx.get(
                f"{base}/v1/audit/trail",
                headers={"Authorization": f"Bearer {key}"},
                params={"charity_id": charity_id} if charity_id else {},
            )
            assert trail.status_code == 200, trail.text
            assert trail.json()["items"], trail.json()
        assert f"ledger trace {traces[0].rsplit('/', 1)[1]} --api {base}" in printed
