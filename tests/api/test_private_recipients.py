"""Disbursements to private persons over HTTP: only `private:0x<keccak256(secret ||
details)>` goes on chain; the answer gives the secret once; the person proves the payment
with it; public JSON, pages and exports say "a private person (identity withheld)"; and
the details themselves are in no answer, page, log line, stored row or file."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_utils import keccak
from lxml import etree
from sqlalchemy import MetaData, func, select

from ledger_api.core import ids, reference
from ledger_api.core.hexes import unhex
from ledger_api.core.idempotency import Fingerprint
from ledger_api.core.models import ChainTransaction, IdempotencyRecord
from tests.api.checks import problem, wait_for_mirror
from tests.api.service import ADMIN_KEY, Service, serve, settings_for
from tests.api.test_self_custody import own_key_charity
from tests.verify.conftest import LEDGER

NAME = "张伟"
ID_NUMBER = "110101199003071234"
DETAILS = f"{NAME}  {ID_NUMBER}\u3000"  # as typed: doubled and ideographic spaces
NORMALISED = f"{NAME} {ID_NUMBER}"
NEEDLES = [NAME, ID_NUMBER, NORMALISED, DETAILS]


class AllLogs(logging.Handler):
    """Every record of every logger, whatever its level or propagation."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(f"{record.getMessage()} {vars(record)!r}" for record in self.records)


@pytest.fixture
def logs() -> Iterator[AllLogs]:
    handler = AllLogs()
    loggers = [
        logging.getLogger(),
        *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict)),
    ]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Service, Path]]:
    """The service on the embedded chain and SQLite, uvicorn's access log on, and the
    folder holding all its state (database, keystore, evidence)."""
    settings = settings_for(tmp_path, None, f"sqlite:///{tmp_path / 'ledger.db'}")
    with serve(settings, log_level="debug") as running:
        yield running, tmp_path


def _funded(service: Service) -> tuple[str, str, str]:
    charity, key = service.charity("Village Relief")
    campaign = service.campaign(charity, key)
    service.donate(campaign, key, 50_000)
    wait_for_mirror(service)
    return charity, key, campaign


def _onchain_recipient(service: Service, disbursement: str) -> str:
    """The recipient of the disbursement's DisbursementRecorded event, read from the chain."""
    (event,) = service.contract.events.DisbursementRecorded.get_logs(
        from_block=0, argument_filters={"disbursementId": ids.to_bytes32(disbursement, "disbursement")}
    )
    return str(event["args"]["recipient"])


def _private(campaign: str, details: str = DETAILS, **extra: Any) -> dict[str, Any]:
    return {
        "campaign_id": campaign,
        "amount": 10_000,
        "recipient_person": {"reference": details},
        "purpose": "winter relief",
        **extra,
    }


def _nowhere_stored(service: Service, state: Path) -> None:
    """Every column of every row of every table, and every file of the service's state."""
    raw = [needle.encode("utf-8") for needle in NEEDLES]
    metadata = MetaData()
    metadata.reflect(service.runtime.engine)
    rows = 0
    with service.runtime.engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                rows += 1
                for value in row:
                    if isinstance(value, str):
                        assert not any(n in value for n in NEEDLES), (table.name, value[:80])
                    elif isinstance(value, bytes | bytearray | memoryview):
                        assert not any(n in bytes(value) for n in raw), table.name
    assert len(metadata.sorted_tables) > 5 and rows > 10  # the tables were read
    files = [path for path in state.rglob("*") if path.is_file()]
    assert any(path.suffix == ".db" for path in files)
    for path in files:
        data = path.read_bytes()
        assert not any(n in data for n in raw), path


