"""Evidence with a visibility (issue 15): restricted originals sealed at rest and served
only to the owning charity and in-scope auditors (each read on the access log), redacted
copies linked on chain, withdrawals that erase the bytes and keep the anchor, and files
served with their name and type, never anything scriptable inline. The real service over
HTTP on the embedded chain, read back from the chain itself where the contract vouches."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from ledger_api.audit.reconcile import reconcile
from ledger_api.audit.scope import Scope
from ledger_api.core import documents, ids
from ledger_api.core.models import AccessLogRow, EvidenceFile
from tests.api.checks import wait_for_mirror
from tests.api.service import ADMIN_KEY, Service

INVOICE = b"%PDF-1.7\n% invoice 2026-311: rice for 40 households: Wang Fang 110101199003071234\n"
REDACTED = b"%PDF-1.7\n% invoice 2026-311: rice for 40 households: [redacted]\n"
PHOTO = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
HTML = b"<!doctype html><script>alert(document.cookie)</script>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _disburse(service: Service, key: str, campaign_id: str, amount: int) -> str:
    answer = service.post(
        "/v1/disbursements",
        key,
        json={"campaign_id": campaign_id, "amount": amount, "recipient": "CN-USCC-9111", "purpose": "rice"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _upload(
    service: Service, key: str, disbursement: str, files: list[tuple[str, bytes]], **data: str
) -> Any:
    return service.post(
        f"/v1/disbursements/{disbursement}/evidence",
        key,
        files=[("files", (name, content, "application/octet-stream")) for name, content in files],
        data=data,
    )


def _auditor(service: Service, charities: list[str] | None = None) -> str:
    body: dict[str, Any] = {"role": "auditor"}
    if charities is not None:
        body["charities"] = charities
    issued = service.post("/v1/keys", ADMIN_KEY, json=body)
    assert issued.status_code == 201, issued.text
    return str(issued.json()["key"])


def _log_rows(service: Service) -> list[Any]:
    with service.runtime.engine.connect() as connection:
        return list(connection.execute(select(AccessLogRow.__table__).order_by(AccessLogRow.seq)))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.api.service import serve, settings_for

    tmp = tmp_path_factory.mktemp("evidence-privacy")
    with serve(settings_for(tmp, None, f"sqlite:///{tmp / 'ledger.db'}")) as service:
        charity, key = service.charity("Sunrise Children Fund")
        other_charity, other_key = service.charity("Clear Water")
        campaign = service.campaign(charity, key)
        service.donate(campaign, key, 10_000)
        yield service, charity, key, other_charity, other_key, campaign


def test_a_restricted_original_is_sealed_and_read_only_by_its_charity_and_auditors(world: Any) -> None:
    service, charity, key, other_charity, other_key, campaign = world
    paid = _disburse(service, key, campaign, 1_000)
    uploaded = _upload(service, key, paid, [("发票 Wang.pdf", INVOICE)], visibility="restricted")
    assert uploaded.status_code == 201, uploaded.text
    [document] = uploaded.json()["documents"]
    sha = _sha(INVOICE)
    assert document["visibility"] == "restricted" and document["media_type"] == "application/pdf"
    # Sealed at rest: no plain copy, and the sealed file does not contain the plaintext.
    root: Path = service.runtime.settings.evidence_path
    assert not (root / sha[:2] / sha).exists()
    sealed = (root / sha[:2] / f"{sha}.sealed").read_bytes()
    assert b"Wang Fang" not in sealed and b"110101199003071234" not in sealed
    # The hash is anchored on chain all the same.
    assert service.contract.functions.isEvidenceAnchored(ids.to_bytes32(paid), bytes.fromhex(sha)).call()
    wait_for_mirror(service)
    url = f"/v1/evidence/{sha}"
    before = len(_log_rows(service))

    anonymous = service.get(url)
    assert anonymous.status_code == 404
    body = anonymous.json()
    assert body["type"].endswith("evidence-restricted")
    assert body["visibility"] == "restricted" and body["stored"] is True
    assert [a["disbursement_id"] for a in body["anchored"]] == [paid]
    assert body["anchored"][0]["proof"]["recorded_at"]
    assert "Wang" not in anonymous.text and "发票" not in anonymous.text
    assert len(_log_rows(service)) == before  # the anonymous public leaves no row

    owner = service.get(url, key)
    assert owner.status_code == 200 and owner.content == INVOICE
    assert owner.headers["content-type"] == "application/pdf"
    assert owner.headers["content-disposition"].startswith("inline;")
    assert "filename*=UTF-8''%E5%8F%91%E7%A5%A8%20Wang.pdf" in owner.headers["content-disposition"]
    assert owner.headers["x-content-type-options"] == "nosniff"
    assert "no-store" in owner.headers["cache-control"]

    in_scope = service.get(url, _auditor(service, [charity]))
    assert in_scope.status_code == 200 and in_scope.content == INVOICE
    full = service.get(url, _auditor(service))
    assert full.status_code == 200 and full.content == INVOICE
    out_of_scope = service.get(url, _auditor(service, [other_charity]))
    assert out_of_scope.status_code == 404 and out_of_scope.content != INVOICE
    another_charity = service.get(url, other_key)
    assert another_charity.status_code == 404 and "Wang" not in another_charity.text

    rows = _log_rows(service)[before:]
    assert [(r.role, r.outcome, r.status, r.route) for r in rows] == [
        ("charity", "served", 200, "/v1/evidence/{sha256}"),
        ("auditor", "served", 200, "/v1/evidence/{sha256}"),
        ("auditor", "served", 200, "/v1/evidence/{sha256}"),
        ("auditor", "refused", 404, "/v1/evidence/{sha256}"),
        ("charity", "refused", 404, "/v1/evidence/{sha256}"),
    ]
    assert all(r.charity_id == charity for r in rows)
    assert [json.loads(r.record_ids) for r in rows if r.outcome == "served"] == [[sha]] * 3

    # The public pages and JSON say a document exists, and do not link to it or name it.
    trace = service.get(f"/v1/disbursements/{paid}").json()
    [shown] = trace["evidence"]
    assert shown["visibility"] == "restricted" and shown["document"] is None and shown["name"] is None
    page = service.get(f"/disbursements/{paid}")
    assert page.status_code == 200 and "Wang" not in page.text and f"/v1/evidence/{sha}" not in page.text
    assert "the original is held for auditors (it names people)" in page.text
    zh = service.get(f"/disbursements/{paid}", headers={"Accept-Language": "zh-CN"})
    assert "原件含个人信息，仅供审计查阅" in zh.text and "Wang" not in zh.text  # noqa: RUF001

    # A document keeps its visibility: the same bytes cannot be published by uploading again.
    again = _upload(service, key, paid, [("public.pdf", INVOICE)], visibility="public")
    assert again.status_code == 409 and "redacted copy" in again.json()["detail"]


def test_a_redacted_copy_is_public_and_its_link_checks_out_on_chain(world: Any) -> None:
    service, charity, key, _, other_key, campaign = world
    paid = _disburse(service, key, campaign, 500)
    restricted = _upload(service, key, paid, [("list.pdf", INVOICE)], visibility="restricted")
    assert restricted.status_code == 201, restricted.text
    original, copy = _sha(INVOICE), _sha(REDACTED)
    # The restricted original may already be stored for another disbursement: anchor it here.
    anchored = service.contract.functions.isEvidenceAnchored(ids.to_bytes32(paid), bytes.fromhex(original))
    if not anchored.call():
        pytest.fail("the original was not anchored on this disbursement")
    url = f"/v1/disbursements/{paid}/evidence/{original}/redacted-copy"
    stranger = service.post(url, other_key, files={"file": ("copy.pdf", REDACTED, "application/pdf")})
    assert stranger.status_code == 404
    linked = service.post(url, key, files={"file": ("invoice (redacted).pdf", REDACTED, "application/pdf")})
    assert linked.status_code == 201, linked.text
    assert linked.json()["redacted_copy"]["sha256"] == copy and linked.json()["original_sha256"] == original
    # The chain itself says the copy belongs to the original.
    status = service.contract.functions.evidenceStatus(ids.to_bytes32(paid), bytes.fromhex(copy)).call()
    assert tuple(status) == (True, False, bytes.fromhex(original))
    wait_for_mirror(service)
    public = service.get(f"/v1/evidence/{copy}")
    assert public.status_code == 200 and public.content == REDACTED
    assert public.headers["content-type"] == "application/pdf"
    assert "invoice%20%28redacted%29.pdf" in public.headers["content-disposition"]
    shown = {e["sha256"]: e for e in service.get(f"/v1/disbursements/{paid}").json()["evidence"]}
    assert shown[copy]["redacted_copy_of"]["original_sha256"] == original
    assert shown[copy]["redacted_copy_of"]["proof"]["tx_hash"] == linked.json()["transaction"]["tx_hash"]
    assert [c["copy_sha256"] for c in shown[original]["redacted_copies"]] == [copy]
    # The link is in the charity's audit trail, with the disbursement's readable ID.
    trail = service.get(
        "/v1/audit/trail", key, params={"kind": "redacted_copy_linked", "charity_id": charity}
    ).json()
    [entry] = [e for e in trail["items"] if e["data"]["disbursement_id"] == paid]
    assert entry["data"]["original_hash"] == "0x" + original
    assert entry["data"]["copy_hash"] == "0x" + copy
    assert entry["proof"]["tx_hash"] == linked.json()["transaction"]["tx_hash"]
    page = service.get(f"/disbursements/{paid}").text
    assert f'<a href="/v1/evidence/{copy}">invoice (redacted).pdf</a>' in page
    assert "(redacted copy; the original is held for auditors)" in page
    # The copy cannot be linked twice, nor the original to itself.
    twice = service.post(url, key, files={"file": ("again.pdf", REDACTED, "application/pdf")})
    assert twice.status_code == 409
    itself = service.post(url, key, files={"file": ("same.pdf", INVOICE, "application/pdf")})
    assert itself.status_code == 422


def test_a_withdrawal_erases_the_bytes_keeps_the_anchor_and_reconciles(world: Any) -> None:
    service, charity, key, _, other_key, campaign = world
    paid = _disburse(service, key, campaign, 300)
    document = b"%PDF-1.7\n% distribution list with ID numbers, uploaded by mistake\n"
    sha = _sha(document)
    assert _upload(service, key, paid, [("list.pdf", document)]).status_code == 201
    root: Path = service.runtime.settings.evidence_path
    assert (root / sha[:2] / sha).is_file()
    url = f"/v1/disbursements/{paid}/evidence/{sha}/withdrawal"
    for body in ({"reason": ""}, {"reason": "x" * 300}, {"reason": "a\x1b[31mb"}, {}):
        refused = service.post(url, key, json=body)
        assert refused.status_code == 422, (body, refused.text)
    assert service.post(url, other_key, json={"reason": "mine"}).status_code == 404
    assert service.post(url, _auditor(service), json={"reason": "x"}).status_code == 403
    assert (root / sha[:2] / sha).is_file()  # refused attempts changed nothing

    withdrawn = service.post(url, key, json={"reason": "PIPL erasure: names of recipients"})
    assert withdrawn.status_code == 201, withdrawn.text
    assert withdrawn.json()["erased"] is True
    assert not (root / sha[:2] / sha).exists() and not (root / sha[:2] / f"{sha}.sealed").exists()
    status = service.contract.functions.evidenceStatus(ids.to_bytes32(paid), bytes.fromhex(sha)).call()
    assert tuple(status)[:2] == (True, True)  # anchored still, and withdrawn
    wait_for_mirror(service)

    gone = service.get(f"/v1/evidence/{sha}")
    assert gone.status_code == 410
    facts = gone.json()
    assert facts["anchored"][0]["disbursement_id"] == paid
    [withdrawal] = facts["withdrawn"]
    assert withdrawal["reason"] == "PIPL erasure: names of recipients"
    assert withdrawal["proof"]["tx_hash"] == withdrawn.json()["transaction"]["tx_hash"]
    assert withdrawal["proof"]["recorded_at"]
    shown = {e["sha256"]: e for e in service.get(f"/v1/disbursements/{paid}").json()["evidence"]}
    assert shown[sha]["document"] is None and shown[sha]["withdrawn"]["reason"].startswith("PIPL")
    page = service.get(f"/disbursements/{paid}").text
    assert "was withdrawn by the charity (PIPL erasure: names of recipients)" in page
    assert f"/v1/evidence/{sha}" not in page
    trail = service.get("/v1/audit/trail", key, params={"charity_id": charity}).json()
    names = [item["event"] if "event" in item else item.get("name") for item in trail["items"]]
    assert "EvidenceWithdrawn" in names and "EvidenceAnchored" in names
    again = service.post(url, key, json={"reason": "again"})
    assert again.status_code == 409
    with service.runtime.engine.connect() as connection:
        described = connection.execute(select(EvidenceFile.__table__).where(EvidenceFile.sha256 == sha)).one()
    assert described.withdrawn_at is not None
    result = reconcile(service.runtime.auditing, Scope())
    assert result["clean"] is True, result


@pytest.mark.parametrize(
    ("name", "content", "shown_as", "disposition"),
    [
        ("page.html", HTML, "application/octet-stream", "attachment"),
        ("drawing.svg", SVG, "application/octet-stream", "attachment"),
        # The bytes and the name must agree: a PDF named .html is saved as .html, then opens as HTML.
        ("invoice.html", b"%PDF-1.7 <script>alert(1)</script>", "application/octet-stream", "attachment"),
        ("invoice.pdf", b"<html><script>alert(1)</script>", "application/octet-stream", "attachment"),
        ("photo.png", PHOTO, "image/png", "inline"),
        ("scan.pdf", b"%PDF-1.4 scan", "application/pdf", "inline"),
    ],
)
def test_files_are_served_by_what_their_bytes_are_never_scriptable_inline(
    world: Any, name: str, content: bytes, shown_as: str, disposition: str
) -> None:
    service, _, key, _, _, campaign = world
    paid = _disburse(service, key, campaign, 1)
    unique = content + name.encode()  # each case its own document
    assert _upload(service, key, paid, [(name, unique)]).status_code == 201
    served = service.get(f"/v1/evidence/{_sha(unique)}")
    assert served.status_code == 200 and served.content == unique
    assert served.headers["content-type"] == shown_as
    assert served.headers["content-disposition"].startswith(f"{disposition};")
    assert served.headers["x-content-type-options"] == "nosniff"
    if shown_as != "application/pdf":
        assert "sandbox" in served.headers["content-security-policy"]
    assert "default-src 'none'" in served.headers["content-security-policy"]


def test_bad_visibility_and_names_are_refused_or_cleaned(world: Any) -> None:
    service, _, key, _, _, campaign = world
    paid = _disburse(service, key, campaign, 1)
    refused = _upload(service, key, paid, [("a.pdf", b"%PDF-1 x")], visibility="secret")
    assert refused.status_code == 422
    tricky = b"%PDF-1 tricky name"
    stored = _upload(service, key, paid, [("../../etc/\u202eevil\x00.pdf", tricky)])
    assert stored.status_code == 201, stored.text
    name = stored.json()["documents"][0]["filename"]
    assert "/" not in name and "\u202e" not in name and "\x00" not in name and name.endswith(".pdf")
    with service.runtime.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(EvidenceFile)).scalar_one() >= 1


def test_rotating_the_key_reseals_every_restricted_document_and_they_still_open(world: Any) -> None:
    service, _, key, _, _, campaign = world
    paid = _disburse(service, key, campaign, 2)
    secret = b"%PDF-1.7 household list for rotation"
    assert (
        _upload(service, key, paid, [("households.pdf", secret)], visibility="restricted").status_code == 201
    )
    sha = _sha(secret)
    settings = service.runtime.settings
    sealed = settings.evidence_path / sha[:2] / f"{sha}.sealed"
    before = sealed.read_bytes()
    new_key = base64.b64encode(os.urandom(32)).decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env |= {"LEDGER_EVIDENCE_PATH": str(settings.evidence_path), "LEDGER_EVIDENCE_KEYS": f"k2026:{new_key}"}
    url = settings.database_url
    rotate = [sys.executable, "-m", "ledger_api.cli", "evidence", "rotate-keys", "--database-url", url]
    done = subprocess.run(rotate, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("re-sealed ") and not done.stdout.startswith("re-sealed 0 ")
    after = sealed.read_bytes()
    assert after != before and secret not in after
    with service.runtime.engine.connect() as connection:
        key_ids = set(
            connection.execute(
                select(EvidenceFile.key_id).where(
                    EvidenceFile.visibility == "restricted", EvidenceFile.withdrawn_at.is_(None)
                )
            ).scalars()
        )
    assert key_ids == {"k2026"}
    rotated = settings.model_copy(update={"evidence_keys": SecretStr(f"k2026:{new_key}")})
    assert documents.KeyRing.of(rotated).open("k2026", sha, after) == secret
    # The running service was not given the new key: it says so, and serves nothing.
    missing = service.get(f"/v1/evidence/{sha}", key)
    assert missing.status_code == 503 and "LEDGER_EVIDENCE_KEYS" in missing.json()["detail"]
    again = subprocess.run(rotate, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert again.stdout.startswith("re-sealed 0 "), again.stdout
    bad = subprocess.run(
        rotate,
        env=env | {"LEDGER_EVIDENCE_KEYS": "k:not-base64!"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "not base64" in bad.stderr and "Traceback" not in bad.stderr
