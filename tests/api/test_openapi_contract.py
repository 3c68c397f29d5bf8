"""The OpenAPI document is the contract: schemathesis holds the live service to it.

The real service runs over HTTP (`ledger dev`'s embedded chain and SQLite), with a
charity, a campaign, donations, a refund, a disbursement and its evidence recorded through
the API. Then:

- `st run` fuzzes every operation from /openapi.json (valid and invalid requests), once
  with the admin key and once with a charity key, and checks every answer: no server
  error, a documented status, a documented content type, a body that matches its schema;
- every read is also called with the recorded IDs (which random IDs never hit), and those
  answers are checked the same way, so the 200 bodies of the trace, the campaign, the
  disbursement, the audit views and the rest are held to their schemas too.

Bounded to stay well under three minutes on a busy 2-core machine."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import schemathesis
from lxml import etree
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.service import ADMIN_KEY, Service

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CHECK_NAMES = ",".join(check.__name__ for check in CHECKS)
ST = Path(sys.executable).parent / "st"


def _records(service: Service) -> dict[str, Any]:
    """One of each kind of record, written through the API."""
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    donations = [service.donate(campaign_id, key, amount, f"donor {amount}") for amount in (5_000, 3_000)]
    refund = service.post(
        f"/v1/donations/{donations[1]['id']}/refunds", key, json={"amount": 1_000, "reason": "asked back"}
    )
    assert refund.status_code == 201, refund.text
    paid = service.post(
        "/v1/disbursements",
        key,
        json={"campaign_id": campaign_id, "amount": 4_000, "recipient": "CN-USCC-1", "purpose": "meals"},
    )
    assert paid.status_code == 201, paid.text
    disbursement_id = paid.json()["id"]
    anchored = service.post(
        f"/v1/disbursements/{disbursement_id}/evidence",
        key,
        files=[("files", ("invoice.pdf", io.BytesIO(b"%PDF-1.4 an invoice"), "application/pdf"))],
    )
    assert anchored.status_code == 201, anchored.text
    return {
        "key": key,
        "charity_id": charity_id,
        "campaign_id": campaign_id,
        "donation_id": donations[0]["id"],
        "disbursement_id": disbursement_id,
        "sha256": anchored.json()["documents"][0]["sha256"],
        "transaction_id": paid.json()["transaction"]["id"],
        "receipt_secret": donations[0]["receipt_secret"],
    }


def _fuzz(service: Service, key: str, report: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(ST),
            "run",
            f"{service.base}/openapi.json",
            "--checks",
            CHECK_NAMES,
            "--header",
            f"Authorization: Bearer {key}",
            "--max-examples",
            "8",
            "--workers",
            "1",
            "--seed",
            "12",
            "--max-time",
            "40",
            "--request-timeout",
            "30",
            "--phases",
            "examples,coverage,fuzzing",
            "--suppress-health-check",
            "all",
            "--no-color",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        check=False,
        cwd=report.parent,  # st keeps its state in .schemathesis/ there, not in the checkout
    )


def test_the_live_service_answers_as_its_openapi_document_says(
    embedded_service: Service, tmp_path: Path
) -> None:
    service = embedded_service
    known = _records(service)
    schema = schemathesis.openapi.from_url(f"{service.base}/openapi.json")
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    charity = {"Authorization": f"Bearer {known['key']}"}
    reads: list[tuple[str, dict[str, str], dict[str, Any], dict[str, str]]] = [
        ("/healthz", {}, {}, {}),
        ("/v1/charities", {}, {}, {}),
        ("/v1/charities/{charity_id}", {"charity_id": known["charity_id"]}, {}, {}),
        ("/v1/campaigns", {}, {"charity_id": known["charity_id"]}, {}),
        ("/v1/campaigns/{campaign_id}", {"campaign_id": known["campaign_id"]}, {}, {}),
        ("/v1/campaigns/{campaign_id}/donations", {"campaign_id": known["campaign_id"]}, {"limit": 1}, {}),
        ("/v1/campaigns/{campaign_id}/disbursements", {"campaign_id": known["campaign_id"]}, {}, {}),
        ("/v1/campaigns/{campaign_id}/flows", {"campaign_id": known["campaign_id"]}, {}, {}),
        ("/v1/donations/{donation_id}", {"donation_id": known["donation_id"]}, {}, {}),
        ("/v1/donations/{donation_id}/proof", {"donation_id": known["donation_id"]}, {}, {}),
        ("/v1/disbursements/{disbursement_id}", {"disbursement_id": known["disbursement_id"]}, {}, {}),
        ("/v1/evidence/{sha256}", {"sha256": known["sha256"]}, {}, {}),
        ("/v1/transactions/{transaction_id}", {"transaction_id": known["transaction_id"]}, {}, charity),
        ("/v1/audit/trail", {}, {"limit": 3}, charity),
        ("/v1/audit/trail", {}, {"campaign_id": known["campaign_id"]}, admin),
        ("/v1/audit/anomalies", {}, {"evidence_days": 0, "large_share": 0.1}, admin),
        ("/v1/audit/reconciliations", {}, {}, charity),
        ("/v1/audit/export", {}, {"format": "json"}, charity),
    ]
    for path, path_parameters, query, headers in reads:
        case = schema[path]["GET"].Case(path_parameters=path_parameters, query=query)
        response = case.call(base_url=service.base, headers=headers)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        case.validate_response(response, checks=CHECKS, headers=headers)

    # The writes' answers and the answers with their own status: checked the same way.
    started = schema["/v1/audit/reconciliations"]["POST"].Case(body={"campaign_id": known["campaign_id"]})
    response = started.call(base_url=service.base, headers=charity)
    assert response.status_code == 202, response.text
    started.validate_response(response, checks=CHECKS, headers=charity)
    job = schema["/v1/audit/reconciliations/{job_id}"]["GET"].Case(
        path_parameters={"job_id": response.json()["id"]}
    )
    response = job.call(base_url=service.base, headers=charity)
    assert response.status_code == 200, response.text
    job.validate_response(response, checks=CHECKS, headers=charity)
    ownership = schema["/v1/donations/{donation_id}/ownership"]["POST"].Case(
        path_parameters={"donation_id": known["donation_id"]},
        body={"receipt_secret": known["receipt_secret"], "donor_reference": "donor 5000"},
    )
    response = ownership.call(base_url=service.base)
    assert response.status_code == 200 and response.json()["matches"] is True, response.text
    ownership.validate_response(response, checks=CHECKS)
    for wait in ("true", "false"):
        donated = schema["/v1/donations"]["POST"].Case(
            query={"wait": wait},
            body={"campaign_id": known["campaign_id"], "amount": 7, "donor_reference": "d"},
        )
        response = donated.call(base_url=service.base, headers=charity)
        assert response.status_code == (201 if wait == "true" else 202), response.text
        donated.validate_response(response, checks=CHECKS, headers=charity)

    # Last, as it may close the campaign or revoke a key: the fuzzing, with both keys.
    for name, key in (("admin", ADMIN_KEY), ("charity", known["key"])):
        report = tmp_path / f"{name}.xml"
        run = _fuzz(service, key, report)
        said = f"schemathesis with the {name} key:\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
        assert run.returncode == 0, said
        suites = etree.parse(str(report)).getroot()
        cases = int(suites.get("tests", 0))
        assert cases >= 30 and suites.get("failures") == "0" and suites.get("errors") == "0", said


def test_the_document_describes_every_answer(embedded_service: Service) -> None:
    """Every operation documents its success body (a schema, not "any JSON"), and every
    documented error is an RFC 9457 body of type application/problem+json (what the service
    sends); FastAPI's own 422 schema, which it never sends, is not claimed."""
    document = embedded_service.get("/openapi.json").json()
    errors: dict[str, int] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            success = [status for status in operation["responses"] if status.startswith("2")]
            assert success, name
            for status in success:
                if status == "204":
                    assert "content" not in operation["responses"][status], name
                    continue
                content = operation["responses"][status]["content"]
                assert all(media.get("schema") for media in content.values()), name
                if "application/json" in content and path != "/v1/audit/export":
                    assert "$ref" in content["application/json"]["schema"], (name, status)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and name != "GET /healthz":  # 503: degraded, as JSON
                    errors[status] = errors.get(status, 0) + 1
                    assert list(response["content"]) == ["application/problem+json"], name
                    assert response["content"]["application/problem+json"]["schema"] == {
                        "$ref": "#/components/schemas/ProblemDetails"
                    }, name
    assert {"400", "401", "403", "404", "409", "413", "422", "503"} <= set(errors), errors
    assert "HTTPValidationError" not in document["components"]["schemas"]
