"""Regulators' views: the audit trail, reconciliation, anomalies and exports.

Auditor and admin keys see everything; a charity key sees its own charity (others: 404).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, StreamingResponse

from ledger_api.audit import anomalies as anomaly_reports
from ledger_api.audit import exports, reconcile, trail
from ledger_api.audit.scope import AuditPrincipal, resolve
from ledger_api.core.deps import RuntimeDep
from ledger_api.core.pages import CursorParam, Limit, Since, Until
from ledger_api.core.proofs import chain_view
from ledger_api.core.schemas import CampaignId, CharityId

router = APIRouter(prefix="/v1/audit", tags=["audit"])

CharityFilter = Annotated[CharityId | None, Query(description="Only this charity (CH-...).")]
CampaignFilter = Annotated[CampaignId | None, Query(description="Only this campaign (CP-...).")]
Block = Annotated[int | None, Query(ge=0, le=2**63 - 1)]


@router.get("/trail")
def audit_trail(
    runtime: RuntimeDep,
    principal: AuditPrincipal,
    charity_id: CharityFilter = None,
    campaign_id: CampaignFilter = None,
    kind: Annotated[
        list[str] | None, Query(description=f"Only these kinds of event: {', '.join(trail.KINDS)}.")
    ] = None,
    from_block: Block = None,
    to_block: Block = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    cursor: CursorParam = None,
) -> JSONResponse:
    """Every ledger event in scope, in chain order, with its chain reference and sender."""
    names = trail.event_names(kind)
    with runtime.engine.connect() as connection:
        scope = resolve(runtime, connection, principal, charity_id, campaign_id)
        view = chain_view(runtime, connection)
        query = trail.statement(runtime, scope, names, from_block, to_block, since, until, cursor)
        body = trail.trail_page(runtime, connection, view, query, limit)
    return JSONResponse({"scope": scope.describe(), **body})


@router.get("/reconciliation")
def reconciliation(
    runtime: RuntimeDep,
    principal: AuditPrincipal,
    charity_id: CharityFilter = None,
    campaign_id: CampaignFilter = None,
) -> JSONResponse:
    """Re-read the chain (events and view functions) and compare it with the mirror."""
    with runtime.engine.connect() as connection:
        scope = resolve(runtime, connection, principal, charity_id, campaign_id)
    return JSONResponse(reconcile.reconcile(runtime, scope))


@router.get("/anomalies")
def anomalies(
    runtime: RuntimeDep,
    principal: AuditPrincipal,
    charity_id: CharityFilter = None,
    campaign_id: CampaignFilter = None,
    evidence_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    recipient_share: Annotated[float | None, Query(gt=0, le=1)] = None,
    large_share: Annotated[float | None, Query(gt=0, le=1)] = None,
    pending_minutes: Annotated[int | None, Query(ge=1, le=525_600)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JSONResponse:
    """Disbursements without evidence, concentrated recipients, refunds after allocation,
    records never finalized and large disbursements (thresholds default to the settings)."""
    settings = runtime.settings
    limits = anomaly_reports.Thresholds(
        evidence_days=settings.anomaly_evidence_days if evidence_days is None else evidence_days,
        recipient_share=settings.anomaly_recipient_share if recipient_share is None else recipient_share,
        large_share=settings.anomaly_large_share if large_share is None else large_share,
        pending_minutes=settings.anomaly_pending_minutes if pending_minutes is None else pending_minutes,
    )
    with runtime.engine.connect() as connection:
        scope = resolve(runtime, connection, principal, charity_id, campaign_id)
    return JSONResponse(anomaly_reports.anomalies(runtime, scope, limits, limit))


@router.get("/export")
def export(
    runtime: RuntimeDep,
    principal: AuditPrincipal,
    format: Annotated[Literal["csv", "json", "iati"], Query(description="csv, json or iati (2.03 XML).")],
    charity_id: CharityFilter = None,
    campaign_id: CampaignFilter = None,
) -> StreamingResponse:
    """The ledger in scope as CSV, JSON (the full trail) or IATI 2.03 activity XML, streamed."""
    with runtime.engine.connect() as connection:
        scope = resolve(runtime, connection, principal, charity_id, campaign_id)
    media_type, _ = exports.FORMATS[format]
    return StreamingResponse(
        exports.export(runtime, scope, format),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{exports.filename(scope, format)}"'},
    )