def test_a_private_recipient_is_only_a_commitment_everywhere(
    served: tuple[Service, Path], logs: AllLogs
) -> None:
    service, state = served
    _charity, key, campaign = _funded(service)
    responses: list[httpx.Response] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        responses.append(response)

    service.client.event_hooks["response"].append(keep)
    # Recorded (with an Idempotency-Key, so the idempotency store holds the request too).
    sent = json.dumps(_private(campaign)).encode()
    headers = {"Idempotency-Key": "p-1", "Content-Type": "application/json"}
    created = service.post("/v1/disbursements", key, content=sent, headers=headers)
    assert created.status_code == 201, created.text
    answer = created.json()
    secret = answer["recipient_secret"]
    commitment = keccak(unhex(secret) + NORMALISED.encode("utf-8"))
    assert answer["recipient"] == "private:0x" + commitment.hex()
    again = service.post("/v1/disbursements", key, content=sent, headers=headers)
    assert again.headers.get("idempotent-replayed") == "true" and again.json()["id"] == answer["id"]
    disbursement = answer["id"]
    wait_for_mirror(service)
    # The idempotency store keeps the request's fingerprint keyed with the caller's key: a
    # plain hash of a body this short could be reversed by trying names and ID numbers.
    with service.runtime.engine.connect() as connection:
        (stored,) = connection.execute(
            select(IdempotencyRecord.request_hash).where(IdempotencyRecord.key == "p-1")
        ).scalars()
    keyed, plain = (
        Fingerprint("POST", "/v1/disbursements", b"", b"application/json", k) for k in (key.encode(), b"")
    )
    keyed.update(sent)
    plain.update(sent)
    assert stored == keyed.hexdigest() != plain.hexdigest()
    assert stored != hashlib.sha256(b"POST\n/v1/disbursements\n\n" + sent).hexdigest()

    # On chain: exactly the commitment recomputed from the details and the secret.
    assert _onchain_recipient(service, disbursement) == "private:0x" + commitment.hex()

    # The recipient proves it: the secret and the details (spaced any way) match; wrong ones do not.
    proof = f"/v1/disbursements/{disbursement}/recipient-proof"
    for details, given, matches in (
        (DETAILS, secret, True),
        (f" {NAME} {ID_NUMBER} ", secret, True),
        (f"{NAME} {ID_NUMBER[:-1]}5", secret, False),
        (DETAILS, "0x" + "00" * 32, False),
        (DETAILS, secret[:-1] + ("0" if secret[-1] != "0" else "1"), False),
    ):
        checked = service.post(proof, json={"reference": details, "secret": given})
        assert checked.status_code == 200, checked.text
        assert checked.json() == {"id": disbursement, "matches": matches}
    problem(service.post(proof, json={"reference": DETAILS, "secret": "0x12"}), 422, "invalid-request")
    problem(service.post(proof, json={"reference": " \u3000 ", "secret": secret}), 422, "invalid-request")
    unknown = ids.new("disbursement")
    problem(
        service.post(
            f"/v1/disbursements/{unknown}/recipient-proof", json={"reference": DETAILS, "secret": secret}
        ),
        404,
        "not-found",
    )

    # Public JSON and pages say "a private person"; exports show the commitment.
    public = service.get(f"/v1/disbursements/{disbursement}").json()
    assert public["recipient"] == answer["recipient"]
    assert public["recipient_label"] == "a private person (identity withheld)"
    listed = service.get(f"/v1/campaigns/{campaign}/disbursements").json()["items"]
    assert [d["recipient_label"] for d in listed] == ["a private person (identity withheld)"]
    for language, said in (
        ("en", "a private person (identity withheld)"),
        ("zh-CN", "私人受助者\uff08身份保密\uff09"),
    ):
        for page in (f"/disbursements/{disbursement}", f"/campaigns/{campaign}"):
            shown = service.get(page, headers={"Accept-Language": language})
            assert shown.status_code == 200 and said in shown.text, (page, language)
    # The page's check, in both languages: the form, a match, no match, a malformed secret.
    page = f"/disbursements/{disbursement}/recipient-proof"
    for language, yes, no in (("en", "They match", "They do not match"), ("zh-CN", "相符", "不符")):
        said = {"Accept-Language": language}
        assert 'data-testid="recipient-proof-form"' in service.get(page[: -len("/recipient-proof")]).text
        form = {"recipient_secret": secret, "recipient_reference": DETAILS}
        shown = service.post(page, data=form, headers=said)
        assert shown.status_code == 200 and yes in shown.text and no not in shown.text, shown.text
        assert shown.headers["cache-control"] == "no-store"
        wrong = service.post(page, data={**form, "recipient_reference": NAME}, headers=said)
        assert wrong.status_code == 200 and no in wrong.text
        bad = service.post(page, data={**form, "recipient_secret": "0x12"}, headers=said)
        assert bad.status_code == 422
    auditor = service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}).json()["key"]
    exported = service.get("/v1/audit/export", auditor, params={"format": "csv"}).text
    rows = [row for row in csv.DictReader(io.StringIO(exported)) if row.get("recipient")]
    assert [row["recipient"] for row in rows] == [answer["recipient"]]
    iati = etree.fromstring(service.get("/v1/audit/export", auditor, params={"format": "iati"}).content)
    (paid,) = [t for t in iati.iter("transaction") if t.find("transaction-type").get("code") == "3"]
    receiver = paid.find("receiver-org")
    assert receiver is not None and len(receiver) == 0 and not receiver.attrib  # no name, no ref
    assert answer["recipient"] in paid.findtext("description/narrative", "")
    service.get("/v1/audit/export", auditor, params={"format": "json"})
    service.get("/v1/audit/trail", auditor)
    service.get("/v1/audit/anomalies", auditor)

    # Refused requests do not echo the details either.
    for bad in (
        _private(campaign, amount=0),
        _private(campaign, recipient="CN-USCC-1"),
        _private(campaign, details=DETAILS + "\u0007"),
        _private(campaign, details=DETAILS * 20),
        _private(campaign, unknown_field=DETAILS),
        {**_private(campaign), "recipient_person": {"reference": DETAILS, "extra": DETAILS}},
    ):
        refused = service.post("/v1/disbursements", key, json=bad, headers={"Idempotency-Key": "p-2"})
        assert refused.status_code == 422, refused.text
    service.client.event_hooks["response"].remove(keep)

    # Nowhere: no answer, page or log line; no stored row or file.
    assert len(responses) > 20
    for response in responses:
        for needle in NEEDLES:
            assert needle not in response.text, (response.request.url, needle)
    logged = logs.text()
    assert f"/v1/disbursements/{disbursement}/recipient-proof" in logged  # the capture works
    for needle in NEEDLES:
        assert needle not in logged, needle
    _nowhere_stored(service, state)


