"""Disclosure on time in the console: a campaign's end date, its reports and what becomes
of its remaining funds, on the campaign's page (the dashboard lists what is due).

1. Each form calls the same service as its JSON route (`disclosure.service`: `set_end`,
   `publish_report`, `record_disposal`) with the session's principal, through
   `writes_for`, so a self-custody charity gets the sign page like every other write.
2. A report is uploaded as a file and only its SHA-256 is computed here and anchored: the
   file itself is not kept (the evidence store keeps documents of disbursements, not of
   campaigns). The form says the report must be published where donors read it (慈善中国)
   and that it is public: no personal data in it. A disposal's decision document, if one
   is given, is hashed the same way.
3. What is wrong with a field is said at the field (a reversed period, a rule missing for
   funds kept under a rule, a campaign to move to that is not the charity's in the same
   currency); a contract refusal (CampaignNotClosed, ReportAlreadyExists, ...) is a
   sentence in the reader's language (`explain.py`). Nothing is written on an error.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from ledger_api.campaigns import reads as campaigns
from ledger_api.console import explain, reads
from ledger_api.console.forms import Form, form_of
from ledger_api.console.routes import campaign_page, own_campaign, siblings, writes_for
from ledger_api.console.sessions import Staff
from ledger_api.console.signing import prepared, sign_states
from ledger_api.console.web import (
    CharityStaff,
    ConsoleRoute,
    Posted,
    PostingStaff,
    check_csrf,
    first_time,
    writes_of,
)
from ledger_api.core import ids
from ledger_api.core.errors import Problem
from ledger_api.disclosure import service
from ledger_api.disclosure.schemas import EARLIEST, LATEST, DisposalRecord, EndDateSet, ReportPublish
from ledger_api.mirror.gateway import current_mirror
from ledger_api.pages.i18n import reader_for
from ledger_api.pages.routes import PageError

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)
MAX_REPORT = 25 * 1024 * 1024  # a report or decision document hashed here (the evidence limit)
REPORT_BODY = MAX_REPORT + 64 * 1024
CHUNK = 1024 * 1024
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ZERO = re.compile(r"^0+(\.0+)?$")


def _date(form: Form, name: str) -> date | None:
    """A date typed as YYYY-MM-DD (what <input type=date> sends), or None with its error."""
    text = form.value(name).strip()
    if not text:
        form.fail(name, form.reader.t("field_error.required"))
        return None
    try:
        if not DATE.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        form.fail(name, form.reader.t("console.disclosure.date_invalid"))
        return None
    if not EARLIEST <= day <= LATEST:  # what the API and the contract take
        form.fail(name, form.reader.t("console.disclosure.date_range"))
        return None
    return day


def _sha256(upload: UploadFile) -> str | None:
    """The SHA-256 of an uploaded file, read in chunks; None when it is over the limit."""
    digest, size = hashlib.sha256(), 0
    upload.file.seek(0)
    while chunk := upload.file.read(CHUNK):
        size += len(chunk)
        if size > MAX_REPORT:
            return None
        digest.update(chunk)
    return digest.hexdigest()


def _file(form: Form, data: FormData, name: str, required: bool) -> str | None:
    """The hash of the file posted as `name` (its error at the field), or None."""
    upload = data.get(name)
    if not isinstance(upload, UploadFile) or not (upload.filename or upload.size):
        if required:
            form.fail(name, form.reader.t("console.disclosure.file_required"))
        return None
    found = _sha256(upload)
    if found is None:
        form.fail(name, form.reader.t("console.disclosure.file_too_large", mb=MAX_REPORT // CHUNK))
    return found


def _done(request: Request, staff: Staff, canonical: str, states: list[Any], flag: str) -> Response:
    if prepared(states):
        return sign_states(request, staff, states, f"/console/campaigns/{canonical}")
    return RedirectResponse(f"/console/campaigns/{canonical}?{flag}=1#disclosure-heading", status_code=303)


async def _multipart(request: Request, staff: Staff) -> FormData:
    try:
        data = await request.form(max_files=1, max_fields=12)
    except HTTPException:
        raise PageError(422, "form") from None
    try:
        check_csrf(staff, data)
        await run_in_threadpool(first_time, request, staff, data)
    except BaseException:
        await data.close()
        raise
    return data


# ------------------------------------------------------------------ the end date


@router.post("/campaigns/{campaign_id}/end-date", name="console_set_end_date")
def set_end_date(request: Request, campaign_id: str, staff: PostingStaff, data: Posted) -> Response:
    """Set the campaign's end date; a change of one already set needs its public reason."""
    writes = writes_of(request)
    canonical = own_campaign(writes, staff, campaign_id)
    reader = reader_for(request)
    form = form_of(reader, data, ("ends_on", "reason"), prefix="end-")
    ends_on = _date(form, "ends_on")
    reason = form.value("reason").strip()
    shown = reads.disclosure(current_mirror(request), ids.to_hex(canonical, "campaign"), reader.lang)
    if shown is not None and shown["ends_on"] is not None and not reason:
        form.fail("reason", reader.t("console.disclosure.reason_needed"))
    body = None
    if form.ok:
        try:
            body = EndDateSet.model_validate({"ends_on": ends_on, "reason": reason or None})
        except ValidationError as exc:
            form.schema_errors(exc)
    if body is None:
        return campaign_page(request, staff, canonical, 422, end_date=form)
    ruleset = reads.disclosure_rules(current_mirror(request))
    try:
        _, state = service.set_end(
            writes_for(request, staff), staff.principal, ruleset, canonical, body, True
        )
    except Problem as problem:
        form.fail("_form", explain.sentence(reader, problem, None))
        return campaign_page(request, staff, canonical, _status(problem), end_date=form)
    return _done(request, staff, canonical, [state], "end_set")


