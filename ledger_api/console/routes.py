"""The console's pages for a charity's staff: sign-in, the dashboard, campaigns,
donations (with the receipt to print), refunds, disbursements and evidence.

Every page is server-rendered and works without JavaScript. A page reads through the
same read services as the public pages; a form calls the same service as its JSON route
(`campaigns.service.create`, `donations.service.record`, ...) with the session's
principal, so the rules, the simulation and the read-your-writes wait are the API's.
Every POST carries the session's CSRF token (checked before anything else is read);
every answer is `no-store`. A record of another charity is "not found", as in the API.
Amounts are typed in major units and converted exactly (`core.amounts`); a refusal of
the contract is a sentence in the reader's language (`explain.py`).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from ledger_api.approvals import reads as approval_reads
from ledger_api.approvals import service as approval_writes
from ledger_api.campaigns import reads as campaigns
from ledger_api.campaigns import service as campaign_writes
from ledger_api.campaigns.schemas import CampaignCreate
from ledger_api.charities import reads as charities
from ledger_api.console import explain, reads, sessions
from ledger_api.console.forms import Form, form_of
from ledger_api.console.sessions import Staff
from ledger_api.console.signing import prepared, sign_states, slip_page
from ledger_api.console.web import (
    CharityStaff,
    ConsoleRoute,
    CsrfRefused,
    Posted,
    PostingStaff,
    StaffDep,
    check_csrf,
    first_time,
    page,
    writes_of,
)
from ledger_api.core import documents, ids, reference
from ledger_api.core.errors import KeyExpired, NotFound, Problem, Unauthenticated
from ledger_api.core.formats import major_units
from ledger_api.core.pages import RecordFilters
from ledger_api.core.security import authenticate
from ledger_api.disbursements import service as disbursement_writes
from ledger_api.disbursements.reads import funding
from ledger_api.disbursements.schemas import DisbursementCreate, EvidenceWithdrawal
from ledger_api.donations import service as donation_writes
from ledger_api.donations.schemas import DonationCreate, RefundCreate
from ledger_api.mirror.gateway import Mirror, current_mirror
from ledger_api.pages.i18n import Reader, reader_for
from ledger_api.pages.routes import PageError, Typed, reading, receipt_page, record_id
from ledger_api.transactions.service import Writes

FORM_BODY = 64 * 1024  # a console form (the longest: a disbursement choosing 500 donations)
CHANNELS = ("bank-transfer", "wechat-pay", "alipay", "cash-box", "unspecified")
CURRENCIES = ("CNY", "HKD", "MOP", "TWD", "USD", "EUR", "GBP", "JPY")
LISTED = 200  # donations listed on a campaign's page (to choose from)
HOMES = {"admin": "/console/registrar", "approver": "/console/approvals"}  # else the dashboard

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)


# ------------------------------------------------------------------ sign-in and out


@router.get("/sign-in", name="console_sign_in")
def sign_in_form(request: Request) -> HTMLResponse:
    staff = sessions.find(current_mirror(request).engine, request.cookies.get(sessions.COOKIE))
    if staff is not None:
        return RedirectResponse("/console", status_code=303)  # type: ignore[return-value]
    return _sign_in_page(request, None)


def _sign_in_page(request: Request, error: str | None, status: int = 200) -> HTMLResponse:
    token = request.cookies.get(sessions.SIGN_IN_COOKIE)
    if not token or len(token) > 100:
        token = sessions.new_sign_in_token()
    response = page(
        request,
        None,
        "sign_in.html",
        status,
        lang_base="/console/sign-in",
        signed_out=request.query_params.get("signed_out") == "1",
        sign_in_csrf=sessions.csrf_for(token),
        error=error,
    )
    sessions.set_cookie(response, request, sessions.SIGN_IN_COOKIE, token, sessions.SIGN_IN_AGE)
    return response


@router.post("/sign-in", name="console_sign_in_post", max_body_size=4096)
def sign_in(request: Request, data: Posted) -> Response:
    """Sign in with an API key (admin, charity or approver), POSTed; the key is checked as
    the API checks it and then forgotten: never stored, logged, or shown again."""
    reader = reader_for(request)
    given = data.get("csrf")
    if not sessions.csrf_matches(
        request.cookies.get(sessions.SIGN_IN_COOKIE), given if isinstance(given, str) else ""
    ):
        raise CsrfRefused
    key = data.get("key")
    key = key.strip() if isinstance(key, str) else ""
    mirror = current_mirror(request)
    admin = mirror.settings.admin_key.get_secret_value() if mirror.settings.admin_key else None
    try:
        principal = authenticate(mirror.engine, admin, f"Bearer {key}") if key else None
    except KeyExpired:
        return _sign_in_page(request, reader.t("console.sign_in.expired"), 401)
    except Unauthenticated:
        principal = None
    if principal is None:
        return _sign_in_page(request, reader.t("console.sign_in.wrong"), 401)
    if principal.role not in ("admin", "charity", "approver"):
        return _sign_in_page(request, reader.t("console.sign_in.auditor"), 403)
    sessions.forget_expired(mirror.engine)
    token = sessions.open_session(mirror.engine, principal)
    response = RedirectResponse(HOMES.get(principal.role, "/console"), 303)
    sessions.set_cookie(response, request, sessions.COOKIE, token, None)
    sessions.clear_cookie(response, request, sessions.SIGN_IN_COOKIE)
    return response


@router.post("/sign-out", name="console_sign_out")
def sign_out(request: Request, staff: StaffDep, data: Posted) -> Response:
    check_csrf(staff, data)
    sessions.end(current_mirror(request).engine, staff.token)
    response = RedirectResponse("/console/sign-in?signed_out=1", status_code=303)
    sessions.clear_cookie(response, request, sessions.COOKIE)
    return response


# ------------------------------------------------------------------ the charity's records


def writes_for(request: Request, staff: Staff) -> Writes:
    """The write gateway for the signed-in charity: in `prepare` mode when it holds its
    own key (its records are signed by it, on the sign page, and relayed)."""
    writes = writes_of(request)
    if staff.charity_hex and writes.holds_own_key(staff.charity_hex):
        return replace(writes, mode="prepare")
    return writes


def _charity_id(staff: Staff) -> str:
    assert staff.charity_hex is not None
    return ids.from_bytes32(staff.charity_hex)


def own_campaign(writes: Writes, staff: Staff, campaign_id: str) -> str:
    """The canonical campaign ID if the campaign is the signed-in charity's; else 404."""
    canonical = record_id(campaign_id, "campaign")
    try:
        owner = writes.charity_of_campaign(canonical)
    except NotFound:
        raise PageError(404, "campaign", canonical) from None
    if owner != staff.charity_hex:
        raise PageError(404, "campaign", canonical)
    return canonical


