"""The console's plumbing: its route class (every failure a page, every answer
`no-store`), who is signed in (a dependency per role), the CSRF check of a posted form,
and how a console page is rendered."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from ledger_api.console import sessions
from ledger_api.console.sessions import Staff
from ledger_api.core import idempotency_store
from ledger_api.core.errors import NotFound, Problem
from ledger_api.mirror.gateway import current_mirror
from ledger_api.pages.i18n import reader_for
from ledger_api.pages.routes import PageError, error_page, render
from ledger_api.transactions.service import Writes, current_writes

log = logging.getLogger("ledger_api.console")

# Nothing of the console is kept by a cache or sent on as a referrer.
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class SignInNeeded(Exception):
    """No live session: the answer is the sign-in page (a GET) or a redirect to it."""


class CsrfRefused(Exception):
    """A post without its session's CSRF token: 403, nothing read or changed."""


class AlreadySent(Exception):
    """A form sent a second time (a double click, a reload of the answer): 409, nothing
    done again. Each rendered form carries a one-time token (`once`), claimed in the
    idempotency table under the session's key before the form's work starts."""


class ConsoleRoute(APIRoute):
    """A console route: every failure is a page in the reader's language, never cached."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInNeeded:
                response = RedirectResponse("/console/sign-in", status_code=303)
            except CsrfRefused:
                response = error_page(request, 403, "form")
            except AlreadySent:
                response = error_page(request, 409, "form")
            except PageError as exc:
                response = error_page(request, exc.status, exc.kind, exc.asked)
            except NotFound:
                response = error_page(request, 404, "page")
            except (RequestValidationError, ValidationError):
                response = error_page(request, 422, "form")
            except Problem as problem:  # a refusal no page turned into words (writes disabled...)
                log.warning("console %s %s: %s", request.method, request.url.path, problem.detail)
                response = error_page(request, problem.status if problem.status in (403, 422) else 500)
            except Exception:
                log.exception("console %s %s failed", request.method, request.url.path)
                response = error_page(request, 500)
            response.headers.update(PRIVATE)
            return response

        return guarded


# ------------------------------------------------------------------ who is signed in


def _staff(request: Request) -> Staff:
    staff = sessions.find(current_mirror(request).engine, request.cookies.get(sessions.COOKIE))
    if staff is None:
        raise SignInNeeded
    return staff


StaffDep = Annotated[Staff, Depends(_staff)]


def _charity_staff(staff: StaffDep) -> Staff:
    if staff.principal.role != "charity":
        raise PageError(404, "page")
    return staff


CharityStaff = Annotated[Staff, Depends(_charity_staff)]


def _approver_staff(staff: StaffDep) -> Staff:
    """An approver's session: its approval pages only; every charity page is not found."""
    if staff.principal.role != "approver" or staff.principal.account is None:
        raise PageError(404, "page")
    return staff


ApproverStaff = Annotated[Staff, Depends(_approver_staff)]


async def _posted(request: Request) -> FormData:
    try:
        return await request.form(max_files=0, max_fields=1100)
    except HTTPException:
        raise PageError(422, "form") from None


def check_csrf(staff: Staff, data: FormData) -> None:
    given = data.get("csrf")
    if not sessions.csrf_matches(staff.token, given if isinstance(given, str) else ""):
        raise CsrfRefused


ONCE = re.compile(r"^[A-Za-z0-9_-]{22,43}$")


def new_once() -> str:
    """A rendered form's one-time token."""
    return secrets.token_urlsafe(16)


def first_time(request: Request, staff: Staff, data: FormData) -> None:
    """AlreadySent unless this is the first time the form's one-time token is used (a form
    without one, from a page older than this rule, is let through: the CSRF token was
    checked)."""
    once = data.get("once")
    if not isinstance(once, str) or not ONCE.fullmatch(once):
        return
    slot = idempotency_store.Slot(staff.principal.key_id, staff.token, f"console-form:{once}")
    if not idempotency_store.claim(current_mirror(request).engine, slot, "console-form"):
        raise AlreadySent


def _posting_staff(
    request: Request, staff: CharityStaff, data: Annotated[FormData, Depends(_posted)]
) -> Staff:
    check_csrf(staff, data)
    first_time(request, staff, data)
    return staff


PostingStaff = Annotated[Staff, Depends(_posting_staff)]


def _posting_approver(
    request: Request, staff: ApproverStaff, data: Annotated[FormData, Depends(_posted)]
) -> Staff:
    check_csrf(staff, data)
    first_time(request, staff, data)
    return staff


PostingApprover = Annotated[Staff, Depends(_posting_approver)]


def _posting_signer(request: Request, staff: StaffDep, data: Annotated[FormData, Depends(_posted)]) -> Staff:
    """A charity's staff or an approver posting a form of a sign page (its own signed calls)."""
    if staff.principal.role not in ("charity", "approver"):
        raise PageError(404, "page")
    check_csrf(staff, data)
    first_time(request, staff, data)
    return staff


PostingSigner = Annotated[Staff, Depends(_posting_signer)]
Posted = Annotated[FormData, Depends(_posted)]


def page(
    request: Request, staff: Staff | None, template: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """A console page: the session's CSRF token for its forms, never cached."""
    reader = context.pop("reader", None) or reader_for(request)
    return render(
        request,
        reader,
        f"console/{template}",
        status,
        PRIVATE,
        staff=staff,
        csrf=staff.csrf if staff else None,
        new_once=new_once,
        lang_base=context.pop("lang_base", request.url.path),
        **context,
    )


def writes_of(request: Request) -> Writes:
    return current_writes(request)
