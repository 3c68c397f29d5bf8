# Chinese sentences below use full-width punctuation, which RUF001 takes for look-alikes.
# ruff: noqa: RUF001
"""The console against the real service over HTTP (SQLite, the embedded chain): its
sessions and CSRF tokens, its authorisation on every route, its cookie, that the key
never comes back, and the contract's refusals in words."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert, update

from ledger_api.core import ids
from ledger_api.core.models import ChainTransaction, ConsoleSession
from tests.api.checks import wait_for_mirror
from tests.api.service import ADMIN_KEY
from tests.console.conftest import Ledger, Staff, csrf_of, sign_in

REFUSAL = re.compile(r'data-testid="refusal">([^<]*)<')


def campaign_count(ledger: Ledger, charity: str) -> int:
    listed = ledger.service.get(f"/v1/campaigns?charity_id={charity}&limit=200")
    assert listed.status_code == 200, listed.text
    return len(listed.json()["items"])


def new_campaign(staff: Staff, name: str = "School meals", goal: str = "10,000") -> str:
    created = staff.post("/console/campaigns", {"name": name, "currency": "CNY", "goal": goal})
    assert created.status_code == 303, created.text
    return created.headers["location"].split("/")[3].split("?")[0]


@pytest.fixture(scope="module")
def staff(ledger: Ledger) -> Iterator[Staff]:
    signed_in = sign_in(ledger.service, ledger.key)
    yield signed_in
    signed_in.client.close()


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(
    ledger: Ledger, staff: Staff
) -> None:
    other = sign_in(ledger.service, ledger.key)  # the same charity, another session
    before = campaign_count(ledger, ledger.charity)
    form = {"name": "Forged", "currency": "CNY", "goal": "100"}
    for token in (
        None,
        "",
        "0" * 64,
        other.csrf,
        staff.csrf[:-1] + ("1" if staff.csrf.endswith("0") else "0"),
    ):
        data = dict(form) if token is None else {**form, "csrf": token}
        answer = staff.client.post("/console/campaigns", data=data)
        assert answer.status_code == 403, (token, answer.text)
        assert answer.headers["cache-control"] == "no-store"
    # Sign-out and the other forms too.
    assert staff.client.post("/console/sign-out", data={"csrf": other.csrf}).status_code == 403
    assert staff.client.get("/console").status_code == 200  # still signed in
    assert campaign_count(ledger, ledger.charity) == before
    # The same post with its own token does go through.
    new_campaign(staff, "Genuine")
    assert campaign_count(ledger, ledger.charity) == before + 1
    other.client.close()


def _expire(ledger: Ledger, staff: Staff, **times: datetime) -> None:
    """Move one session's clock back (the database holds only its token's SHA-256)."""
    token = staff.client.cookies.get("ledger_console") or ""
    with ledger.service.runtime.engine.begin() as connection:
        moved = connection.execute(
            update(ConsoleSession)
            .where(ConsoleSession.token_hash == hashlib.sha256(token.encode()).hexdigest())
            .values(**times)
        )
        assert moved.rowcount == 1


def test_an_expired_signed_out_or_revoked_session_cannot_post(ledger: Ledger) -> None:
    service = ledger.service
    before = campaign_count(ledger, ledger.charity)
    form = {"name": "Too late", "currency": "CNY", "goal": "100"}
    # Signed out: the session's row is gone; the old cookie and token open nothing.
    gone = sign_in(service, ledger.key)
    cookie = gone.client.cookies.get("ledger_console")
    signed_out = gone.post("/console/sign-out")
    assert signed_out.status_code == 303
    assert "You are signed out." in gone.client.get(signed_out.headers["location"]).text
    gone.client.close()
    stale = httpx.Client(base_url=service.base, cookies={"ledger_console": cookie or ""})
    answer = stale.post("/console/campaigns", data={**form, "csrf": gone.csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in"
    # Idle too long, then past the absolute expiry (the clock moved back in the database).
    long_ago = datetime.now(UTC) - timedelta(hours=13)
    for times in ({"seen_at": datetime.now(UTC) - timedelta(minutes=31)}, {"created_at": long_ago}):
        idle = sign_in(service, ledger.key)
        _expire(ledger, idle, **times)
        answer = idle.post("/console/campaigns", form)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in", times
        idle.client.close()
    # A revoked key ends its sessions.
    key = service.post("/v1/keys", ADMIN_KEY, json={"role": "charity", "charity_id": ledger.charity}).json()
    revoked = sign_in(service, key["key"])
    assert service.client.delete(f"/v1/keys/{key['id']}", headers=service.admin()).status_code == 204
    answer = revoked.post("/console/campaigns", form)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in"
    assert campaign_count(ledger, ledger.charity) == before
    stale.close()
    revoked.client.close()


def test_another_charitys_records_are_not_found_on_every_route(ledger: Ledger, staff: Staff) -> None:
    service = ledger.service
    campaign = service.campaign(ledger.other_charity, ledger.other_key)
    donation = service.donate(campaign, ledger.other_key, 50_000)["id"]
    paid = service.post(
        "/v1/disbursements",
        ledger.other_key,
        json={"campaign_id": campaign, "amount": 10_000, "recipient": "Rice Co", "purpose": "Rice"},
    )
    assert paid.status_code == 201, paid.text
    disbursement = paid.json()["id"]
    wait_for_mirror(service)
    before = service.get(f"/v1/campaigns/{campaign}").json()
    reads = [
        f"/console/campaigns/{campaign}",
        f"/console/donations/{donation}/refund",
        f"/console/disbursements/{disbursement}",
    ]
    for path in reads:
        answer = staff.client.get(path)
        assert answer.status_code == 404, (path, answer.status_code)
        assert "Rice Co" not in answer.text and "School meals" not in answer.text
    writes = [
        (f"/console/campaigns/{campaign}/close", {}),
        (f"/console/campaigns/{campaign}/donations", {"amount": "1", "donor_reference": "x"}),
        (
            f"/console/campaigns/{campaign}/disbursements",
            {"amount": "1", "recipient": "Me", "purpose": "Mine", "allocation": "fifo"},
        ),
        (f"/console/donations/{donation}/refund", {"amount": "1", "reason": "mine"}),
    ]
    for path, data in writes:
        answer = staff.post(path, data)
        assert answer.status_code == 404, (path, answer.status_code)
    upload = staff.client.post(
        f"/console/disbursements/{disbursement}/evidence",
        data={"csrf": staff.csrf},
        files={"files": ("x.txt", b"not theirs")},
    )
    assert upload.status_code == 404
    # And nothing of theirs changed.
    assert service.get(f"/v1/campaigns/{campaign}").json() == before
    # A charity key is not the registrar.
    assert staff.client.get("/console/registrar").status_code == 404


def _set_cookies(answer: httpx.Response) -> dict[str, str]:
    return {line.split("=", 1)[0]: line for line in answer.headers.get_list("set-cookie")}


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_session_cookie_is_httponly_strict_scoped_and_secure_over_https(
    ledger: Ledger, scheme: str
) -> None:
    # Over HTTPS means: a proxy on loopback says so (uvicorn's proxy headers, as deployed).
    headers = {"X-Forwarded-Proto": scheme}
    with httpx.Client(base_url=ledger.service.base, headers=headers) as client:
        form = client.get("/console/sign-in")
        # httpx sends a Secure cookie back only over https; the proxy's hop here is plain http.
        token = form.cookies["ledger_console_signin"]
        signed = client.post(
            "/console/sign-in",
            data={"csrf": csrf_of(form.text), "key": ledger.key},
            headers={"Cookie": f"ledger_console_signin={token}"},
        )
        assert signed.status_code == 303
        for name, line in (*_set_cookies(form).items(), ("session", _set_cookies(signed)["ledger_console"])):
            attributes = [part.strip().lower() for part in line.split(";")]
            assert "httponly" in attributes, (name, line)
            assert "samesite=strict" in attributes, (name, line)
            assert "path=/console" in attributes, (name, line)
            assert ("secure" in attributes) == (scheme == "https"), (name, line)
        assert signed.headers["cache-control"] == "no-store"


def test_the_key_never_appears_in_a_page_a_location_or_a_log_line(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    service = ledger.service
    access = logging.getLogger("uvicorn.access")
    level = access.level
    access.setLevel(logging.INFO)
    access.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    answers: list[httpx.Response] = []
    try:
        with httpx.Client(base_url=service.base, follow_redirects=False) as client:
            form = client.get("/console/sign-in")
            wrong = client.post(
                "/console/sign-in", data={"csrf": csrf_of(form.text), "key": ledger.key + "x"}
            )
            assert wrong.status_code == 401
            signed = client.post("/console/sign-in", data={"csrf": csrf_of(wrong.text), "key": ledger.key})
            answers += [form, wrong, signed]
            home = client.get("/console")
            csrf = csrf_of(home.text)
            created = client.post(
                "/console/campaigns", data={"csrf": csrf, "name": "Keys", "currency": "CNY", "goal": "5"}
            )
            page = client.get(created.headers["location"])
            answers += [home, created, page, client.get("/console/registrar")]
            admin_form = httpx.get(f"{service.base}/console/sign-in")
        with httpx.Client(base_url=service.base, cookies=admin_form.cookies) as admin:
            signed = admin.post("/console/sign-in", data={"csrf": csrf_of(admin_form.text), "key": ADMIN_KEY})
            answers += [signed, admin.get("/console/registrar")]
    finally:
        access.removeHandler(caplog.handler)
        access.setLevel(level)
    for answer in answers:
        for secret in (ledger.key, ADMIN_KEY):
            assert secret not in answer.text, answer.url
            assert secret not in answer.headers.get("location", ""), answer.url
            assert secret not in str(answer.url)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "POST /console/sign-in" in logged  # the access log was captured
    # The key's secret part on its own too: everything after "lk_<id>_" (the secret may
    # itself start with "_", so not split("_")[2], which was then "" and always found).
    secret = ledger.key.split("_", 2)[2]
    assert secret and ledger.key not in logged and secret not in logged
    assert ADMIN_KEY not in logged


@pytest.mark.parametrize(
    ("lang", "sentence"),
    [
        ("en", "This campaign has CN¥1,200.00 left to pay out; you asked for CN¥1,800.00."),
        ("zh-CN", "此项目可支出余额为 ¥1,200.00；您要支出 ¥1,800.00。"),
    ],
)
def test_a_would_be_revert_is_a_sentence_in_the_readers_language(
    ledger: Ledger, lang: str, sentence: str
) -> None:
    staff = sign_in(ledger.service, ledger.key, lang)
    campaign = new_campaign(staff, f"Overdraw {lang}")
    donated = staff.post(
        f"/console/campaigns/{campaign}/donations", {"amount": "¥1,200", "donor_reference": "Wang Fang"}
    )
    assert donated.status_code == 200, donated.text
    before = ledger.service.get(f"/v1/campaigns/{campaign}").json()
    form = {"amount": "1,800.00", "recipient": "Rice Co", "purpose": "Rice", "allocation": "fifo"}
    refused = staff.post(f"/console/campaigns/{campaign}/disbursements", form)
    assert refused.status_code == 409
    assert REFUSAL.findall(refused.text) == [sentence]
    assert 'value="1,800.00"' in refused.text  # what she typed is kept
    # The contract's own error (chosen donations) reads the same way.
    chosen = staff.post(
        f"/console/campaigns/{campaign}/disbursements",
        {
            **form,
            "amount": "1,800",
            "allocation": "chosen",
            **{f"take:{d}": "1,800" for d in _donations(ledger, campaign)},
        },
    )
    assert chosen.status_code == 409
    assert "1,800.00" in REFUSAL.findall(chosen.text)[0] and "1,200.00" in REFUSAL.findall(chosen.text)[0]
    assert ledger.service.get(f"/v1/campaigns/{campaign}").json() == before
    staff.client.close()


def _donations(ledger: Ledger, campaign: str) -> list[str]:
    listed = ledger.service.get(f"/v1/campaigns/{campaign}/donations").json()
    return [d["id"] for d in listed["items"]]


def test_a_bad_amount_is_refused_at_its_field_with_the_value_kept(ledger: Ledger, staff: Staff) -> None:
    campaign = new_campaign(staff, "Amounts")
    before = ledger.service.get(f"/v1/campaigns/{campaign}").json()
    refused = staff.post(
        f"/console/campaigns/{campaign}/donations", {"amount": "1234.567", "donor_reference": "Li Lei"}
    )
    assert refused.status_code == 422
    html = refused.text
    assert 'data-testid="error-summary"' in html and 'href="#donation-amount"' in html
    field = re.search(r'<input id="donation-amount"[^>]*>', html)
    assert field is not None
    assert 'aria-invalid="true"' in field.group(0) and 'value="1234.567"' in field.group(0)
    assert "at most 2 decimals" in html
    assert 'value="Li Lei"' in html  # the other fields keep their values too
    assert ledger.service.get(f"/v1/campaigns/{campaign}").json() == before


def test_the_registrar_issues_a_key_shown_once_and_revokes_it(ledger: Ledger) -> None:
    service = ledger.service
    registrar = sign_in(service, ADMIN_KEY)
    issued = registrar.post("/console/registrar/keys", {"charity_id": ledger.charity, "label": "bookkeeper"})
    assert issued.status_code == 201 and issued.headers["cache-control"] == "no-store"
    key = re.search(r'data-testid="new-key">([^<]+)<', issued.text)
    assert key is not None
    staff = sign_in(service, key.group(1))
    assert staff.client.get("/console").status_code == 200
    again = registrar.client.get("/console/registrar")
    assert key.group(1) not in again.text  # shown once
    key_id = key.group(1).split("_")[1]
    assert registrar.post("/console/registrar/keys/revoke", {"key_id": key_id}).status_code == 200
    assert staff.client.get("/console").headers["location"] == "/console/sign-in"
    # A key of another role cannot sign in; nor an unknown charity's key be issued.
    bad = registrar.post("/console/registrar/keys", {"charity_id": "CH-0000-0000-0000-0000"})
    assert bad.status_code == 422
    registrar.client.close()
    staff.client.close()


def test_the_registrar_registers_a_charity_and_pauses_the_ledger(ledger: Ledger, staff: Staff) -> None:
    service = ledger.service
    registrar = sign_in(service, ADMIN_KEY)
    registered = registrar.post(
        "/console/registrar/charities", {"name": "River School Fund", "custody": "platform"}
    )
    assert registered.status_code == 201, registered.text
    assert 'data-testid="registered"' in registered.text
    names = [c["name"] for c in service.get("/v1/charities?limit=200").json()["items"]]
    assert "River School Fund" in names
    missing = registrar.post("/console/registrar/charities", {"name": "Own Key Fund", "custody": "self"})
    assert missing.status_code == 422 and 'href="#register-operator"' in missing.text
    # Paused: a charity's write is refused in words, nothing written; then running again.
    campaign = new_campaign(staff, "Before the pause")
    paused = registrar.post("/console/registrar/pause", {"pause": "1"})
    assert paused.status_code == 200 and "The ledger is paused." in paused.text
    before = service.get(f"/v1/campaigns/{campaign}").json()
    refused = staff.post(f"/console/campaigns/{campaign}/donations", {"amount": "10", "donor_reference": "Z"})
    assert refused.status_code == 409
    assert REFUSAL.findall(refused.text) == [
        "The ledger is paused by the registrar: no records can be written just now."
    ]
    assert service.get(f"/v1/campaigns/{campaign}").json() == before
    running = registrar.post("/console/registrar/pause", {"pause": "0"})
    assert running.status_code == 200 and "takes records again" in running.text
    assert (
        staff.post(
            f"/console/campaigns/{campaign}/donations", {"amount": "10", "donor_reference": "Z"}
        ).status_code
        == 200
    )
    registrar.client.close()


def test_the_dashboard_lists_payments_without_evidence_and_records_not_on_the_ledger(
    ledger: Ledger, staff: Staff
) -> None:
    service = ledger.service
    campaign = new_campaign(staff, "Lists")
    assert (
        staff.post(
            f"/console/campaigns/{campaign}/donations", {"amount": "50", "donor_reference": "A"}
        ).status_code
        == 200
    )
    paid = staff.post(
        f"/console/campaigns/{campaign}/disbursements",
        {"amount": "20", "recipient": "Paper Co", "purpose": "Exercise books", "allocation": "fifo"},
    )
    disbursement = paid.headers["location"].split("/")[3].split("?")[0]
    listed = re.search(r'data-testid="unevidenced">(.*?)</ul>', staff.client.get("/console").text, re.S)
    assert listed is not None and disbursement in listed.group(1)
    # An upload without the session's token is refused before anything is kept.
    document = b"invoice for exercise books"
    refused = staff.client.post(
        f"/console/disbursements/{disbursement}/evidence", files={"files": ("invoice.txt", document)}
    )
    assert refused.status_code == 403
    sha = hashlib.sha256(document).hexdigest()
    assert not (service.runtime.settings.evidence_path / sha[:2] / sha).exists()
    uploaded = staff.client.post(
        f"/console/disbursements/{disbursement}/evidence",
        data={"csrf": staff.csrf},
        files=[("files", ("invoice.txt", document, "text/plain"))],
    )
    assert uploaded.status_code == 201 and sha in uploaded.text and "text/plain" in uploaded.text
    listed = re.search(r'data-testid="unevidenced">(.*?)</ul>', staff.client.get("/console").text, re.S)
    assert listed is None or disbursement not in listed.group(1)
    # A transaction of this charity that failed on chain is listed, with its error.
    with service.runtime.engine.begin() as connection:
        connection.execute(
            insert(ChainTransaction).values(
                id="00000000-0000-4000-8000-000000000001",
                chain_id=service.runtime.deployment.chain_id,
                signer="0x" + "11" * 20,
                nonce=10**9,
                function="recordDonation",
                charity_id=ids.to_hex(ledger.charity),
                records=json.dumps({"kind": "donation", "ids": ["DN-TEST-FAIL-0000-0001"]}),
                raw_tx="0x",
                tx_hash="0x" + "22" * 32,
                status="failed",
                error=json.dumps({"name": "CampaignIsClosed", "args": {}}),
            )
        )
    pending = re.search(r'data-testid="pending">(.*?)</ul>', staff.client.get("/console").text, re.S)
    assert pending is not None
    assert "DN-TEST-FAIL-0000-0001" in pending.group(1) and "CampaignIsClosed" in pending.group(1)
    other = sign_in(service, ledger.other_key)
    assert "DN-TEST-FAIL-0000-0001" not in other.client.get("/console").text  # not another charity's
    other.client.close()


def test_a_payment_from_chosen_donations_and_a_refund(ledger: Ledger, staff: Staff) -> None:
    service = ledger.service
    campaign = new_campaign(staff, "Chosen")
    for amount in ("100", "200", "300"):
        assert (
            staff.post(
                f"/console/campaigns/{campaign}/donations", {"amount": amount, "donor_reference": "D"}
            ).status_code
            == 200
        )
    first, second, third = _donations(ledger, campaign)
    page = staff.client.get(f"/console/campaigns/{campaign}").text
    assert f'name="take:{third}"' in page  # each donation with a balance can be chosen
    paid = staff.post(
        f"/console/campaigns/{campaign}/disbursements",
        {
            "amount": "250.50",
            "recipient": "Bus Co",
            "purpose": "School trip",
            "allocation": "chosen",
            f"take:{third}": "¥200.50",
            f"take:{first}": "50",
        },
    )
    assert paid.status_code == 303, paid.text
    disbursement = paid.headers["location"].split("/")[3].split("?")[0]
    funded = service.get(f"/v1/disbursements/{disbursement}").json()["funded_by"]
    assert sorted((f["donation_id"], f["amount"]) for f in funded) == sorted(
        [(third, 20_050), (first, 5_000)]
    )
    # The sum must match the amount: refused at the allocation, nothing written.
    mismatch = staff.post(
        f"/console/campaigns/{campaign}/disbursements",
        {
            "amount": "10",
            "recipient": "Bus Co",
            "purpose": "Trip",
            "allocation": "chosen",
            f"take:{second}": "9",
        },
    )
    assert mismatch.status_code == 422 and 'href="#disbursement-allocation"' in mismatch.text
    assert "add up to CN¥9.00, not the payment&#39;s CN¥10.00" in mismatch.text
    refunded = staff.post(f"/console/donations/{second}/refund", {"amount": "20", "reason": "paid twice"})
    assert refunded.status_code == 303
    assert service.get(f"/v1/donations/{second}").json()["refunded"] == 2_000
    too_much = staff.post(f"/console/donations/{second}/refund", {"amount": "181", "reason": "all"})
    assert too_much.status_code == 409
    assert "CN¥180.00" in REFUSAL.findall(too_much.text)[0]


def test_oversized_console_posts_are_refused_unread(ledger: Ledger, staff: Staff) -> None:
    before = campaign_count(ledger, ledger.charity)
    huge = staff.client.post("/console/sign-in", data={"csrf": "x", "key": "k" * 10_000})
    assert huge.status_code == 413
    flood = staff.post("/console/campaigns", {"name": "x" * 70_000, "currency": "CNY", "goal": "1"})
    assert flood.status_code == 413
    assert campaign_count(ledger, ledger.charity) == before


def test_a_form_sent_twice_records_once(ledger: Ledger, staff: Staff) -> None:
    """A double click, or the answer page reloaded: the form's one-time token is claimed
    by the first post; the second is a 409 page and records nothing."""
    campaign = new_campaign(staff, "Twice")
    page = staff.client.get(f"/console/campaigns/{campaign}").text
    form = re.search(r'data-testid="new-donation">(.*?)</form>', page, re.S)
    assert form is not None
    once = re.search(r'name="once" value="([^"]+)"', form.group(1))
    assert once is not None
    data = {"amount": "66", "donor_reference": "Twice", "once": once.group(1)}
    assert staff.post(f"/console/campaigns/{campaign}/donations", data).status_code == 200
    again = staff.post(f"/console/campaigns/{campaign}/donations", data)
    assert again.status_code == 409 and "This form was already sent" in again.text
    assert [
        d["amount"] for d in ledger.service.get(f"/v1/campaigns/{campaign}/donations").json()["items"]
    ] == [6_600]
    # Each rendering of a form has its own token: the next donation goes through.
    fresh = re.search(r'name="once" value="([^"]+)"', staff.client.get(f"/console/campaigns/{campaign}").text)
    assert fresh is not None and fresh.group(1) != once.group(1)
    assert (
        staff.post(f"/console/campaigns/{campaign}/donations", {**data, "once": fresh.group(1)}).status_code
        == 200
    )