@pytest.mark.parametrize(
    "recipient",
    [
        "private:0x" + "ab" * 32,
        "PRIVATE:someone",
        "  private:x",
        "".join(chr(ord(c) + 0xFEE0) for c in "private") + ":0x" + "ab" * 32,
    ],
)
def test_a_public_recipient_that_looks_private_is_refused(embedded_service: Service, recipient: str) -> None:
    service = embedded_service
    _charity, key, campaign = _funded(service)
    with service.runtime.engine.connect() as connection:
        before = connection.execute(select(func.count()).select_from(ChainTransaction)).scalar_one()
    body = {"campaign_id": campaign, "amount": 100, "recipient": recipient, "purpose": "x"}
    refused = problem(service.post("/v1/disbursements", key, json=body), 422, "invalid-request")
    assert "private" in str(refused)
    for neither_or_both in (
        {"campaign_id": campaign, "amount": 100, "purpose": "x"},
        {**_private(campaign), "recipient": "CN-USCC-1"},
    ):
        problem(service.post("/v1/disbursements", key, json=neither_or_both), 422, "invalid-request")
    with service.runtime.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ChainTransaction)).scalar_one() == before
    # A public recipient has nothing to prove.
    public = service.post(
        "/v1/disbursements",
        key,
        json={"campaign_id": campaign, "amount": 100, "recipient": "CN-USCC-1", "purpose": "x"},
    )
    assert public.status_code == 201, public.text
    assert "recipient_secret" not in public.json()
    wait_for_mirror(service)
    proof = service.post(
        f"/v1/disbursements/{public.json()['id']}/recipient-proof",
        json={"reference": "x", "secret": "0x" + "00" * 32},
    )
    problem(proof, 422, "invalid-request")
    assert service.get(f"/v1/disbursements/{public.json()['id']}").json()["recipient_label"] == "CN-USCC-1"


def test_a_self_custody_charity_prepares_and_signs_a_private_disbursement(embedded_service: Service) -> None:
    service = embedded_service
    charity = own_key_charity(service.base)
    campaign = charity.campaign()
    charity.write("/v1/donations", {"campaign_id": campaign, "amount": 50_000, "donor_reference": "d"})
    prepared = charity.prepare("/v1/disbursements", _private(campaign))
    records = prepared["records"]
    assert NAME not in str(prepared) and ID_NUMBER not in str(prepared)
    expected = reference.private_recipient(unhex(records["recipient_secret"]), DETAILS)
    assert records["recipient"] == expected
    relayed = charity.relay(charity.sign(prepared))
    assert relayed.status_code == 201, relayed.text
    wait_for_mirror(service)
    assert _onchain_recipient(service, records["id"]) == expected
    checked = service.post(
        f"/v1/disbursements/{records['id']}/recipient-proof",
        json={"reference": NORMALISED, "secret": records["recipient_secret"]},
    )
    assert checked.json()["matches"] is True
    # `ledger verify` checks it against the chain too, and a wrong secret fails naming the recipient.
    for given, code in ((records["recipient_secret"], 0), ("0x" + "11" * 32, 1)):
        command = [str(LEDGER), "verify", records["id"], "--secret", given, "--reference", DETAILS]
        run = subprocess.run(
            [*command, "--rpc-url", f"{service.base}/rpc", "--api", service.base],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert run.returncode == code, run.stdout + run.stderr
        status = "ok" if code == 0 else "MISMATCH"
        assert re.search(rf"^{status} +disbursement DB-[\w-]+ recipient", run.stdout, re.MULTILINE), (
            run.stdout
        )
        assert NAME not in run.stdout and ID_NUMBER not in run.stdout


@pytest.mark.anvil
def test_a_private_recipient_on_each_database(service: Service) -> None:
    _charity, key, campaign = _funded(service)
    created = service.post("/v1/disbursements", key, json=_private(campaign))
    assert created.status_code == 201, created.text
    answer = created.json()
    wait_for_mirror(service)
    assert _onchain_recipient(service, answer["id"]) == answer["recipient"]
    proof = f"/v1/disbursements/{answer['id']}/recipient-proof"
    for secret, matches in ((answer["recipient_secret"], True), ("0x" + "22" * 32, False)):
        checked = service.post(proof, json={"reference": DETAILS, "secret": secret})
        assert checked.json() == {"id": answer["id"], "matches": matches}
    assert (
        service.get(f"/v1/disbursements/{answer['id']}").json()["recipient_label"] == reference.PRIVATE_PERSON
    )