def _status(problem: Problem) -> int:
    return 422 if problem.status == 422 else 409


# ------------------------------------------------------------------ a report


@router.post("/campaigns/{campaign_id}/reports", name="console_publish_report", max_body_size=REPORT_BODY)
async def publish_report(request: Request, campaign_id: str, staff: CharityStaff) -> Response:
    """Publish a report: the uploaded file's SHA-256 is anchored with its kind and period."""
    canonical = await run_in_threadpool(own_campaign, writes_of(request), staff, campaign_id)
    data = await _multipart(request, staff)
    try:
        return await run_in_threadpool(_publish_report, request, staff, canonical, data)
    finally:
        await data.close()


def _publish_report(request: Request, staff: Staff, canonical: str, data: FormData) -> Response:
    reader = reader_for(request)
    form = form_of(reader, data, ("kind", "period_start", "period_end"), prefix="report-")
    kind = form.value("kind")
    if kind not in service.REPORT_KINDS:
        form.fail("kind", reader.t("field_error.required"))
    start, end = _date(form, "period_start"), _date(form, "period_end")
    if start is not None and end is not None and end < start:
        form.fail("period_end", reader.t("console.disclosure.period_reversed"))
    sha = _file(form, data, "file", required=True)
    body = None
    if form.ok:
        try:
            body = ReportPublish.model_validate(
                {"kind": kind, "period_start": start, "period_end": end, "document_sha256": sha}
            )
        except ValidationError as exc:
            form.schema_errors(exc, {"document_sha256": "file"})
    if body is None:
        return campaign_page(request, staff, canonical, 422, report=form)
    ruleset = reads.disclosure_rules(current_mirror(request))
    try:
        _, state = service.publish_report(
            writes_for(request, staff), staff.principal, ruleset, canonical, body, True
        )
    except Problem as problem:
        form.fail("_form", explain.sentence(reader, problem, None))
        return campaign_page(request, staff, canonical, _status(problem), report=form)
    return _done(request, staff, canonical, [state], "reported")


# ------------------------------------------------------------------ remaining funds


@router.post("/campaigns/{campaign_id}/disposals", name="console_record_disposal", max_body_size=REPORT_BODY)
async def record_disposal(request: Request, campaign_id: str, staff: CharityStaff) -> Response:
    """Record what becomes of a closed campaign's remaining funds."""
    canonical = await run_in_threadpool(own_campaign, writes_of(request), staff, campaign_id)
    data = await _multipart(request, staff)
    try:
        return await run_in_threadpool(_record_disposal, request, staff, canonical, data)
    finally:
        await data.close()


def _record_disposal(request: Request, staff: Staff, canonical: str, data: FormData) -> Response:
    reader = reader_for(request)
    currency = campaigns.get_campaign(current_mirror(request), canonical).currency
    form = form_of(reader, data, ("disposition", "amount", "target", "rule"), prefix="disposal-")
    disposition = form.value("disposition")
    if disposition not in service.DISPOSITIONS:
        form.fail("disposition", reader.t("field_error.required"))
    amount = 0 if ZERO.fullmatch(form.value("amount").strip()) else form.amount("amount", currency)
    target = form.value("target").strip()
    rule = form.value("rule").strip()
    if disposition == "moved_to_campaign":
        if target not in {c.id for c in siblings(request, staff, canonical, currency)}:
            form.fail("target", reader.t("console.disclosure.target_needed"))
    else:
        target = ""
    rule = form.text("rule") if disposition == "kept_under_rule" else ""
    sha = _file(form, data, "file", required=False)
    body = None
    if form.ok:
        try:
            body = DisposalRecord.model_validate(
                {
                    "disposition": disposition,
                    "amount": amount,
                    "target_campaign_id": target or None,
                    "rule": rule or None,
                    "document_sha256": sha,
                }
            )
        except ValidationError as exc:
            form.schema_errors(exc, {"target_campaign_id": "target", "document_sha256": "file"})
    if body is None:
        return campaign_page(request, staff, canonical, 422, disposal=form)
    try:
        _, state = service.record_disposal(writes_for(request, staff), staff.principal, canonical, body, True)
    except Problem as problem:
        form.fail("_form", explain.sentence(reader, problem, currency, amount))
        return campaign_page(request, staff, canonical, _status(problem), disposal=form)
    return _done(request, staff, canonical, [state], "disposed")


__all__ = ["router"]
