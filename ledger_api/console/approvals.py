"""Approvals before payout in the console: the approver's page, and the charity's forms.

1. An approver signs in with the key its charity gave it (role `approver`). Its session
   reaches only its page, `/console/approvals`: what waits for its approval now (the list
   GET /v1/proposals?waiting_for=me answers), each with Approve and a Reject form whose
   public reason is required, and what it already decided. Every charity page is "not
   found" to it (`web.CharityStaff`), as the API's charity routes are forbidden to it.
2. Approve and reject call `approvals.service.vote`, as POST /v1/proposals/{id}/approve
   and /reject do: the contract says who may approve (ProposerCannotApprove, NotApprover,
   AlreadyApproved, ProposalExpired come back as sentences, `explain.py`); the last
   approval needed pays the proposal at once. An approver that holds its own key gets the
   sign page (`signing.py`), as a self-custody charity does; the relay pays it the same way.
3. The charity's staff, on a campaign's page: register an approver (its key shown once,
   on a page of its own), set or replace the campaign's rule, and withdraw a proposal
   (a rejection by the charity, with a public reason). A proposal of another charity, or
   of another campaign than the page's, is not found.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from eth_utils import to_checksum_address
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from ledger_api.approvals import reads as approval_reads
from ledger_api.approvals import service as approvals
from ledger_api.approvals.schemas import ApproverCreate, Proposal, Rejection, RuleSet
from ledger_api.campaigns import reads as campaigns
from ledger_api.charities import reads as charities
from ledger_api.console import explain
from ledger_api.console.forms import Form, form_of
from ledger_api.console.routes import campaign_page, own_campaign, writes_for
from ledger_api.console.sessions import Staff
from ledger_api.console.signing import prepared, sign_states
from ledger_api.console.web import (
    ApproverStaff,
    ConsoleRoute,
    Posted,
    PostingApprover,
    PostingStaff,
    page,
    writes_of,
)
from ledger_api.core import ids
from ledger_api.core.errors import Conflict, InvalidRequest, NotFound, Problem
from ledger_api.core.hexes import hex0x
from ledger_api.mirror.gateway import current_mirror
from ledger_api.pages.i18n import reader_for
from ledger_api.pages.routes import PageError, reading, record_id
from ledger_api.transactions.service import Writes

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)
DECIDED = 50  # an approver's past decisions listed on its page (newest first)
DONE = ("approved", "paid", "rejected", "signed")


@dataclass(frozen=True)
class Shown:
    """A proposal as the approver's page shows it: with its campaign's name and currency,
    and whether its proposer is one of the charity's operators (its staff)."""

    p: Proposal
    campaign: str
    currency: str
    by_staff: bool


def _approver_account(writes: Writes, staff: Staff) -> approvals.ApproverAccount:
    assert staff.charity_hex is not None and staff.principal.account is not None
    found = approvals.approver_accounts(writes, staff.charity_hex).get(
        to_checksum_address(staff.principal.account)
    )
    if found is None:  # the charity's registration is gone: nothing to show or sign
        raise PageError(404, "page")
    return found


def _approver_page(
    request: Request,
    staff: Staff,
    status: int = 200,
    reject: tuple[str, Form] | None = None,
    problem: str = "",
) -> HTMLResponse:
    mirror = current_mirror(request)
    writes = writes_of(request)
    me = _approver_account(writes, staff)
    charity_hex = staff.charity_hex or ""
    account = me.account
    with reading("charity", ids.from_bytes32(charity_hex)):
        charity = charities.get_charity(mirror, ids.from_bytes32(charity_hex))
        waiting = approval_reads.proposals(mirror, charity_hex=charity_hex, waiting_for=account)
        decided = [
            p
            for p in approval_reads.proposals(mirror, charity_hex=charity_hex)
            if any(v.voter == account for v in p.votes)
        ][:DECIDED]
        named: dict[str, tuple[str, str]] = {}
        for p in (*waiting, *decided):
            if p.campaign_id not in named:
                cp = campaigns.get_campaign(mirror, p.campaign_id)
                named[p.campaign_id] = (cp.name, cp.currency)
    operators = {o.lower() for o in charity.operators}

    def shown(p: Proposal) -> Shown:
        name, currency = named[p.campaign_id]
        return Shown(p, name, currency, p.proposer.lower() in operators)

    done = request.query_params.get("done")
    return page(
        request,
        staff,
        "approvals.html",
        status,
        lang_base="/console/approvals",
        me=me,
        charity=charity,
        waiting=[shown(p) for p in waiting],
        decided=[shown(p) for p in decided],
        reject=reject,
        problem=problem,
        done=done if done in DONE else None,
        empty_form=lambda proposal_id: Form(reader_for(request), prefix=f"reject-{proposal_id}-"),
    )


