"""Campaigns: a charity's fundraising projects."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from ledger_api.campaigns import reads, service
from ledger_api.campaigns.schemas import Campaign, CampaignClosed, CampaignCreate, CampaignCreated, Flows
from ledger_api.core.errors import READ_ERRORS, InvalidRequest, problems
from ledger_api.core.pages import (
    CursorParam,
    Limit,
    Page,
    RecordFiltersDep,
    Since,
    Until,
)
from ledger_api.core.schemas import CampaignId, CharityId
from ledger_api.core.security import WriterPrincipal
from ledger_api.disbursements.schemas import DisbursementSummary
from ledger_api.donations.schemas import DonationSummary
from ledger_api.mirror.gateway import MirrorDep, PublicMirrorDep, primary_if_missing
from ledger_api.transactions.schemas import write_responses
from ledger_api.transactions.service import WaitParam, WritesDep, answer

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])
CampaignPath = Annotated[CampaignId, Path(description="The campaign's ID (CP-...)")]


@router.post("", status_code=201, response_model=CampaignCreated, responses=write_responses(CampaignCreated))
def create_campaign(
    body: CampaignCreate, writes: WritesDep, principal: WriterPrincipal, wait: WaitParam = True
) -> JSONResponse:
    created, state = service.create(writes, principal, body, wait)
    return answer(created, [state], wait)


@router.post(
    "/{campaign_id}/close",
    status_code=201,
    response_model=CampaignClosed,
    responses=write_responses(CampaignClosed),
)
def close_campaign(
    campaign_id: CampaignPath, writes: WritesDep, principal: WriterPrincipal, wait: WaitParam = True
) -> JSONResponse:
    closed, state = service.close(writes, principal, campaign_id, wait)
    return answer(closed, [state], wait)


@router.get("", response_model_exclude_unset=True, responses=problems(InvalidRequest))
def list_campaigns(
    mirror: MirrorDep,
    limit: Limit = 50,
    cursor: CursorParam = None,
    charity_id: Annotated[CharityId | None, Query(description="Only this charity's campaigns.")] = None,
    since: Since = None,
    until: Until = None,
) -> Page[Campaign]:
    """Campaigns in the order they were created, with their totals (public)."""
    return reads.list_campaigns(mirror, limit, cursor, charity_id, since, until)


@router.get("/{campaign_id}", response_model_exclude_unset=True, responses=problems(*READ_ERRORS))
@primary_if_missing
def get_campaign(campaign_id: CampaignPath, mirror: PublicMirrorDep) -> Campaign:
    """Received, refunded, disbursed, available, counts and evidence coverage (public)."""
    return reads.get_campaign(mirror, campaign_id)


@router.get("/{campaign_id}/donations", response_model_exclude_unset=True, responses=problems(*READ_ERRORS))
def campaign_donations(
    campaign_id: CampaignPath, mirror: MirrorDep, filters: RecordFiltersDep
) -> Page[DonationSummary]:
    """The campaign's donations: amounts, channels and times only (public)."""
    return reads.list_donations(mirror, campaign_id, filters)


@router.get(
    "/{campaign_id}/disbursements", response_model_exclude_unset=True, responses=problems(*READ_ERRORS)
)
def campaign_disbursements(
    campaign_id: CampaignPath, mirror: MirrorDep, filters: RecordFiltersDep
) -> Page[DisbursementSummary]:
    """The campaign's disbursements with their evidence counts (public)."""
    return reads.list_disbursements(mirror, campaign_id, filters)


@router.get("/{campaign_id}/flows", response_model_exclude_unset=True, responses=problems(*READ_ERRORS))
def campaign_flows(campaign_id: CampaignPath, mirror: MirrorDep) -> Flows:
    """Donations (grouped by month and channel) to disbursements (the 20 largest, the rest
    as "other"), refunds and what is not yet spent, with amounts (public)."""
    return reads.flows(mirror, campaign_id)
