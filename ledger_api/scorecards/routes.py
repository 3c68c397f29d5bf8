"""GET /v1/campaigns/{id}/scorecard and /v1/charities/{id}/scorecard (public)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query

from ledger_api.core import ids
from ledger_api.core.errors import READ_ERRORS, problems
from ledger_api.core.schemas import CampaignId, CharityId
from ledger_api.disclosure import reads as disclosure_reads
from ledger_api.disclosure.routes import RulesDep
from ledger_api.disclosure.schemas import EARLIEST, LATEST
from ledger_api.mirror.gateway import MirrorDep
from ledger_api.scorecards import reads
from ledger_api.scorecards.schemas import Scorecard

router = APIRouter(tags=["scorecards"])
AsOf = Annotated[
    date | None,
    Query(ge=EARLIEST, le=LATEST, description="The day the disclosure figures are judged on; default today."),
]


@router.get(
    "/v1/campaigns/{campaign_id}/scorecard",
    response_model_exclude_unset=True,
    responses=problems(*READ_ERRORS),
)
def campaign_scorecard(
    campaign_id: Annotated[CampaignId, Path(description="The campaign's ID (CP-...)")],
    mirror: MirrorDep,
    ruleset: RulesDep,
    as_of: AsOf = None,
) -> Scorecard:
    """The campaign's transparency scorecard: money that adds up, evidence, corrections,
    approvals, recipients' confirmations and disclosures on time, each with its definition
    and a link to its records; `scripts/scorecard_from_csv.py` recomputes it from the CSV
    export."""
    scope = reads.Scope("campaign", campaign_id, ids.to_hex(campaign_id, "campaign"))
    return Scorecard.model_validate(
        reads.scorecard(mirror, ruleset, scope, as_of or disclosure_reads.today(mirror, ruleset))
    )


@router.get(
    "/v1/charities/{charity_id}/scorecard",
    response_model_exclude_unset=True,
    responses=problems(*READ_ERRORS),
)
def charity_scorecard(
    charity_id: Annotated[CharityId, Path(description="The charity's ID (CH-...)")],
    mirror: MirrorDep,
    ruleset: RulesDep,
    as_of: AsOf = None,
) -> Scorecard:
    """The same over every campaign of the charity (money per currency)."""
    scope = reads.Scope("charity", charity_id, ids.to_hex(charity_id, "charity"))
    return Scorecard.model_validate(
        reads.scorecard(mirror, ruleset, scope, as_of or disclosure_reads.today(mirror, ruleset))
    )
