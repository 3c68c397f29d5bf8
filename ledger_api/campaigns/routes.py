"""Campaigns: a charity's fundraising projects."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from ledger_api.campaigns import reads
from ledger_api.campaigns.schemas import Campaign, CampaignClosed, CampaignCreate, CampaignCreated, Flows
from ledger_api.campaigns.service import charity_of_campaign
from ledger_api.charities.service import ZERO, operator_for
from ledger_api.core import ids, writes
from ledger_api.core.deps import RuntimeDep, WaitParam, WriteRuntimeDep
from ledger_api.core.errors import READ_ERRORS, InvalidRequest, problems
from ledger_api.core.pages import CursorParam, Limit, Page, RecordFiltersDep, Since, Until
from ledger_api.core.schemas import CampaignId, CharityId
from ledger_api.core.security import WriterPrincipal
from ledger_api.disbursements.schemas import DisbursementSummary
from ledger_api.donations.schemas import DonationSummary
from ledger_api.transactions.schemas import write_responses

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])
CampaignPath = Annotated[CampaignId, Path(description="The campaign's ID (CP-...)")]


@router.post("", status_code=201, response_model=CampaignCreated, responses=write_responses(CampaignCreated))
def create_campaign(
    body: CampaignCreate, runtime: WriteRuntimeDep, principal: WriterPrincipal, wait: WaitParam = True
) -> JSONResponse:
    charity_hex = ids.to_hex(body.charity_id, "charity")
    operator = operator_for(runtime, principal, charity_hex)
    campaign_id = ids.new("campaign")
    metadata = bytes.fromhex(body.metadata_hash[2:]) if body.metadata_hash else ZERO
    call = runtime.contract.functions.createCampaign(
        ids.to_bytes32(campaign_id),
        bytes.fromhex(charity_hex[2:]),
        body.name,
        body.currency.encode(),
        body.goal,
        metadata,
    )
    state = writes.write(
        runtime, operator, call, charity_hex, {"kind": "campaign", "ids": [campaign_id]}, wait
    )
    return writes.answer(
        {
            "id": campaign_id,
            "charity_id": body.charity_id,
            "name": body.name,
            "currency": body.currency,
            "goal": body.goal,
            "transaction": writes.transaction_view(runtime, state),
        },
        [state],
        wait,
    )


@router.post(
    "/{campaign_id}/close",
    status_code=201,
    response_model=CampaignClosed,
    responses=write_responses(CampaignClosed),
)
def close_campaign(
    campaign_id: CampaignPath, runtime: WriteRuntimeDep, principal: WriterPrincipal, wait: WaitParam = True
) -> JSONResponse:
    charity_hex = charity_of_campaign(runtime, campaign_id)
    operator = operator_for(runtime, principal, charity_hex, "campaign")
    call = runtime.contract.functions.closeCampaign(ids.to_bytes32(campaign_id, "campaign"))
    state = writes.write(
        runtime, operator, call, charity_hex, {"kind": "campaign-closed", "ids": [campaign_id]}, wait
    )
    return writes.answer(
        {"id": campaign_id, "closed": True, "transaction": writes.transaction_view(runtime, state)},
        [state],
        wait,
    )


@router.get("", response_model_exclude_unset=True, responses=problems(InvalidRequest))
def list_campaigns(
    runtime: RuntimeDep,
    limit: Limit = 50,
    cursor: CursorParam = None,
    charity_id: Annotated[CharityId | None, Query(description="Only this charity's campaigns.")] = None,
    since: Since = None,
    until: Until = None,
) -> Page[Campaign]:
    """Campaigns in the order they were created, with their totals (public)."""
    return reads.list_campaigns(runtime, limit, cursor, charity_id, since, until)


@router.get("/{campaign_id}", response_model_exclude_unset=True, responses=problems(*READ_ERRORS))
def get_campaign(campaign_id: CampaignPath, runtime: RuntimeDep) -> Campaign:
    """Received, refunded, disbursed, available, counts and evidence coverage (public)."""
    return reads.get_campaign(runtime, campaign_id)


@router.get("/{campaign_id}/donations", response_model_exclude_unset=True, responses=problems(*READ_ERRORS))
def campaign_donations(
    campaign_id: CampaignPath, runtime: RuntimeDep, filters: RecordFiltersDep
) -> Page[DonationSummary]:
    """The campaign's donations: amounts, channels and times only (public)."""
    return reads.list_donations(runtime, campaign_id, filters)


@router.get(
    "/{campaign_id}/disbursements", response_model_exclude_unset=True, responses=problems(*READ_ERRORS)
)
def campaign_disbursements(
    campaign_id: CampaignPath, runtime: RuntimeDep, filters: RecordFiltersDep
) -> Page[DisbursementSummary]:
    """The campaign's disbursements with their evidence counts (public)."""
    return reads.list_disbursements(runtime, campaign_id, filters)


@router.get("/{campaign_id}/flows", response_model_exclude_unset=True, responses=problems(*READ_ERRORS))
def campaign_flows(campaign_id: CampaignPath, runtime: RuntimeDep) -> Flows:
    """Donations (grouped by month and channel) to disbursements (the 20 largest, the rest
    as "other"), refunds and what is not yet spent, with amounts (public)."""
    return reads.flows(runtime, campaign_id)
