"""The console's evidence form for restricted documents and withdrawals (issue 15): a
bookkeeper marks documents that name people as restricted, and withdraws a document with
a reason, in her language; the real service over HTTP, the embedded chain."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from tests.api.checks import wait_for_mirror
from tests.console.conftest import Ledger, Staff, sign_in
from tests.console.test_console import new_campaign


@pytest.fixture(scope="module")
def staff(ledger: Ledger) -> Iterator[Staff]:
    signed_in = sign_in(ledger.service, ledger.key)
    yield signed_in
    signed_in.client.close()


def _paid(staff: Staff, name: str) -> str:
    campaign = new_campaign(staff, name)
    assert (
        staff.post(
            f"/console/campaigns/{campaign}/donations", {"amount": "50", "donor_reference": "A"}
        ).status_code
        == 200
    )
    paid = staff.post(
        f"/console/campaigns/{campaign}/disbursements",
        {"amount": "20", "recipient": "Rice Co", "purpose": "Rice", "allocation": "fifo"},
    )
    return paid.headers["location"].split("/")[3].split("?")[0]


def test_a_restricted_upload_and_a_withdrawal_from_the_console(ledger: Ledger, staff: Staff) -> None:
    service = ledger.service
    disbursement = _paid(staff, "Restricted")
    form = staff.client.get(f"/console/disbursements/{disbursement}").text
    assert 'name="visibility" value="restricted"' in form and "name beneficiaries, ID numbers" in form
    listing = b"%PDF-1.7 recipients: Li Lei 110101200001011234"
    sha = hashlib.sha256(listing).hexdigest()
    uploaded = staff.client.post(
        f"/console/disbursements/{disbursement}/evidence",
        data={"csrf": staff.csrf, "visibility": "restricted"},
        files=[("files", ("recipients.pdf", listing, "application/pdf"))],
    )
    assert uploaded.status_code == 201, uploaded.text
    root = service.runtime.settings.evidence_path
    assert (root / sha[:2] / f"{sha}.sealed").is_file() and not (root / sha[:2] / sha).exists()
    wait_for_mirror(service)
    page = staff.client.get(f"/console/disbursements/{disbursement}").text
    assert "restricted: only this charity and its auditors can open it" in page
    assert service.get(f"/v1/evidence/{sha}").status_code == 404
    assert service.get(f"/v1/evidence/{sha}", ledger.key).content == listing

    # Its public face: a redacted copy, linked on chain.
    assert 'data-testid="copy-form"' in page
    redacted = b"%PDF-1.7 recipients: [redacted]"
    copy_url = f"/console/disbursements/{disbursement}/evidence/{sha}/redacted-copy"
    empty = staff.client.post(copy_url, data={"csrf": staff.csrf}, files={"file": ("", b"")})
    assert empty.status_code == 422
    linked = staff.client.post(
        copy_url,
        data={"csrf": staff.csrf},
        files={"file": ("recipients (redacted).pdf", redacted, "application/pdf")},
    )
    assert linked.status_code == 201 and "linked to its original on the ledger" in linked.text
    copy = hashlib.sha256(redacted).hexdigest()
    assert service.get(f"/v1/evidence/{copy}").content == redacted
    wait_for_mirror(service)
    page = staff.client.get(f"/console/disbursements/{disbursement}").text
    assert "redacted copy of a restricted original" in page and 'data-testid="copy-form"' not in page

    # A reason with a control character is refused at its field; nothing is erased.
    url = f"/console/disbursements/{disbursement}/evidence/{sha}/withdrawal"
    refused = staff.post(url, {"reason": "bad\x07reason"})
    assert refused.status_code == 422 and 'aria-invalid="true"' in refused.text
    assert (root / sha[:2] / f"{sha}.sealed").is_file()
    # Another charity's session cannot withdraw it.
    other = sign_in(service, ledger.other_key)
    assert other.post(url, {"reason": "not mine"}).status_code == 404
    assert (root / sha[:2] / f"{sha}.sealed").is_file()

    done = staff.post(url, {"reason": "names recipients"})
    assert done.status_code == 201, done.text
    assert "its withdrawal recorded on the ledger" in done.text
    assert not (root / sha[:2] / f"{sha}.sealed").exists()
    wait_for_mirror(service)
    assert service.get(f"/v1/evidence/{sha}").status_code == 410
    zh = sign_in(service, ledger.key, lang="zh-CN")
    page = zh.client.get(f"/console/disbursements/{disbursement}").text
    assert "已撤回（names recipients）" in page  # noqa: RUF001
