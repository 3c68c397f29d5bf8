"""Regulators' views: the audit trail, reconciliation, anomalies and exports.

Auditor and admin keys see everything; a charity key sees its own charity (others: 404).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import Row

from ledger_api.audit import access, exports, jobs, trail
from ledger_api.audit import anomalies as anomaly_reports
from ledger_api.audit.context import Auditing, AuditingDep
from ledger_api.audit.schemas import (
    AccessLogPage,
    AccessLogProof,
    AccessReport,
    Anomaly,
    AnomalyReport,
    AuditScope,
    Reconciliation,
    Reconciliations,
    TrailPage,
)
from ledger_api.audit.scope import (
    AuditPrincipal,
    CampaignFilter,
    CharityFilter,
    Scope,
    ScopeDep,
    traced_lookup,
)
from ledger_api.core import ids
from ledger_api.core.access_log import Trace, TraceDep
from ledger_api.core.errors import (
    AUTH_ERRORS,
    BODY_ERRORS,
    READ_ERRORS,
    Forbidden,
    InvalidRequest,
    NotFound,
    problems,
)
from ledger_api.core.pages import CursorParam, Limit, Since, Until
from ledger_api.core.schemas import CampaignId, CharityId, Strict
from ledger_api.core.security import Principal
from ledger_api.mirror.gateway import MirrorDep
from ledger_api.mirror.proofs import chain_view

# Every audit view needs a key (401), one that may audit (403); out of scope is 404.
router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=problems(*AUTH_ERRORS, *READ_ERRORS))

Block = Annotated[int | None, Query(ge=0, le=2**63 - 1)]
EXPORTED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The export, streamed as an attachment.",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {"schema": {"description": "The full trail in scope."}},
            "application/xml": {"schema": {"type": "string", "description": "IATI 2.03 activities."}},
        },
    }
}


@router.get("/trail", response_model_exclude_unset=True)
def audit_trail(
    auditing: AuditingDep,
    principal: AuditPrincipal,
    scope: ScopeDep,
    trace: TraceDep,
    kind: Annotated[
        list[str] | None, Query(description=f"Only these kinds of event: {', '.join(trail.KINDS)}.")
    ] = None,
    from_block: Block = None,
    to_block: Block = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    cursor: CursorParam = None,
) -> TrailPage:
    """Every ledger event in scope, in chain order, with its chain reference and sender."""
    names = trail.event_names(kind)
    with auditing.engine.connect() as connection:
        view = chain_view(auditing, connection)
        query = trail.statement(auditing, scope, names, from_block, to_block, since, until, cursor)
        found = trail.trail_page(auditing, connection, view, query, limit)
    _served(trace, scope, [f"{item.proof.tx_hash}:{item.proof.log_index}" for item in found.items])
    return TrailPage(scope=AuditScope(**scope.describe()), items=found.items, next=found.next)


def _served(trace: Trace, scope: Scope, record_ids: list[str] | None, count: int | None = None) -> None:
    described = scope.describe()
    trace.served(described["charity_id"], described["campaign_id"], record_ids, count)


class ReconciliationStart(Strict):
    """The scope to reconcile (also accepted as query parameters)."""

    charity_id: CharityId | None = None
    campaign_id: CampaignId | None = None
    full: bool | None = None


FULL = (
    "true (default): re-read every event from the node and ask the views about every record."
    " false: for the whole deployment, re-read only the blocks after the ranges already checked"
    " (whose events in the mirror must still hash to their digests) and ask the views about the"
    " records the new events name; a charity's or campaign's reconciliation is always full."
)
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
# How long a client polling a queued or running job should wait between looks.
POLL_AFTER = "2"


def _accepted(request: Request, auditing: Auditing, job: Row[Any], created: bool) -> JSONResponse:
    if created:
        worker = getattr(request.app.state, "reconciler", None)
        if worker is not None:
            worker.wake()
    view = jobs.view(auditing, job)
    return JSONResponse(
        view.body(), status_code=202, headers={"Location": view.href, "Retry-After": POLL_AFTER}
    )


@router.post(
    "/reconciliations", status_code=202, response_model=Reconciliation, responses=problems(*BODY_ERRORS)
)
def start_reconciliation(
    request: Request,
    auditing: AuditingDep,
    principal: AuditPrincipal,
    trace: TraceDep,
    body: Annotated[ReconciliationStart | None, Body()] = None,
    charity_id: CharityFilter = None,
    campaign_id: CampaignFilter = None,
    full: Annotated[bool | None, Query(description=FULL)] = None,
) -> JSONResponse:
    """Have the service re-read the chain (events and view functions) and compare it with
    the mirror, in the background. Answers 202 with the job (Location: its status); while
    one for the same scope is queued or running, that one."""
    if body is not None:
        for name, given, query in (
            ("charity_id", body.charity_id, charity_id),
            ("campaign_id", body.campaign_id, campaign_id),
        ):
            if given is not None and query is not None and given != query:
                raise InvalidRequest(f"{name} differs between the query and the body")
        if body.full is not None and full is not None and body.full != full:
            raise InvalidRequest("full differs between the query and the body")
        charity_id, campaign_id = body.charity_id or charity_id, body.campaign_id or campaign_id
        full = body.full if body.full is not None else full
    scope = traced_lookup(auditing, principal, trace, charity_id, campaign_id)
    job, created = jobs.start(auditing, scope, principal, full=full is not False)
    _served(trace, scope, [job.id])
    return _accepted(request, auditing, job, created)


@router.get("/reconciliations", response_model_exclude_unset=True)
def list_reconciliations(
    auditing: AuditingDep,
    principal: AuditPrincipal,
    scope: ScopeDep,
    trace: TraceDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Reconciliations:
    """The reconciliations in the caller's scope, newest first (results by their href)."""
    rows = jobs.recent(auditing, principal, scope, limit)
    _served(trace, scope, [row.id for row in rows])
    return Reconciliations(items=[jobs.view(auditing, row, full=False) for row in rows])