def _dashboard(request: Request, staff: Staff, status: int = 200, **forms: Any) -> HTMLResponse:
    mirror = current_mirror(request)
    reader = reader_for(request)
    charity_id = _charity_id(staff)
    with reading("charity", charity_id):
        charity = charities.get_charity(mirror, charity_id)
        listed = campaigns.list_campaigns(mirror, LISTED, None, charity_id, None, None)
    new_campaign = forms.get("new_campaign") or Form(reader, {"currency": "CNY"}, prefix="campaign-")
    return page(
        request,
        staff,
        "dashboard.html",
        status,
        reader=reader,
        lang_base="/console",
        charity=charity,
        campaigns=listed.items,
        unevidenced=reads.without_evidence(mirror, staff.charity_hex or ""),
        pending=reads.open_transactions(mirror, staff.charity_hex or ""),
        deadlines=reads.deadlines(mirror, staff.charity_hex or "", reader.lang),
        new_campaign=new_campaign,
        currencies=CURRENCIES,
        problem=forms.get("problem"),
    )


@router.get("", name="console_home")
def dashboard(request: Request, staff: StaffDep) -> Response:
    if staff.principal.role in HOMES:
        return RedirectResponse(HOMES[staff.principal.role], status_code=303)
    return _dashboard(request, staff)