@router.get("/approvals", name="console_approvals")
def approvals_page(request: Request, staff: ApproverStaff) -> HTMLResponse:
    return _approver_page(request, staff)


def _writes_for_approver(request: Request, staff: Staff) -> Writes:
    """The write gateway for an approver: in `prepare` mode when it holds its own key."""
    writes = writes_of(request)
    if not _approver_account(writes, staff).held_by_platform:
        return replace(writes, mode="prepare")
    return writes


def _vote(request: Request, staff: Staff, proposal_id: str, reason: str | None) -> Response:
    canonical = record_id(proposal_id, "disbursement")
    reader = reader_for(request)
    try:
        answer, states = approvals.vote(
            _writes_for_approver(request, staff), staff.principal, canonical, reason, True
        )
    except NotFound:
        raise PageError(404, "disbursement", canonical) from None
    except Problem as problem:
        said = explain.sentence(reader, problem, None)
        if reason is not None:
            form = Form(reader, {"reason": reason}, prefix=f"reject-{canonical}-")
            form.fail("_form", said)
            return _approver_page(request, staff, 409, reject=(canonical, form))
        return _approver_page(request, staff, 409, problem=said)
    if prepared(states):
        return sign_states(request, staff, states, "/console/approvals")
    done = "rejected" if reason is not None else "paid" if "execution" in answer else "approved"
    return RedirectResponse(f"/console/approvals?done={done}", status_code=303)


@router.post("/proposals/{proposal_id}/approve", name="console_approve")
def approve(request: Request, proposal_id: str, staff: PostingApprover) -> Response:
    return _vote(request, staff, proposal_id, None)


def _reason_form(request: Request, data: FormData, prefix: str) -> tuple[Form, str]:
    """A rejection's reason from the form, held to what the API takes (`Rejection`)."""
    form = form_of(reader_for(request), data, ("reason",), prefix=prefix)
    reason = form.text("reason")
    if form.ok:
        try:
            reason = Rejection.model_validate({"reason": reason}).reason
        except ValidationError as exc:
            form.schema_errors(exc)
    return form, reason


@router.post("/proposals/{proposal_id}/reject", name="console_reject")
def reject(request: Request, proposal_id: str, staff: PostingApprover, data: Posted) -> Response:
    """Reject for good, with a public reason (required, at most what the API takes)."""
    canonical = record_id(proposal_id, "disbursement")
    form, reason = _reason_form(request, data, f"reject-{canonical}-")
    if not form.ok:
        return _approver_page(request, staff, 422, reject=(canonical, form))
    return _vote(request, staff, canonical, reason)


# ------------------------------------------------------------------ the charity's side


@router.post("/campaigns/{campaign_id}/approvers", name="console_register_approver")
def register_approver(request: Request, campaign_id: str, staff: PostingStaff, data: Posted) -> Response:
    """Register an approver; the answer is its key, shown once on a page never cached."""
    writes = writes_of(request)
    canonical = own_campaign(writes, staff, campaign_id)
    reader = reader_for(request)
    form = form_of(reader, data, ("label", "account"), prefix="approver-")
    label = form.text("label")
    account = form.value("account").strip()
    body = None
    if form.ok:
        try:
            body = ApproverCreate.model_validate({"label": label, "account": account or None})
        except ValidationError as exc:
            form.schema_errors(exc)
    if body is None:
        return campaign_page(request, staff, canonical, 422, approver=form)
    charity_hex = staff.charity_hex or ""
    try:
        row, issued = approvals.register_approver(writes, staff.principal, charity_hex, body)
    except Conflict:
        form.fail("account", reader.t("console.approvers.taken"))
        return campaign_page(request, staff, canonical, 409, approver=form)
    except InvalidRequest:
        form.fail("account", reader.t("console.approvers.platform_account"))
        return campaign_page(request, staff, canonical, 422, approver=form)
    return page(
        request,
        staff,
        "approver_key.html",
        201,
        lang_base=f"/console/campaigns/{canonical}",
        campaign_id=canonical,
        approver=row,
        key=issued.key,
    )


