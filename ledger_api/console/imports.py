"""Imports from bank statements in the console, on the imports service
(`ledger_api/imports/`): upload a CSV or XLSX with a saved profile or a column mapping
(saved as a named profile for next month), the preview with every row's verdict and the
totals per campaign, the commit (a background job, as `POST /v1/imports/{id}/commit`)
with a progress page that refreshes itself (`<meta http-equiv="refresh">`, no script),
the report CSV, and the statement check with the unmatched rows on either side."""

from __future__ import annotations

import re
from datetime import date
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ledger_api.campaigns import reads as campaigns
from ledger_api.console import explain
from ledger_api.console.forms import Form, form_of
from ledger_api.console.sessions import Staff
from ledger_api.console.web import (
    CharityStaff,
    ConsoleRoute,
    PostingStaff,
    check_csrf,
    first_time,
    page,
    writes_of,
)
from ledger_api.core import ids
from ledger_api.core.errors import ContractRejected, NotFound, Problem
from ledger_api.imports import profiles, reading, schemas, service
from ledger_api.imports.guess import guess
from ledger_api.imports.schemas import Mapping, RowVerdict
from ledger_api.mirror.gateway import current_mirror
from ledger_api.pages.i18n import N_, Reader, reader_for
from ledger_api.pages.routes import PageError

router = APIRouter(prefix="/console/imports", include_in_schema=False, route_class=ConsoleRoute)
IMPORT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
UPLOAD_BODY = reading.MAX_FILE + 256 * 1024
# The mapping's fields, in the form's order (the statement's own column headings).
COLUMNS = ("date", "bank_reference", "payer_reference", "amount", "credit", "debit", "balance", "refund_of")
AMOUNT_COLUMNS = {"amount", "credit", "debit"}
# The API's rule for a profile's name, so what the console saves can be fetched and used
# by `ledger import --profile` too.
PROFILE_NAME = re.compile(schemas.PROFILE_NAME)
SHOWN = 1000  # rows on one preview page (the problems first)
REFRESH = 2  # seconds between the progress page's reloads while the commit runs
VERDICTS = (
    N_("import.verdict.record"),
    N_("import.verdict.recorded"),
    N_("import.verdict.duplicate"),
    N_("import.verdict.invalid"),
    N_("import.verdict.would_revert"),
    N_("import.verdict.outgoing"),
    N_("import.verdict.refund"),
    N_("import.state.previewed"),
    N_("import.state.queued"),
    N_("import.state.running"),
    N_("import.state.done"),
    N_("import.state.failed"),
    N_("import.map.date"),
    N_("import.map.bank_reference"),
    N_("import.map.payer_reference"),
    N_("import.map.amount"),
    N_("import.map.credit"),
    N_("import.map.debit"),
    N_("import.map.balance"),
    N_("import.map.refund_of"),
)


CODES = (
    N_("import.code.amount-too-precise"),
    N_("import.code.amount-not-a-number"),
    N_("import.code.amount-empty"),
    N_("import.code.amount-zero"),
    N_("import.code.amount-too-large"),
    N_("import.code.date-invalid"),
    N_("import.code.bank-reference-missing"),
    N_("import.code.campaign-missing"),
    N_("import.code.campaign-id-invalid"),
    N_("import.code.already-imported"),
    N_("import.code.duplicate-in-file"),
    N_("import.code.outgoing"),
    N_("import.code.channel-invalid"),
    N_("import.code.donation-id-invalid"),
    N_("import.code.bank-reference-invalid"),
    N_("import.code.payer-reference-invalid"),
    N_("import.code.refund-interrupted"),
)
# What is wrong with the file as a whole, or with what was asked of an import (the service's
# `code` on its 422 and 409 problems), in words; an unknown code keeps the service's text.
PROBLEMS = (
    N_("import.problem.file-too-large"),
    N_("import.problem.empty-file"),
    N_("import.problem.binary-file"),
    N_("import.problem.undecodable"),
    N_("import.problem.bad-csv"),
    N_("import.problem.too-many-rows"),
    N_("import.problem.too-many-columns"),
    N_("import.problem.cell-too-long"),
    N_("import.problem.no-header"),
    N_("import.problem.bad-xlsx"),
    N_("import.problem.xlsx-too-large"),
    N_("import.problem.column-missing"),
    N_("import.problem.import-running"),
    N_("import.problem.not-previewed"),
    N_("import.problem.self-custody"),
)