@router.post("/campaigns", name="console_create_campaign")
def create_campaign(request: Request, staff: PostingStaff, data: Posted) -> Response:
    reader = reader_for(request)
    form = form_of(reader, data, ("name", "currency", "goal"), prefix="campaign-")
    name = form.text("name")
    currency = form.value("currency").strip().upper()
    if currency not in CURRENCIES:
        form.fail("currency", reader.t("field_error.invalid"))
    goal = form.amount("goal", currency or "CNY")
    body = None
    if form.ok:
        try:
            body = CampaignCreate.model_validate(
                {"charity_id": _charity_id(staff), "name": name, "currency": currency, "goal": goal}
            )
        except ValidationError as exc:
            form.schema_errors(exc)
    if body is None:
        return _dashboard(request, staff, 422, new_campaign=form)
    try:
        created, state = campaign_writes.create(writes_for(request, staff), staff.principal, body, True)
    except Problem as problem:
        form.fail("_form", explain.sentence(reader, problem, currency))
        return _dashboard(request, staff, 409, new_campaign=form)
    if prepared([state]):
        return sign_states(request, staff, [state], "/console")
    return RedirectResponse(f"/console/campaigns/{created['id']}?created=1", status_code=303)


def siblings(request: Request, staff: Staff, campaign_id: str, currency: str) -> list[Any]:
    """The charity's other campaigns in the same currency: where remaining funds may move."""
    listed = campaigns.list_campaigns(current_mirror(request), LISTED, None, _charity_id(staff), None, None)
    return [c for c in listed.items if c.id != campaign_id and c.currency == currency]


def campaign_page(
    request: Request, staff: Staff, campaign_id: str, status: int = 200, **forms: Any
) -> HTMLResponse:
    """A campaign's page; `forms` are those shown back with their errors (donation,
    disbursement, grant, approver, rule, withdraw: (proposal ID, form), end_date, report,
    disposal)."""
    mirror = current_mirror(request)
    reader = reader_for(request)
    campaign_hex = ids.to_hex(campaign_id, "campaign")
    with reading("campaign", campaign_id):
        cp = campaigns.get_campaign(mirror, campaign_id)
        donations = campaigns.list_donations(mirror, campaign_id, RecordFilters(LISTED, None, order="oldest"))
        paid = campaigns.list_disbursements(mirror, campaign_id, RecordFilters(LISTED, None, order="newest"))
        # The charity's own labels for its approvers are shown to its staff (not public).
        proposed = approval_reads.proposals(mirror, campaign_hex=campaign_hex, labels_for=lambda _: True)
    rule = reads.rule_in_force(mirror, campaign_hex)
    approvers = approval_writes.approver_accounts(writes_of(request), staff.charity_hex or "")
    just_proposed = (forms.get("proposed_secret") or {}).get("id") or request.query_params.get("proposed", "")
    return page(
        request,
        staff,
        "campaign.html",
        status,
        reader=reader,
        lang_base=f"/console/campaigns/{cp.id}",
        cp=cp,
        donations=donations.items,
        more_donations=donations.next is not None,
        disbursements=paid.items,
        incoming=reads.incoming_grants(mirror, ids.to_hex(cp.id, "campaign")),
        grant=forms.get("grant"),
        grant_recorded=request.query_params.get("grant_recorded") == "1",
        channels=CHANNELS,
        donation=forms.get("donation") or Form(reader, {"channel": "bank-transfer"}, prefix="donation-"),
        disbursement=forms.get("disbursement")
        or Form(reader, {"allocation": "fifo"}, prefix="disbursement-"),
        created=request.query_params.get("created") == "1",
        closed_now=request.query_params.get("closed") == "1",
        rule=rule,
        approvers=approvers,
        proposals=proposed,
        approver=forms.get("approver") or Form(reader, prefix="approver-"),
        rule_form=forms.get("rule")
        or Form(
            reader,
            {
                "threshold": str(rule.threshold) if rule else "",
                "validity": str(rule.validity_hours) if rule else "168",
                "unit": "hours",
                "approvers": ",".join(rule.approvers) if rule else "",
            },
            prefix="rule-",
        ),
        withdraw=forms.get("withdraw"),
        empty_withdraw=lambda proposal_id: Form(reader, prefix=f"withdraw-{proposal_id}-"),
        just_proposed=next((p for p in proposed if p.id == just_proposed), None),
        proposed_secret=forms.get("proposed_secret"),
        rule_set=request.query_params.get("rule_set") == "1",
        withdrawn=request.query_params.get("withdrawn") == "1",
        **_disclosure(request, staff, cp, reader, forms),
    )