@router.post("/campaigns/{campaign_id}/approval-rule", name="console_set_rule")
def set_rule(request: Request, campaign_id: str, staff: PostingStaff, data: Posted) -> Response:
    """Set or replace the campaign's rule: the approvers ticked, how many of them must
    approve, and for how long a proposal may collect their approvals."""
    writes = writes_of(request)
    canonical = own_campaign(writes, staff, campaign_id)
    reader = reader_for(request)
    form = form_of(reader, data, ("threshold", "validity", "unit"), prefix="rule-")
    registered = approvals.approver_accounts(writes, staff.charity_hex or "")
    chosen = [a for a in data.getlist("approver") if isinstance(a, str) and a in registered][:40]
    form.values["approvers"] = ",".join(chosen)
    if not chosen:
        form.fail("approvers", reader.t("console.rule.choose"))
    threshold = _whole(form, "threshold")
    validity = _whole(form, "validity")
    hours = validity * (24 if form.value("unit") == "days" else 1) if validity is not None else None
    if threshold is not None and chosen and threshold > len(chosen):
        form.fail("threshold", reader.t("console.rule.too_many", n=reader.count(len(chosen))))
    body = None
    if form.ok:
        try:
            body = RuleSet.model_validate(
                {"approvers": chosen, "threshold": threshold, "validity_hours": hours}
            )
        except ValidationError as exc:
            form.schema_errors(exc, {"validity_hours": "validity"})
    if body is None:
        return campaign_page(request, staff, canonical, 422, rule=form)
    try:
        _, state = approvals.set_rule(writes_for(request, staff), staff.principal, canonical, body, True)
    except Problem as problem:
        form.fail("_form", explain.sentence(reader, problem, None))
        return campaign_page(
            request, staff, canonical, problem.status if problem.status == 422 else 409, rule=form
        )
    if prepared([state]):
        return sign_states(request, staff, [state], f"/console/campaigns/{canonical}")
    return RedirectResponse(f"/console/campaigns/{canonical}?rule_set=1#approvals-heading", status_code=303)


def _whole(form: Form, name: str) -> int | None:
    """A small whole number typed in a field (a count of approvers, hours or days)."""
    text = form.value(name).strip()
    if not text:
        form.fail(name, form.reader.t("field_error.required"))
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 5 or int(text) < 1:
        form.fail(name, form.reader.t("field_error.invalid"))
        return None
    return int(text)


@router.post("/campaigns/{campaign_id}/proposals/{proposal_id}/withdraw", name="console_withdraw_proposal")
def withdraw(
    request: Request, campaign_id: str, proposal_id: str, staff: PostingStaff, data: Posted
) -> Response:
    """Withdraw a proposal of this campaign: the charity rejects it, for good, with a reason."""
    writes = writes_of(request)
    canonical = own_campaign(writes, staff, campaign_id)
    proposal = record_id(proposal_id, "disbursement")
    found = approval_reads.proposals(
        current_mirror(request), disbursement_hex=hex0x(ids.to_bytes32(proposal))
    )
    if not found or found[0].campaign_id != canonical:
        raise PageError(404, "disbursement", proposal)
    form, reason = _reason_form(request, data, f"withdraw-{proposal}-")
    if not form.ok:
        return campaign_page(request, staff, canonical, 422, withdraw=(proposal, form))
    try:
        _, states = approvals.vote(writes_for(request, staff), staff.principal, proposal, reason, True)
    except Problem as problem:
        form.fail("_form", explain.sentence(reader_for(request), problem, None))
        return campaign_page(request, staff, canonical, 409, withdraw=(proposal, form))
    if prepared(states):
        return sign_states(request, staff, states, f"/console/campaigns/{canonical}")
    return RedirectResponse(f"/console/campaigns/{canonical}?withdrawn=1#approvals-heading", status_code=303)


__all__ = ["router"]