def said_problem(reader: Reader, problem: Problem) -> str:
    """An import's refusal in the reader's language (its code and parameters), else the
    service's own message."""
    params = problem.extra.get("params")
    params = params if isinstance(params, dict) else {}
    return _said(reader, problem.extra.get("code"), params, problem.detail)


def _said(reader: Reader, code: Any, params: dict[str, Any], fallback: str) -> str:
    key = f"import.problem.{code}"
    if key not in PROBLEMS:
        return fallback
    limit = params.get("limit")
    return reader.t(
        key,
        line=params.get("line", ""),
        limit=reader.count(limit) if isinstance(limit, int) else "",
        column=params.get("column", ""),
    )


def said(reader: Reader, row: RowVerdict, currency: str | None) -> str:
    """Why a row is not recorded, in the reader's language: the imports service's codes
    we have words for, a would-be revert as the console says it, else its own message."""
    key = f"import.code.{row.code}"
    if key in CODES:
        params = row.params or {}
        return reader.t(
            key,
            line=row.line,
            column=row.column or "—",
            decimals=params.get("decimals", ""),
            allowed=params.get("allowed", ""),
            donation_id=params.get("donation_id", row.donation_id or ""),
            first_line=params.get("first_line", ""),
        )
    if row.verdict == "would_revert" and row.code:
        problem = ContractRejected(row.message or row.code, error={"name": row.code, "args": row.params})
        return explain.sentence(reader, problem, currency)
    return row.message or ""


def _charity_campaigns(request: Request, staff: Staff) -> list[Any]:
    charity = ids.from_bytes32(staff.charity_hex or "")
    return campaigns.list_campaigns(current_mirror(request), 200, None, charity, None, None).items


def _imports_page(request: Request, staff: Staff, status: int = 200, **extra: Any) -> HTMLResponse:
    reader = reader_for(request)
    writes = writes_of(request)
    return page(
        request,
        staff,
        "imports.html",
        status,
        reader=reader,
        lang_base="/console/imports",
        imports=service.list_imports(writes, staff.principal),
        saved=profiles.list_all(writes.engine, writes.deployment_id, staff.charity_hex or ""),
        campaigns=_charity_campaigns(request, staff),
        columns=COLUMNS,
        mapping=extra.get("mapping") or Form(reader, {"units": "major"}, prefix="map-"),
        headings=extra.get("headings"),
    )


@router.get("", name="console_imports")
def imports(request: Request, staff: CharityStaff) -> HTMLResponse:
    return _imports_page(request, staff)


def _fill_in_guesses(form: Form, content: bytes, filename: str) -> list[str] | None:
    """Fill the column fields she left empty with what the statement's headings say they
    are (imports/guess.py: 交易日期, 收入金额, 对方户名...), so a common bank export needs
    nothing typed; what she typed wins, and an amount she named is never second-guessed.
    A file that cannot be read is refused at its field, saying why. The headings found are
    returned (to show beside the form when something is still missing)."""
    try:
        header = reading.read(content, filename).header
    except reading.UnreadableFile as exc:
        form.fail("file", _said(form.reader, exc.code, exc.params, exc.message))
        return None
    typed = {name for name in COLUMNS if form.value(name).strip()}
    taken = {form.value(name).strip() for name in typed}
    for name, heading in guess(header).items():
        if name in typed or heading in taken:
            continue
        if name in AMOUNT_COLUMNS and typed & AMOUNT_COLUMNS:
            continue
        form.values[name] = heading
    return header


def _mapping(form: Form, staff: Staff, request: Request) -> Mapping | None:
    """The mapping typed on the form (each field a heading of the statement), or None
    with the fields' errors set."""
    reader = form.reader
    values = {name: form.value(name).strip() for name in COLUMNS if form.value(name).strip()}
    for required in ("bank_reference", "payer_reference"):
        if required not in values:
            form.fail(required, reader.t("field_error.required"))
    if not {"amount", "credit", "debit"} & set(values):
        form.fail("amount", reader.t("import.map.amount_needed"))
    campaign = form.value("campaign_id").strip()
    if not campaign:
        form.fail("campaign_id", reader.t("field_error.required"))
    if not form.ok:
        return None
    try:
        return Mapping.model_validate(
            {
                **values,
                "units": "minor" if form.value("units") == "minor" else "major",
                "campaign_id": campaign,
            }
        )
    except ValidationError as exc:
        form.schema_errors(exc)
        return None