def _disclosure(
    request: Request, staff: Staff, cp: Any, reader: Reader, forms: dict[str, Any]
) -> dict[str, Any]:
    """The campaign page's Disclosure section: its calendar and its three forms."""
    shown = reads.disclosure(current_mirror(request), ids.to_hex(cp.id, "campaign"), reader.lang)
    ends_on = shown["ends_on"].isoformat() if shown and shown["ends_on"] else ""
    available = major_units(max(cp.available, 0), cp.currency)
    return {
        "disclosure": shown,
        "end_form": forms.get("end_date") or Form(reader, {"ends_on": ends_on}, prefix="end-"),
        "report_form": forms.get("report") or Form(reader, {"kind": "periodic"}, prefix="report-"),
        "disposal_form": forms.get("disposal")
        or Form(reader, {"disposition": "returned_to_donors", "amount": available}, prefix="disposal-"),
        "move_to": siblings(request, staff, cp.id, cp.currency),
        "end_set": request.query_params.get("end_set") == "1",
        "reported": request.query_params.get("reported") == "1",
        "disposed": request.query_params.get("disposed") == "1",
    }


@router.get("/campaigns/{campaign_id}", name="console_campaign")
def campaign(request: Request, campaign_id: str, staff: CharityStaff) -> HTMLResponse:
    canonical = own_campaign(writes_of(request), staff, campaign_id)
    return campaign_page(request, staff, canonical)


@router.post("/campaigns/{campaign_id}/close", name="console_close_campaign")
def close_campaign(request: Request, campaign_id: str, staff: PostingStaff) -> Response:
    writes = writes_of(request)
    canonical = own_campaign(writes, staff, campaign_id)
    reader = reader_for(request)
    try:
        _, state = campaign_writes.close(writes_for(request, staff), staff.principal, canonical, True)
    except Problem as problem:
        form = Form(reader, {"channel": "bank-transfer"}, prefix="donation-")
        form.fail("_form", explain.sentence(reader, problem, None))
        return campaign_page(request, staff, canonical, 409, donation=form)
    if prepared([state]):
        return sign_states(request, staff, [state], f"/console/campaigns/{canonical}")
    return RedirectResponse(f"/console/campaigns/{canonical}?closed=1", status_code=303)


@router.post("/campaigns/{campaign_id}/donations", name="console_record_donation")
def record_donation(request: Request, campaign_id: str, staff: PostingStaff, data: Posted) -> Response:
    """Record one donation; the answer is its receipt with the donor's secret and the
    reference, to print or hand over (never cached; the service keeps neither)."""
    writes = writes_of(request)
    canonical = own_campaign(writes, staff, campaign_id)
    reader = reader_for(request)
    mirror = current_mirror(request)
    currency = campaigns.get_campaign(mirror, canonical).currency
    form = form_of(reader, data, ("amount", "donor_reference", "channel"), prefix="donation-")
    amount = form.amount("amount", currency)
    donor = form.text("donor_reference")
    channel = form.value("channel") if form.value("channel") in CHANNELS else "unspecified"
    body = None
    if form.ok:
        try:
            body = DonationCreate.model_validate(
                {"campaign_id": canonical, "amount": amount, "donor_reference": donor, "channel": channel}
            )
        except ValidationError as exc:
            form.schema_errors(exc)
    if body is None:
        return campaign_page(request, staff, canonical, 422, donation=form)
    try:
        recorded, states = donation_writes.record(writes_for(request, staff), staff.principal, [body], True)
    except Problem as problem:
        form.fail("_form", explain.sentence(reader, problem, currency, amount))
        return campaign_page(request, staff, canonical, 409, donation=form)
    if prepared(states):
        secret = recorded[0]["receipt_secret"]
        receipt = {"id": recorded[0]["id"], "secret": secret, "reference": reference.parse(donor)}
        return sign_states(request, staff, states, f"/console/campaigns/{canonical}", receipt)
    given = Typed(recorded[0]["receipt_secret"], reference.parse(donor), None, None)
    return receipt_page(request, mirror, recorded[0]["id"], given, back=f"/console/campaigns/{canonical}")


