"""Regulators' views: the audit trail, reconciliation, anomalies and exports.

Auditor and admin keys see everything; a charity key sees its own charity (others: 404).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import Row

from ledger_api.audit import anomalies as anomaly_reports
from ledger_api.audit import exports, jobs, trail
from ledger_api.audit.context import Auditing, AuditingDep
from ledger_api.audit.schemas import AnomalyReport, AuditScope, Reconciliation, Reconciliations, TrailPage
from ledger_api.audit.scope import AuditPrincipal, CampaignFilter, CharityFilter, ScopeDep, lookup
from ledger_api.core.errors import AUTH_ERRORS, BODY_ERRORS, READ_ERRORS, InvalidRequest, NotFound, problems
from ledger_api.core.pages import CursorParam, Limit, Since, Until
from ledger_api.core.schemas import CampaignId, CharityId, Strict
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
    return TrailPage(scope=AuditScope(**scope.describe()), items=found.items, next=found.next)


class ReconciliationStart(Strict):
    """The scope to reconcile (also accepted as query parameters)."""

    charity_id: CharityId | None = None
    campaign_id: CampaignId | None = None


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
    body: Annotated[ReconciliationStart | None, Body()] = None,
    charity_id: CharityFilter = None,
    campaign_id: CampaignFilter = None,
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
        charity_id, campaign_id = body.charity_id or charity_id, body.campaign_id or campaign_id
    scope = lookup(auditing, principal, charity_id, campaign_id)
    job, created = jobs.start(auditing, scope, principal)
    return _accepted(request, auditing, job, created)


@router.get("/reconciliations", response_model_exclude_unset=True)
def list_reconciliations(
    auditing: AuditingDep,
    principal: AuditPrincipal,
    scope: ScopeDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Reconciliations:
    """The reconciliations in the caller's scope, newest first (results by their href)."""
    rows = jobs.recent(auditing, principal, scope, limit)
    return Reconciliations(items=[jobs.view(auditing, row, full=False) for row in rows])


@router.get("/reconciliations/{job_id}", response_model=Reconciliation)
def get_reconciliation(job_id: JobId, auditing: AuditingDep, principal: AuditPrincipal) -> JSONResponse:
    """A reconciliation: queued, running, done (with its result: clean, the block it was
    checked at, counts, digests, every difference) or failed (with why)."""
    job = jobs.find(auditing, principal, job_id)
    if job is None:
        raise NotFound("reconciliation not found")
    headers = {"Retry-After": POLL_AFTER} if job.status in ("queued", "running") else {}
    return JSONResponse(jobs.view(auditing, job).body(), headers=headers)


@router.get("/reconciliation", status_code=202, deprecated=True, response_model=Reconciliation)
def reconciliation(
    request: Request, auditing: AuditingDep, principal: AuditPrincipal, scope: ScopeDep
) -> JSONResponse:
    """Kept for old clients: starts (or finds) the scope's reconciliation like
    POST /v1/audit/reconciliations and answers 202 with its Location."""
    job, created = jobs.start(auditing, scope, principal)
    return _accepted(request, auditing, job, created)


@router.get("/anomalies", response_model_exclude_unset=True)
def anomalies(
    auditing: AuditingDep,
    principal: AuditPrincipal,
    scope: ScopeDep,
    evidence_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    recipient_share: Annotated[float | None, Query(gt=0, le=1)] = None,
    large_share: Annotated[float | None, Query(gt=0, le=1)] = None,
    pending_minutes: Annotated[int | None, Query(ge=1, le=525_600)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AnomalyReport:
    """Disbursements without evidence, concentrated recipients, refunds after allocation,
    records never finalized and large disbursements (thresholds default to the settings)."""
    settings = auditing.settings
    limits = anomaly_reports.Thresholds(
        evidence_days=settings.anomaly_evidence_days if evidence_days is None else evidence_days,
        recipient_share=settings.anomaly_recipient_share if recipient_share is None else recipient_share,
        large_share=settings.anomaly_large_share if large_share is None else large_share,
        pending_minutes=settings.anomaly_pending_minutes if pending_minutes is None else pending_minutes,
    )
    return anomaly_reports.anomalies(auditing, scope, limits, limit)


@router.get("/export", response_class=StreamingResponse, responses=EXPORTED)
def export(
    auditing: AuditingDep,
    principal: AuditPrincipal,
    scope: ScopeDep,
    format: Annotated[Literal["csv", "json", "iati"], Query(description="csv, json or iati (2.03 XML).")],
) -> StreamingResponse:
    """The ledger in scope as CSV, JSON (the full trail) or IATI 2.03 activity XML, streamed."""
    media_type, _ = exports.FORMATS[format]
    return StreamingResponse(
        exports.export(auditing, scope, format),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{exports.filename(scope, format)}"'},
    )