@router.post("", name="console_upload_statement", max_body_size=UPLOAD_BODY)
async def upload(request: Request, staff: CharityStaff) -> Response:
    """Preview a statement: read with the saved profile chosen, or with the mapping typed
    (saved under a name if one is given); nothing is sent."""
    reader = reader_for(request)
    try:
        data = await request.form(max_files=1, max_fields=len(COLUMNS) + 8)
    except HTTPException:
        raise PageError(422, "form") from None
    try:
        check_csrf(staff, data)
        await run_in_threadpool(first_time, request, staff, data)
        names = (*COLUMNS, "units", "campaign_id", "profile", "save_as")
        form = form_of(reader, data, names, prefix="map-")
        upload = data.get("file")
        content = await upload.read(reading.MAX_FILE + 1) if isinstance(upload, UploadFile) else b""
        filename = (upload.filename or "statement") if isinstance(upload, UploadFile) else "statement"
    finally:
        await data.close()
    if not content:
        form.fail("file", reader.t("import.file_needed"))
    writes = writes_of(request)
    charity_hex = staff.charity_hex or ""
    chosen = form.value("profile").strip()
    mapping: Mapping | None = None
    header: list[str] | None = None
    if chosen:
        try:
            mapping = profiles.mapping_of(writes.engine, writes.deployment_id, charity_hex, chosen)
        except NotFound:
            form.fail("profile", reader.t("field_error.invalid"))
    else:
        header = await run_in_threadpool(_fill_in_guesses, form, content, filename) if content else None
        mapping = _mapping(form, staff, request)
    save_as = form.value("save_as").strip()
    if save_as and not PROFILE_NAME.match(save_as):
        form.fail("save_as", reader.t("field_error.invalid"))
    if mapping is None or not form.ok:
        shown = partial(_imports_page, request, staff, 422, mapping=form, headings=header)
        return await run_in_threadpool(shown)
    try:
        preview = await run_in_threadpool(
            service.preview, writes, staff.principal, filename, content, mapping
        )
        if save_as and not chosen:  # a mapping that read the file: kept for next month
            await run_in_threadpool(
                profiles.put, writes.engine, writes.deployment_id, charity_hex, save_as, mapping
            )
    except Problem as problem:
        params = problem.extra.get("params")
        headings = params.get("header") if isinstance(params, dict) else None
        form.fail("file", said_problem(reader, problem))
        status = problem.status
    else:
        return RedirectResponse(f"/console/imports/{preview.id}", status_code=303)
    again = partial(_imports_page, request, staff, status, mapping=form, headings=headings)
    return await run_in_threadpool(again)


def _import_id(import_id: str) -> str:
    if not IMPORT_ID.fullmatch(import_id):
        raise PageError(404, "page")
    return import_id


def _show(
    request: Request, staff: Staff, import_id: str, offset: int, status: int = 200, error: str | None = None
) -> HTMLResponse:
    writes = writes_of(request)
    try:
        shown = service.show(writes, staff.principal, _import_id(import_id), offset, SHOWN)
    except NotFound:
        raise PageError(404, "page") from None
    running = shown.progress.state in ("queued", "running")
    response = page(
        request,
        staff,
        "import.html",
        status,
        lang_base=f"/console/imports/{shown.id}",
        p=shown,
        offset=offset,
        shown=SHOWN,
        refresh=REFRESH if running else None,
        error=error,
        currencies={t.campaign_id: t.currency for t in shown.totals},
        said=said,
        names={c.id: c.name for c in _charity_campaigns(request, staff)},
    )
    return response