@router.post("/campaigns/{campaign_id}/grants/{disbursement_id}", name="console_record_grant")
def record_grant(
    request: Request, campaign_id: str, disbursement_id: str, staff: PostingStaff, data: Posted
) -> Response:
    """One click: record (the rest of) a grant addressed to this campaign as a donation
    naming it. No donor, no receipt: the grant's commitment is public (core/ids.py)."""
    writes = writes_of(request)
    canonical = own_campaign(writes, staff, campaign_id)
    source = record_id(disbursement_id, "disbursement")
    reader = reader_for(request)
    currency = campaigns.get_campaign(current_mirror(request), canonical).currency
    form = form_of(reader, data, ("amount",), prefix="grant-")
    amount = form.amount("amount", currency)
    body = None
    if form.ok:
        try:
            body = DonationCreate.model_validate(
                {"campaign_id": canonical, "amount": amount, "source_disbursement_id": source}
            )
        except ValidationError as exc:
            form.schema_errors(exc)
    if body is None:
        form.fail("_form", form.errors.get("amount") or reader.t("refused.general"))
        return campaign_page(request, staff, canonical, 422, grant=form)
    try:
        _, states = donation_writes.record(writes_for(request, staff), staff.principal, [body], True)
    except Problem as problem:
        form.fail("_form", explain.sentence(reader, problem, currency, amount))
        return campaign_page(request, staff, canonical, 409, grant=form)
    if prepared(states):
        return sign_states(request, staff, states, f"/console/campaigns/{canonical}")
    return RedirectResponse(f"/console/campaigns/{canonical}?grant_recorded=1", status_code=303)


def _allocations(form: Form, data: FormData, currency: str) -> list[dict[str, Any]] | None:
    """The donations chosen on the form (`take:<DN-...>` fields with an amount), or None
    for first in, first out."""
    if form.value("allocation") != "chosen":
        return None
    chosen = []
    for name, value in data.multi_items():
        if not name.startswith("take:") or not isinstance(value, str) or not value.strip():
            continue
        field = name
        form.values[field] = value[:100]
        amount = form.amount(field, currency)
        if amount is not None:
            chosen.append({"donation_id": name[len("take:") :][:40], "amount": amount})
    if not chosen and form.ok:
        form.fail("allocation", form.reader.t("console.disburse.choose_none"))
    return chosen


