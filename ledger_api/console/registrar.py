"""The registrar's console pages (an admin key): register a charity (platform-held or
self-custody), issue a charity's key (shown once, on the answer only), revoke a key.
The same services as `POST /v1/charities`, `POST /v1/keys`, `DELETE /v1/keys/{id}`."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from ledger_api.charities import reads as charities
from ledger_api.charities import service as charity_writes
from ledger_api.charities.schemas import CharityCreate
from ledger_api.console import explain
from ledger_api.console.forms import Form, form_of
from ledger_api.console.sessions import Staff
from ledger_api.console.web import ConsoleRoute, Posted, StaffDep, check_csrf, first_time, page, writes_of
from ledger_api.core import ids
from ledger_api.core.errors import Problem
from ledger_api.deployment import service as ledger_switch
from ledger_api.keys import service as keys
from ledger_api.mirror.gateway import current_mirror
from ledger_api.pages.i18n import reader_for
from ledger_api.pages.routes import PageError

router = APIRouter(prefix="/console/registrar", include_in_schema=False, route_class=ConsoleRoute)
LISTED = 200
KEY_ID = re.compile(r"^[a-z0-9]{12}$")


def _registrar(staff: StaffDep) -> Staff:
    if staff.principal.role != "admin":
        raise PageError(404, "page")
    return staff


Registrar = Annotated[Staff, Depends(_registrar)]


def _posting(request: Request, staff: Registrar, data: Posted) -> Staff:
    check_csrf(staff, data)
    first_time(request, staff, data)
    return staff


PostingRegistrar = Annotated[Staff, Depends(_posting)]


def _page(request: Request, staff: Staff, status: int = 200, **forms: Any) -> HTMLResponse:
    reader = reader_for(request)
    listed = charities.list_charities(current_mirror(request), LISTED, None)
    return page(
        request,
        staff,
        "registrar.html",
        status,
        reader=reader,
        lang_base="/console/registrar",
        charities=listed.items,
        register=forms.get("register") or Form(reader, {"custody": "platform"}, prefix="register-"),
        issue=forms.get("issue") or Form(reader, prefix="issue-"),
        revoke=forms.get("revoke") or Form(reader, prefix="revoke-"),
        issued=forms.get("issued"),
        registered=forms.get("registered"),
        revoked=forms.get("revoked"),
        paused=ledger_switch.is_paused(writes_of(request)),
        switched=forms.get("switched"),
        switch_error=forms.get("switch_error"),
    )


@router.get("", name="console_registrar")
def registrar(request: Request, staff: Registrar) -> HTMLResponse:
    return _page(request, staff)


@router.post("/charities", name="console_register_charity")
def register_charity(request: Request, staff: PostingRegistrar, data: Posted) -> Response:
    reader = reader_for(request)
    form = form_of(reader, data, ("name", "custody", "operator"), prefix="register-")
    name = form.text("name")
    custody = "self" if form.value("custody") == "self" else "platform"
    operator = form.value("operator").strip() or None
    if custody == "self" and operator is None:
        form.fail("operator", reader.t("field_error.required"))
    body = None
    if form.ok:
        try:
            body = CharityCreate.model_validate(
                {"name": name, "custody": custody, "operator": operator if custody == "self" else None}
            )
        except ValidationError as exc:
            form.schema_errors(exc)
    if body is None:
        return _page(request, staff, 422, register=form)
    try:
        created, _ = charity_writes.register(writes_of(request), body.name, None, body.operator)
    except Problem as problem:
        form.fail("_form", explain.sentence(reader, problem, None))
        return _page(request, staff, 409, register=form)
    return _page(request, staff, 201, registered=created)


def _issue(request: Request, staff: Staff, data: FormData) -> Response:
    reader = reader_for(request)
    form = form_of(reader, data, ("charity_id", "label"), prefix="issue-")
    mirror = current_mirror(request)
    try:
        charity_hex = ids.to_hex(form.value("charity_id").strip(), "charity")
    except ValueError:
        charity_hex = None
    if charity_hex is None or not keys.registered_here(mirror, charity_hex):
        form.fail("charity_id", reader.t("field_error.invalid"))
        return _page(request, staff, 422, issue=form)
    label = form.value("label").strip()[:200] or None
    issued = keys.issue_key(mirror.engine, "charity", charity_hex, label)
    # Shown once, on this answer only (no-store, like every console answer).
    shown = {"id": issued.id, "key": issued.key, "charity_id": ids.from_bytes32(charity_hex)}
    return _page(request, staff, 201, issued=shown)


@router.post("/keys", name="console_issue_key")
def issue(request: Request, staff: PostingRegistrar, data: Posted) -> Response:
    return _issue(request, staff, data)


@router.post("/keys/revoke", name="console_revoke_key")
def revoke(request: Request, staff: PostingRegistrar, data: Posted) -> Response:
    reader = reader_for(request)
    form = form_of(reader, data, ("key_id",), prefix="revoke-")
    key_id = form.value("key_id").strip()
    if not KEY_ID.fullmatch(key_id) or not keys.revoke_key(current_mirror(request).engine, key_id):
        form.fail("key_id", reader.t("field_error.invalid"))
        return _page(request, staff, 422, revoke=form)
    return _page(request, staff, 200, revoked=key_id)


@router.post("/pause", name="console_pause")
def pause(request: Request, staff: PostingRegistrar, data: Posted) -> Response:
    """Pause every write of the ledger (`pause=1`), or let them run again."""
    reader = reader_for(request)
    paused = data.get("pause") == "1"
    try:
        ledger_switch.set_paused(writes_of(request), paused)
    except Problem as problem:
        return _page(request, staff, problem.status, switch_error=explain.sentence(reader, problem, None))
    return _page(request, staff, 200, switched="paused" if paused else "running")


__all__ = ["router"]