@router.get("/{import_id}", name="console_import")
def show(
    request: Request,
    import_id: str,
    staff: CharityStaff,
    background: BackgroundTasks,
    offset: Annotated[int, Query(ge=0, le=reading.MAX_ROWS)] = 0,
) -> HTMLResponse:
    """The preview (every row's verdict, problems first, 1,000 a page) and, once committed,
    the progress: the page reloads itself every few seconds while the commit runs. A
    commit whose process died (its heartbeat stopped) is taken over and resumed here, as
    the API's GET does: the reloading page is what a bookkeeper watches."""
    writes = writes_of(request)
    try:
        if service.take_over(writes, staff.principal, _import_id(import_id)):
            background.add_task(service.run_commit, writes, staff.principal, import_id)
    except NotFound:
        raise PageError(404, "page") from None
    return _show(request, staff, import_id, offset)


@router.post("/{import_id}/commit", name="console_commit_import")
def commit(request: Request, import_id: str, staff: PostingStaff, background: BackgroundTasks) -> Response:
    writes = writes_of(request)
    try:
        service.start_commit(writes, staff.principal, _import_id(import_id))
    except NotFound:
        raise PageError(404, "page") from None
    except Problem as problem:
        return _show(request, staff, import_id, 0, problem.status, said_problem(reader_for(request), problem))
    background.add_task(service.run_commit, writes, staff.principal, import_id)
    return RedirectResponse(f"/console/imports/{import_id}", status_code=303, background=background)


@router.post("/{import_id}/delete", name="console_delete_import")
def delete(request: Request, import_id: str, staff: PostingStaff) -> Response:
    try:
        service.remove(writes_of(request), staff.principal, _import_id(import_id))
    except NotFound:
        raise PageError(404, "page") from None
    except Problem as problem:
        return _show(request, staff, import_id, 0, problem.status, said_problem(reader_for(request), problem))
    return RedirectResponse("/console/imports", status_code=303)


@router.get("/{import_id}/report.csv", name="console_import_report")
def report(request: Request, import_id: str, staff: CharityStaff) -> Response:
    """Which row became which donation, with the receipt secrets (spreadsheet-safe cells)."""
    writes = writes_of(request)
    checked = _import_id(import_id)
    try:
        service.show(writes, staff.principal, checked, 0, 1)  # 404 before the stream starts
    except NotFound:
        raise PageError(404, "page") from None
    return StreamingResponse(
        service.report_csv(writes, staff.principal, checked),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{checked}.csv"'},
    )


@router.get("/{import_id}/check", name="console_statement_check")
def statement_check(
    request: Request,
    import_id: str,
    staff: CharityStaff,
    campaign: Annotated[str, Query(max_length=80)] = "",
    period_from: Annotated[str, Query(alias="from", max_length=20)] = "",
    period_to: Annotated[str, Query(alias="to", max_length=20)] = "",
) -> HTMLResponse:
    """The ledger's received total against the statement's credits and closing balance,
    and the rows on one side only."""
    reader = reader_for(request)
    form = Form(reader, {"campaign": campaign, "from": period_from, "to": period_to}, prefix="check-")
    campaign_id = None
    if campaign:
        try:
            campaign_id = ids.from_bytes32(ids.to_bytes32(campaign.strip(), "campaign"))
        except ValueError:
            form.fail("campaign", reader.t("field_error.invalid"))
    dates: dict[str, date | None] = {}
    for name, text in (("from", period_from), ("to", period_to)):
        try:
            dates[name] = date.fromisoformat(text) if text else None
        except ValueError:
            form.fail(name, reader.t("import.check.date"))
    writes = writes_of(request)
    checked = None
    if form.ok:
        try:
            checked = service.statement_check(
                writes,
                staff.principal,
                _import_id(import_id),
                campaign_id,
                dates.get("from"),
                dates.get("to"),
            )
        except NotFound:
            raise PageError(404, "page") from None
    shown = service.show(writes, staff.principal, _import_id(import_id), 0, 1)
    currency = shown.totals[0].currency if shown.totals and shown.totals[0].currency else "CNY"
    return page(
        request,
        staff,
        "statement_check.html",
        200 if form.ok else 422,
        reader=reader,
        lang_base=f"/console/imports/{import_id}/check",
        p=shown,
        c=checked,
        form=form,
        currency=currency,
        campaigns=_charity_campaigns(request, staff),
    )


__all__ = ["router"]