@router.post(
    "/campaigns/{campaign_id}/disbursements", name="console_record_disbursement", max_body_size=FORM_BODY
)
def record_disbursement(request: Request, campaign_id: str, staff: PostingStaff, data: Posted) -> Response:
    writes = writes_of(request)
    canonical = own_campaign(writes, staff, campaign_id)
    reader = reader_for(request)
    currency = campaigns.get_campaign(current_mirror(request), canonical).currency
    form = form_of(
        reader,
        data,
        ("amount", "recipient", "recipient_person", "recipient_campaign", "purpose", "allocation"),
        prefix="disbursement-",
    )
    # "To a campaign on this ledger": its ID (CP-...), checked by the schema and the contract.
    to_campaign = form.value("recipient_campaign").strip()
    # A private person's details: used for the commitment below, never shown back (a form
    # with an error comes back without them), stored or logged.
    person = form.values.pop("recipient_person").strip()
    amount = form.amount("amount", currency)
    recipient = form.value("recipient").strip()
    if recipient and person:
        form.fail("recipient", reader.t("console.disburse.one_recipient"))
    elif not person:
        recipient = form.text("recipient")
    purpose = form.text("purpose")
    allocations = _allocations(form, data, currency)
    chosen = sum(a["amount"] for a in allocations or [])
    if allocations and amount is not None and chosen != amount:
        said = reader.t(
            "console.disburse.sum",
            chosen=reader.money(chosen, currency),
            amount=reader.money(amount, currency),
        )
        form.fail("allocation", said)
    body = None
    if form.ok:
        try:
            body = DisbursementCreate.model_validate(
                {
                    "campaign_id": canonical,
                    "amount": amount,
                    **({"recipient_person": {"reference": person}} if person else {"recipient": recipient}),
                    "purpose": purpose,
                    "allocations": allocations,
                    **({"recipient_campaign_id": to_campaign} if to_campaign else {}),
                }
            )
        except ValidationError as exc:
            form.schema_errors(
                exc, {"allocations": "allocation", "recipient_campaign_id": "recipient_campaign"}
            )
            if "recipient_person" in form.errors:  # shown at the field the details were typed in
                form.errors["recipient_person"] = form.errors.pop("recipient_person")
    if body is None:
        return campaign_page(request, staff, canonical, 422, disbursement=form)
    try:
        created, state = disbursement_writes.record(writes_for(request, staff), staff.principal, body, True)
    except Problem as problem:
        form.fail("_form", explain.sentence(reader, problem, currency, amount))
        return campaign_page(request, staff, canonical, 409, disbursement=form)
    slip = {"id": created["id"], "secret": created["recipient_secret"]} if person else None
    if created.get("status") == "proposed":
        # A proposal, not a payment: nothing is paid or counted until its approvals are in.
        # Its page is the campaign's (there is no disbursement yet to show or slip to print).
        back = f"/console/campaigns/{canonical}"
        if prepared([state]):
            return sign_states(request, staff, [state], back)
        if slip is not None:
            return campaign_page(request, staff, canonical, 201, proposed_secret=slip)
        return RedirectResponse(f"{back}?proposed={created['id']}#approvals-heading", status_code=303)
    if prepared([state]):
        return sign_states(request, staff, [state], f"/console/disbursements/{created['id']}", slip=slip)
    if slip is not None:
        return slip_page(request, staff, slip["id"], slip["secret"])
    return RedirectResponse(f"/console/disbursements/{created['id']}?recorded=1", status_code=303)


def _own_disbursement(
    request: Request, staff: Staff, disbursement_id: str
) -> disbursement_writes.EvidenceTarget:
    canonical = record_id(disbursement_id, "disbursement")
    try:
        return disbursement_writes.evidence_target(writes_of(request), staff.principal, canonical)
    except NotFound:
        raise PageError(404, "disbursement", canonical) from None


