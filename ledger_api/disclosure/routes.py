"""Disclosure on time: a campaign's end date, reports and disposals of remaining funds,
corrections with their reasons, and the compliance calendar computed from them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from ledger_api.audit.scope import AuditPrincipal, ScopeDep
from ledger_api.core import ids
from ledger_api.core.errors import AUTH_ERRORS, READ_ERRORS, InvalidRequest, NotFound, problems
from ledger_api.core.schemas import CampaignId, CharityId
from ledger_api.core.security import WriterPrincipal
from ledger_api.disbursements import service as disbursements
from ledger_api.disclosure import answers, reads, rules, service
from ledger_api.disclosure.rules import RuleSet
from ledger_api.disclosure.schemas import (
    EARLIEST,
    LATEST,
    CampaignDisclosure,
    CorrectionAnswer,
    CorrectionRecord,
    DisclosureReport,
    DisposalAnswer,
    DisposalRecord,
    EndDateAnswer,
    EndDateSet,
    ReportAnswer,
    ReportPeriod,
    ReportPublish,
)
from ledger_api.mirror.gateway import MirrorDep
from ledger_api.transactions.schemas import write_responses
from ledger_api.transactions.service import WaitParam, WritesDep, answer

router = APIRouter(tags=["disclosure"])
CampaignPath = Annotated[CampaignId, Path(description="The campaign's ID (CP-...)")]
CharityPath = Annotated[CharityId, Path(description="The charity's ID (CH-...)")]
AsOf = Annotated[
    date | None,
    Query(
        ge=EARLIEST,
        le=LATEST,
        description="The day to judge on (end of that day, in the rule set's time zone); default today.",
    ),
]
Language = Annotated[Literal["en", "zh-CN"], Query(description="The language of the rules' titles.")]


def current_rules(mirror: MirrorDep) -> RuleSet:
    return rules.load(mirror.settings.disclosure_rules)


RulesDep = Annotated[RuleSet, Depends(current_rules)]


@router.post(
    "/v1/campaigns/{campaign_id}/end-date",
    status_code=201,
    response_model=EndDateAnswer,
    responses=write_responses(EndDateAnswer),
)
def set_end_date(
    campaign_id: CampaignPath,
    body: EndDateSet,
    writes: WritesDep,
    principal: WriterPrincipal,
    ruleset: RulesDep,
    wait: WaitParam = True,
) -> JSONResponse:
    """Set the campaign's end date, from which the after-end disclosures run; a change of
    an end date already set needs its reason, recorded on chain with it."""
    made, state = service.set_end(writes, principal, ruleset, campaign_id, body, wait)
    return answer(made, [state], wait)


@router.post(
    "/v1/campaigns/{campaign_id}/reports",
    status_code=201,
    response_model=ReportAnswer,
    responses=write_responses(ReportAnswer),
)
def publish_report(
    campaign_id: CampaignPath,
    body: ReportPublish,
    writes: WritesDep,
    principal: WriterPrincipal,
    ruleset: RulesDep,
    wait: WaitParam = True,
) -> JSONResponse:
    """Publish a periodic or final report of the campaign: its document's SHA-256 is
    anchored on chain with the period it covers. The report is public: keep personal data
    out of it (PRIVACY.md)."""
    made, state = service.publish_report(writes, principal, ruleset, campaign_id, body, wait)
    return answer(made, [state], wait)


MAX_MB = disbursements.MAX_DOCUMENT // (1024 * 1024)
REPORT_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "kind", "period_start", "period_end"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": f"The report, at most {MAX_MB} MB: public, so without"
                            " personal data.",
                        },
                        "kind": {"type": "string", "enum": ["periodic", "final"]},
                        "period_start": {"type": "string", "format": "date"},
                        "period_end": {"type": "string", "format": "date"},
                    },
                }
            }
        },
    }
}


@router.post(
    "/v1/campaigns/{campaign_id}/reports/document",
    status_code=201,
    max_body_size=disbursements.MAX_DOCUMENT + 1024 * 1024,
    openapi_extra=REPORT_FORM,
    response_model=ReportAnswer,
    responses=write_responses(ReportAnswer),
)
async def publish_report_document(
    campaign_id: CampaignPath,
    request: Request,
    writes: WritesDep,
    principal: WriterPrincipal,
    ruleset: RulesDep,
    wait: WaitParam = True,
) -> JSONResponse:
    """Publish a report with its document uploaded here: the SHA-256 is anchored on chain
    and the document served publicly at /v1/evidence/{sha256}, as evidence is."""
    await run_in_threadpool(
        writes.operator_for, principal, writes.charity_of_campaign(campaign_id), "campaign"
    )
    try:
        form = await request.form(max_files=1, max_fields=4)
    except HTTPException as exc:
        raise InvalidRequest(
            f"send the report as multipart: `file`, `kind`, `period_start`, `period_end` ({exc.detail})"
        ) from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("upload the report as the multipart file field `file`")
        fields = {name: form.get(name) for name in ("kind", "period_start", "period_end")}
        try:
            period = ReportPeriod.model_validate(fields)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from None
        made, state = await run_in_threadpool(
            service.publish_report_document, writes, principal, ruleset, campaign_id, period, upload, wait
        )
    finally:
        await form.close()
    return answer(made, [state], wait)


@router.post(
    "/v1/campaigns/{campaign_id}/disposals",
    status_code=201,
    response_model=DisposalAnswer,
    responses=write_responses(DisposalAnswer),
)
def record_disposal(
    campaign_id: CampaignPath,
    body: DisposalRecord,
    writes: WritesDep,
    principal: WriterPrincipal,
    wait: WaitParam = True,
) -> JSONResponse:
    """Record what becomes of a closed campaign's remaining funds: returned to donors,
    moved to a named campaign, or kept under a stated rule."""
    made, state = service.record_disposal(writes, principal, campaign_id, body, wait)
    return answer(made, [state], wait)


@router.post(
    "/v1/charities/{charity_id}/corrections",
    status_code=201,
    response_model=CorrectionAnswer,
    responses=write_responses(CorrectionAnswer),
)
def record_correction(
    charity_id: CharityPath,
    body: CorrectionRecord,
    writes: WritesDep,
    principal: WriterPrincipal,
    wait: WaitParam = True,
) -> JSONResponse:
    """Correct one of the charity's records: a new record naming the original (and its
    replacement, if any) with the reason, which is required; nothing is edited."""
    made, state = service.record_correction(writes, principal, charity_id, body, wait)
    return answer(made, [state], wait)


@router.get(
    "/v1/campaigns/{campaign_id}/disclosures",
    response_model=CampaignDisclosure,
    responses=problems(*READ_ERRORS),
)
def campaign_disclosures(
    campaign_id: CampaignPath, mirror: MirrorDep, ruleset: RulesDep, as_of: AsOf = None, lang: Language = "en"
) -> CampaignDisclosure:
    """The campaign's disclosure obligations under the deployment's rule set, with the
    reports, disposals and corrections that met them (public)."""
    day = as_of or reads.today(mirror, ruleset)
    with mirror.engine.connect() as connection:
        found = reads.campaigns(mirror, connection, ruleset, day, None, ids.to_hex(campaign_id, "campaign"))
    if not found:
        raise NotFound("campaign not found")
    facts, extra = found[0]
    return CampaignDisclosure.model_validate(answers.campaign_answer(ruleset, facts, extra, day, lang))


@router.get(
    "/v1/audit/disclosure",
    response_model=DisclosureReport,
    tags=["audit"],
    responses=problems(*AUTH_ERRORS, *READ_ERRORS),
)
def audit_disclosure(
    mirror: MirrorDep,
    principal: AuditPrincipal,
    scope: ScopeDep,
    ruleset: RulesDep,
    as_of: AsOf = None,
    lang: Language = "en",
) -> DisclosureReport:
    """Every disclosure obligation of every campaign in scope as of a date: the rule
    (citing its source), the due date, met / met late / due / overdue, and the record that
    met it; the summary names the campaigns with an obligation overdue."""
    day = as_of or reads.today(mirror, ruleset)
    report = answers.disclosure(mirror, ruleset, day, scope.charity_id, scope.campaign_id, lang)
    return DisclosureReport.model_validate(report)