@router.get("/reconciliations/{job_id}", response_model=Reconciliation)
def get_reconciliation(
    job_id: JobId, auditing: AuditingDep, principal: AuditPrincipal, trace: TraceDep
) -> JSONResponse:
    """A reconciliation: queued, running, done (with its result: clean, the block it was
    checked at, counts, digests, every difference) or failed (with why)."""
    job = jobs.find(auditing, principal, job_id)
    if job is None:
        trace.refused(None, None, NotFound.status)
        raise NotFound("reconciliation not found")
    _served(trace, Scope(job.charity_id, job.campaign_id), [job.id])
    headers = {"Retry-After": POLL_AFTER} if job.status in ("queued", "running") else {}
    return JSONResponse(jobs.view(auditing, job).body(), headers=headers)


@router.get("/reconciliation", status_code=202, deprecated=True, response_model=Reconciliation)
def reconciliation(
    request: Request, auditing: AuditingDep, principal: AuditPrincipal, scope: ScopeDep, trace: TraceDep
) -> JSONResponse:
    """Kept for old clients: starts (or finds) the scope's reconciliation like
    POST /v1/audit/reconciliations and answers 202 with its Location."""
    job, created = jobs.start(auditing, scope, principal)
    _served(trace, scope, [job.id])
    return _accepted(request, auditing, job, created)