def _disbursement_page(
    request: Request,
    staff: Staff,
    target: disbursement_writes.EvidenceTarget,
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    mirror: Mirror = current_mirror(request)
    with reading("disbursement", target.disbursement_id):
        b = funding(mirror, target.disbursement_id)
    return page(
        request,
        staff,
        "disbursement.html",
        status,
        lang_base=f"/console/disbursements/{b.id}",
        b=b,
        recorded=request.query_params.get("recorded") == "1",
        uploaded=extra.get("uploaded"),
        upload_error=extra.get("upload_error"),
        withdrawn=extra.get("withdrawn"),
        linked=extra.get("linked"),
        withdraw_error=extra.get("withdraw_error"),
        withdraw_sha=extra.get("withdraw_sha"),
        max_documents=disbursement_writes.MAX_DOCUMENTS,
        max_mb=disbursement_writes.MAX_DOCUMENT // (1024 * 1024),
    )


@router.get("/disbursements/{disbursement_id}", name="console_disbursement")
def disbursement(request: Request, disbursement_id: str, staff: CharityStaff) -> HTMLResponse:
    return _disbursement_page(request, staff, _own_disbursement(request, staff, disbursement_id))


@router.post(
    "/disbursements/{disbursement_id}/evidence",
    name="console_upload_evidence",
    max_body_size=disbursement_writes.EVIDENCE_BODY,
)
async def upload_evidence(request: Request, disbursement_id: str, staff: CharityStaff) -> Response:
    """Several documents at once: the session and the disbursement are checked before the
    body is read, the CSRF token before any document is kept; the answer lists each
    file's name, type, size and SHA-256, as anchored."""
    target = await run_in_threadpool(_own_disbursement, request, staff, disbursement_id)
    reader = reader_for(request)
    try:
        data = await request.form(
            max_files=disbursement_writes.MAX_DOCUMENTS, max_fields=disbursement_writes.MAX_DOCUMENTS + 2
        )
    except HTTPException:
        raise PageError(422, "form") from None
    try:
        check_csrf(staff, data)
        await run_in_threadpool(first_time, request, staff, data)
        uploads = [
            item
            for name, item in data.multi_items()
            if name == "files" and isinstance(item, UploadFile) and (item.filename or item.size)
        ]
        types = {id(u): (u.content_type or "application/octet-stream")[:100] for u in uploads}
        if not uploads:
            error = reader.t("console.evidence.none")
            return await run_in_threadpool(
                _disbursement_page, request, staff, target, 422, upload_error=error
            )
        visibility = str(data.get("visibility") or documents.PUBLIC)
        if visibility not in documents.VISIBILITIES:
            raise PageError(422, "form")
        try:
            anchored, states = await run_in_threadpool(
                disbursement_writes.anchor, writes_for(request, staff), target, uploads, True, visibility
            )
        except Problem as problem:
            error = problem.detail if problem.status == 422 else explain.sentence(reader, problem, None)
            return await run_in_threadpool(
                _disbursement_page, request, staff, target, problem.status, upload_error=error
            )
        shown = [
            {**document, "type": types[id(upload)]}
            for document, upload in zip(anchored["documents"], uploads, strict=True)
        ]
        if prepared(states):
            next_path = f"/console/disbursements/{target.disbursement_id}"
            return await run_in_threadpool(sign_states, request, staff, states, next_path)
    finally:
        await data.close()
    return await run_in_threadpool(_disbursement_page, request, staff, target, 201, uploaded=shown)


@router.post(
    "/disbursements/{disbursement_id}/evidence/{sha256}/redacted-copy",
    name="console_redacted_copy",
    max_body_size=disbursement_writes.MAX_DOCUMENT + 1024 * 1024,
)
async def redacted_copy(request: Request, disbursement_id: str, sha256: str, staff: CharityStaff) -> Response:
    """Publish a redacted copy of a document (restricted originals' public face), linked on chain."""
    target = await run_in_threadpool(_own_disbursement, request, staff, disbursement_id)
    reader = reader_for(request)
    try:
        data = await request.form(max_files=1, max_fields=3)
    except HTTPException:
        raise PageError(422, "form") from None
    try:
        check_csrf(staff, data)
        await run_in_threadpool(first_time, request, staff, data)
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise PageError(404, "disbursement", target.disbursement_id)
        upload = data.get("file")
        if not isinstance(upload, UploadFile) or not (upload.filename or upload.size):
            error = reader.t("console.evidence.none")
            return await run_in_threadpool(
                _disbursement_page, request, staff, target, 422, withdraw_error=error, withdraw_sha=sha256
            )
        try:
            _, states = await run_in_threadpool(
                disbursement_writes.link_copy, writes_for(request, staff), target, sha256, upload, True
            )
        except Problem as problem:
            error = problem.detail if problem.status == 422 else explain.sentence(reader, problem, None)
            return await run_in_threadpool(
                _disbursement_page,
                request,
                staff,
                target,
                problem.status,
                withdraw_error=error,
                withdraw_sha=sha256,
            )
        if prepared(states):
            next_path = f"/console/disbursements/{target.disbursement_id}"
            return await run_in_threadpool(sign_states, request, staff, states, next_path)
    finally:
        await data.close()
    return await run_in_threadpool(_disbursement_page, request, staff, target, 201, linked=sha256)


@router.post(
    "/disbursements/{disbursement_id}/evidence/{sha256}/withdrawal", name="console_withdraw_evidence"
)
async def withdraw_evidence(
    request: Request, disbursement_id: str, sha256: str, staff: CharityStaff
) -> Response:
    """Withdraw (erase) a document with a reason that goes on chain for everyone to read."""
    target = await run_in_threadpool(_own_disbursement, request, staff, disbursement_id)
    reader = reader_for(request)
    data = await request.form(max_files=0, max_fields=4)
    try:
        check_csrf(staff, data)
        await run_in_threadpool(first_time, request, staff, data)
        reason = str(data.get("reason") or "").strip()
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise PageError(404, "disbursement", target.disbursement_id)
        try:
            body = EvidenceWithdrawal(reason=reason)
        except ValidationError:
            error = reader.t("console.evidence.reason_invalid")
            return await run_in_threadpool(
                _disbursement_page, request, staff, target, 422, withdraw_error=error, withdraw_sha=sha256
            )
        try:
            _, states = await run_in_threadpool(
                disbursement_writes.withdraw, writes_for(request, staff), target, sha256, body.reason, True
            )
        except Problem as problem:
            error = problem.detail if problem.status == 422 else explain.sentence(reader, problem, None)
            return await run_in_threadpool(
                _disbursement_page,
                request,
                staff,
                target,
                problem.status,
                withdraw_error=error,
                withdraw_sha=sha256,
            )
        if prepared(states):
            next_path = f"/console/disbursements/{target.disbursement_id}"
            return await run_in_threadpool(sign_states, request, staff, states, next_path)
    finally:
        await data.close()
    return await run_in_threadpool(_disbursement_page, request, staff, target, 201, withdrawn=sha256)


def _own_donation(request: Request, staff: Staff, donation_id: str) -> tuple[str, str]:
    """(canonical donation ID, its campaign) if the donation is the charity's; else 404."""
    canonical = record_id(donation_id, "donation")
    writes = writes_of(request)
    try:
        view = writes.view("donationOf", ids.to_bytes32(canonical), missing="donation")
        campaign_id = ids.from_bytes32(bytes(view[0]))
        if writes.charity_of_campaign(campaign_id) != staff.charity_hex:
            raise NotFound("donation not found")
    except NotFound:
        raise PageError(404, "donation", canonical) from None
    return canonical, campaign_id


def _refund_page(
    request: Request, staff: Staff, donation_id: str, campaign_id: str, form: Form | None, status: int = 200
) -> HTMLResponse:
    mirror = current_mirror(request)
    reader = reader_for(request)
    with reading("donation", donation_id):
        cp = campaigns.get_campaign(mirror, campaign_id)
        listed = campaigns.list_donations(mirror, campaign_id, RecordFilters(LISTED, None, order="oldest"))
    found = [d for d in listed.items if d.id == donation_id]
    return page(
        request,
        staff,
        "refund.html",
        status,
        reader=reader,
        lang_base=f"/console/donations/{donation_id}/refund",
        cp=cp,
        donation_id=donation_id,
        d=found[0] if found else None,
        form=form or Form(reader, prefix="refund-"),
    )


@router.get("/donations/{donation_id}/refund", name="console_refund_form")
def refund_form(request: Request, donation_id: str, staff: CharityStaff) -> HTMLResponse:
    canonical, campaign_id = _own_donation(request, staff, donation_id)
    return _refund_page(request, staff, canonical, campaign_id, None)


@router.post("/donations/{donation_id}/refund", name="console_refund")
def refund(request: Request, donation_id: str, staff: PostingStaff, data: Posted) -> Response:
    canonical, campaign_id = _own_donation(request, staff, donation_id)
    reader: Reader = reader_for(request)
    currency = campaigns.get_campaign(current_mirror(request), campaign_id).currency
    form = form_of(reader, data, ("amount", "reason"), prefix="refund-")
    amount = form.amount("amount", currency)
    reason = form.text("reason")
    body = None
    if form.ok:
        try:
            body = RefundCreate.model_validate({"amount": amount, "reason": reason})
        except ValidationError as exc:
            form.schema_errors(exc)
    if body is None:
        return _refund_page(request, staff, canonical, campaign_id, form, 422)
    try:
        _, state = donation_writes.refund(
            writes_for(request, staff), staff.principal, canonical, body.amount, body.reason, True
        )
    except Problem as problem:
        form.fail("_form", explain.sentence(reader, problem, currency, amount))
        return _refund_page(request, staff, canonical, campaign_id, form, 409)
    if prepared([state]):
        return sign_states(request, staff, [state], f"/console/campaigns/{campaign_id}")
    return RedirectResponse(f"/console/campaigns/{campaign_id}?refunded=1", status_code=303)


__all__ = ["router"]
