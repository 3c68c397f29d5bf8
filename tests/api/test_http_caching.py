"""HTTP caching of the public record reads (core/caching.py), over HTTP with the real
app: each record answer has a strong ETag and a Cache-Control any cache may honour, a
conditional request whose tag still matches answers 304 with no body, a record that
changes gets a new tag, an evidence document is tagged by its own hash, and an answer
to a request with credentials is never `public`."""

from __future__ import annotations

import hashlib

import pytest

from ledger_api.core import ids
from tests.api.service import Service

pytestmark = pytest.mark.anvil

RECORD = "public, max-age=10, must-revalidate"


def revalidates(service: Service, path: str) -> str:
    """The record's tag, after checking the headers and that the tag gets a 304."""
    first = service.get(path)
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["vary"] == "Authorization, Cookie"
    again = service.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert "content-type" not in again.headers
    assert service.get(path, headers={"If-None-Match": '"someone-else"'}).status_code == 200
    return etag


def test_records_have_tags_that_answer_304_until_they_change(service: Service) -> None:
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    donation = service.donate(campaign_id, key, 10_000)
    trace = f"/v1/donations/{donation['id']}"
    for path in (f"/v1/charities/{charity_id}", f"/v1/campaigns/{campaign_id}", trace):
        assert service.get(path).headers["cache-control"] == RECORD
        revalidates(service, path)
    before = revalidates(service, trace)
    assert service.get(trace, headers={"If-None-Match": f'"x", W/{before}'}).status_code == 304
    assert service.get(trace, headers={"If-None-Match": "*"}).status_code == 304

    paid = service.post(
        "/v1/disbursements",
        key,
        json={"campaign_id": campaign_id, "amount": 4_000, "recipient": "CN-USCC-1", "purpose": "rice"},
    )
    assert paid.status_code == 201, paid.text
    changed = service.get(trace, headers={"If-None-Match": before})
    assert changed.status_code == 200 and changed.json()["allocated"] == 4_000
    assert changed.headers["etag"] != before
    revalidates(service, f"/v1/disbursements/{paid.json()['id']}")


def test_an_evidence_document_is_tagged_by_its_hash(service: Service) -> None:
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    service.donate(campaign_id, key, 1_000)
    paid = service.post(
        "/v1/disbursements",
        key,
        json={"campaign_id": campaign_id, "amount": 500, "recipient": "CN-USCC-1", "purpose": "rice"},
    )
    document = b"invoice for rice, cached"
    sha256 = hashlib.sha256(document).hexdigest()
    uploaded = service.post(
        f"/v1/disbursements/{paid.json()['id']}/evidence", key, files={"files": ("i.txt", document)}
    )
    assert uploaded.status_code == 201, uploaded.text
    found = service.get(f"/v1/evidence/{sha256}")
    assert found.status_code == 200 and found.content == document
    assert found.headers["etag"] == f'"{sha256}"'
    assert found.headers["cache-control"] == "public, max-age=3600, must-revalidate"
    again = service.get(f"/v1/evidence/{sha256}", headers={"If-None-Match": f'"{sha256}"'})
    assert again.status_code == 304 and again.content == b""
    keyed = service.get(f"/v1/evidence/{sha256}", key)
    assert keyed.status_code == 200 and keyed.headers["cache-control"].startswith("private")
    assert keyed.headers["vary"] == "Authorization, Cookie"


def test_what_is_not_a_record_read_is_not_tagged(service: Service) -> None:
    charity_id, key = service.charity()
    keyed = service.get(f"/v1/charities/{charity_id}", key)
    assert keyed.headers["cache-control"] == "private, max-age=10, must-revalidate"
    missing = service.get(f"/v1/donations/{ids.new('donation')}")
    assert missing.status_code == 404 and "etag" not in missing.headers
    assert "etag" not in service.get("/v1/charities").headers
    assert "etag" not in service.get("/healthz").headers