@router.get("/anomalies", response_model_exclude_unset=True)
def anomalies(
    auditing: AuditingDep,
    principal: AuditPrincipal,
    scope: ScopeDep,
    trace: TraceDep,
    evidence_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    recipient_share: Annotated[float | None, Query(gt=0, le=1)] = None,
    large_share: Annotated[float | None, Query(gt=0, le=1)] = None,
    pending_minutes: Annotated[int | None, Query(ge=1, le=525_600)] = None,
    grant_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    fast_approval_minutes: Annotated[int | None, Query(ge=0, le=525_600)] = None,
    receipt_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AnomalyReport:
    """Disbursements without evidence, concentrated recipients, refunds after allocation,
    records never finalized, large disbursements, grants the receiving charity has not
    recorded, proposals approved unusually fast, approvals by the payout's own recipient
    and disbursements to a registered recipient organisation that it has not confirmed in
    full after `receipt_days` (thresholds default to the settings)."""
    settings = auditing.settings
    limits = anomaly_reports.Thresholds(
        evidence_days=settings.anomaly_evidence_days if evidence_days is None else evidence_days,
        recipient_share=settings.anomaly_recipient_share if recipient_share is None else recipient_share,
        large_share=settings.anomaly_large_share if large_share is None else large_share,
        pending_minutes=settings.anomaly_pending_minutes if pending_minutes is None else pending_minutes,
        grant_days=settings.anomaly_grant_days if grant_days is None else grant_days,
        fast_approval_minutes=(
            settings.anomaly_fast_approval_minutes if fast_approval_minutes is None else fast_approval_minutes
        ),
        receipt_days=settings.anomaly_receipt_days if receipt_days is None else receipt_days,
    )
    report = anomaly_reports.anomalies(auditing, scope, limits, limit)
    _served(trace, scope, [_anomaly_id(item) for item in report.items])
    return report


def _anomaly_id(item: Anomaly) -> str:
    """What an anomaly is about: its record, or the records, or the transaction."""
    if item.record.id:
        return item.record.id
    if item.record.ids:
        return ",".join(item.record.ids)
    return item.transaction.id if item.transaction is not None else item.kind


@router.get("/export", response_class=StreamingResponse, responses=EXPORTED)
def export(
    auditing: AuditingDep,
    principal: AuditPrincipal,
    scope: ScopeDep,
    trace: TraceDep,
    format: Annotated[Literal["csv", "json", "iati"], Query(description="csv, json or iati (2.03 XML).")],
) -> StreamingResponse:
    """The ledger in scope as CSV, JSON (the full trail) or IATI 2.03 activity XML, streamed."""
    media_type, _ = exports.FORMATS[format]
    # Logged as it starts, with its scope: the count is not known until it has streamed.
    _served(replace(trace, route=f"{trace.route}?format={format}"), scope, None)
    return StreamingResponse(
        exports.export(auditing, scope, format),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{exports.filename(scope, format)}"'},
    )


# ------------------------------------------------------------------ the access log

access_router = APIRouter(tags=["audit"], responses=problems(*AUTH_ERRORS, *READ_ERRORS))

KeyIdFilter = Annotated[
    str | None, Query(pattern=r"^[a-z0-9-]{1,32}$", description="Only reads with this API key's id.")
]
FromDay = Annotated[date | None, Query(alias="from", description="From this UTC day (YYYY-MM-DD).")]
ToDay = Annotated[date | None, Query(alias="to", description="To this UTC day, included (YYYY-MM-DD).")]
Endpoint = Annotated[
    str | None,
    Query(
        pattern=r"^/[A-Za-z0-9_{}/.-]{0,199}$",
        description="Only this route template, e.g. /v1/audit/export (any format).",
    ),
]


def _regulator(principal: AuditPrincipal) -> Principal:
    if principal.role not in ("admin", "auditor"):
        raise Forbidden("the access log needs an auditor or admin key")
    return principal


RegulatorPrincipal = Annotated[Principal, Depends(_regulator)]


@access_router.get("/v1/audit/access-log", response_model=AccessLogPage)
def access_log_rows(
    mirror: MirrorDep,
    principal: RegulatorPrincipal,
    trace: TraceDep,
    key_id: KeyIdFilter = None,
    charity_id: CharityFilter = None,
    since: FromDay = None,
    until: ToDay = None,
    endpoint: Endpoint = None,
    limit: Limit = 100,
    cursor: CursorParam = None,
) -> AccessLogPage:
    """Every authenticated read of non-public data, oldest first: who (key id, role),
    what (route, scope, which records), when, and whether it was served or refused. This
    read is logged too."""
    if principal.charities is not None:
        # An auditor key limited to some charities reads the rows about them only: one named
        # (another is 404), or its one charity (several: 422, as on every audit view).
        scope = traced_lookup(mirror, principal, trace, charity_id, None)
        assert scope.charity_id is not None
        charity_id = ids.from_bytes32(scope.charity_id)
    filters = access.AccessFilters(key_id, charity_id, since, until, endpoint, limit, cursor)
    found = access.log_page(mirror, filters, principal)
    trace.served(charity_id, None, [str(item.seq) for item in found.items])
    return found


@access_router.get("/v1/charities/{charity_id}/access-report", response_model=AccessReport)
def access_report(
    charity_id: Annotated[CharityId, Path()],
    mirror: MirrorDep,
    principal: AuditPrincipal,
    trace: TraceDep,
    key_id: KeyIdFilter = None,
    since: FromDay = None,
    until: ToDay = None,
    endpoint: Endpoint = None,
    limit: Limit = 100,
    cursor: CursorParam = None,
) -> AccessReport:
    """The charity's data-sharing report (数据共享情况通报): who read its non-public data,
    when and how much, row by row and per key and UTC day. For the charity itself and the
    platform (admin); another charity is told it does not exist."""
    if principal.role == "auditor":
        raise Forbidden("the access report is for the charity itself and the platform")
    traced_lookup(mirror, principal, trace, charity_id, None)
    filters = access.AccessFilters(key_id, None, since, until, endpoint, limit, cursor)
    found = access.report(mirror, charity_id, filters)
    trace.served(charity_id, None, [str(item.seq) for item in found.items])
    return found


@access_router.get("/v1/audit/access-log/{seq}/proof", response_model=AccessLogProof)
def access_log_proof(
    seq: Annotated[int, Path(ge=1, le=2**63 - 1)],
    mirror: MirrorDep,
    principal: RegulatorPrincipal,
    trace: TraceDep,
) -> AccessLogProof:
    """A row of the access log with its Merkle path to its UTC day's root and, once the
    day is sealed, the seal's transaction: `ledger verify access-row` checks it against
    the chain."""
    try:
        # A row about another charity, to an auditor key limited to some: not found.
        found = access.proof(mirror, seq, None, principal)
    except NotFound:
        trace.refused(None, None, NotFound.status)
        raise
    trace.served(found.row.charity_id, None, [str(seq)])
    return found
