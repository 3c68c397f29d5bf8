"""Approvals before payout: approvers, a campaign's rule, proposals, votes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from ledger_api.approvals import reads, service
from ledger_api.approvals.schemas import (
    Approver,
    ApproverCreate,
    ApproverList,
    ApproverRegistered,
    Executed,
    Proposal,
    ProposalList,
    Rejection,
    RuleAnswer,
    RuleSet,
    VoteRecorded,
)
from ledger_api.core import ids
from ledger_api.core.errors import AUTH_ERRORS, READ_ERRORS, WRITE_ERRORS, InvalidRequest, NotFound, problems
from ledger_api.core.hexes import hex0x
from ledger_api.core.schemas import CampaignId, CharityId, DisbursementId
from ledger_api.core.security import (
    CurrentPrincipal,
    OptionalPrincipal,
    SignerPrincipal,
    WriterPrincipal,
    require_charity,
)
from ledger_api.mirror.gateway import MirrorDep
from ledger_api.transactions.schemas import write_responses
from ledger_api.transactions.service import WaitParam, WriterDep, WritesDep, answer

router = APIRouter(tags=["approvals"])
CharityPath = Annotated[CharityId, Path(description="The charity's ID (CH-...)")]
CampaignPath = Annotated[CampaignId, Path(description="The campaign's ID (CP-...)")]
ProposalPath = Annotated[DisbursementId, Path(description="The proposed disbursement's ID (DB-...)")]


@router.post(
    "/v1/charities/{charity_id}/approvers",
    status_code=201,
    response_model=ApproverRegistered,
    responses=problems(*WRITE_ERRORS),
)
def register_approver(
    charity_id: CharityPath, body: ApproverCreate, writes: WriterDep, principal: WriterPrincipal
) -> JSONResponse:
    """Register an approver of the charity's disbursements (a board member, the finance
    officer, an outside supervisor) and issue its API key (role `approver`, shown once).
    Without `account` the platform holds the approver's key and signs its approvals; with
    one, the approver signs each approval with its own key (`?mode=prepare`, then POST
    /v1/relay)."""
    charity_hex = hex0x(ids.to_bytes32(charity_id))
    row, issued = service.register_approver(writes, principal, charity_hex, body)
    registered = ApproverRegistered(
        account=row.account,
        label=row.label,
        held_by_platform=row.held_by_platform,
        key_id=issued.id,
        key=issued.key,
    )
    return JSONResponse(registered.body(), status_code=201, headers={"Cache-Control": "no-store"})


@router.get("/v1/charities/{charity_id}/approvers", responses=problems(*AUTH_ERRORS, *READ_ERRORS))
def list_approvers(charity_id: CharityPath, writes: WriterDep, principal: WriterPrincipal) -> ApproverList:
    """The charity's approver accounts, with its labels for them."""
    charity_hex = hex0x(ids.to_bytes32(charity_id))
    require_charity(principal, charity_hex)
    rows = service.approver_accounts(writes, charity_hex).values()
    return ApproverList(
        items=[Approver(account=r.account, label=r.label, held_by_platform=r.held_by_platform) for r in rows]
    )


@router.put(
    "/v1/campaigns/{campaign_id}/approval-rule",
    status_code=201,
    response_model=RuleAnswer,
    responses=write_responses(RuleAnswer),
)
def set_approval_rule(
    campaign_id: CampaignPath,
    body: RuleSet,
    writes: WritesDep,
    principal: WriterPrincipal,
    wait: WaitParam = True,
) -> JSONResponse:
    """Put the campaign's disbursements under approval: from now on each one (a plain POST
    /v1/disbursements included) is a proposal that is paid, and counts, only once
    `threshold` of `approvers`, never its proposer, approve it within `validity_hours`. A
    new rule replaces the old for proposals made after it; a rule is never removed."""
    created, state = service.set_rule(writes, principal, campaign_id, body, wait)
    return answer(created, [state], wait)


@router.get("/v1/campaigns/{campaign_id}/proposals", responses=problems(*AUTH_ERRORS, *READ_ERRORS))
def campaign_proposals(
    campaign_id: CampaignPath, mirror: MirrorDep, principal: OptionalPrincipal
) -> ProposalList:
    """The campaign's proposed disbursements, newest first (public: each is on chain), with
    who proposed, who approved or rejected and when, and under which rule (k of n)."""
    campaign_hex = hex0x(ids.to_bytes32(campaign_id))
    labels = principal.can_read if principal is not None else (lambda charity_hex: False)
    items = reads.proposals(mirror, campaign_hex=campaign_hex, labels_for=labels)
    return ProposalList(items=items)


@router.get("/v1/proposals", responses=problems(*AUTH_ERRORS, InvalidRequest))
def list_proposals(
    mirror: MirrorDep,
    principal: CurrentPrincipal,
    waiting_for: Annotated[
        Literal["me"] | None,
        Query(description="`me`: the proposals this approver key may approve now."),
    ] = None,
) -> ProposalList:
    """An approver key: with `waiting_for=me`, what waits for its approval (pending, not
    expired, its rule names it, not its own, not approved by it yet); without, every
    proposal of its charity. A charity key: its charity's proposals."""
    if principal.charity_id is None:
        raise InvalidRequest("this lists one charity's proposals: use an approver or charity key")
    if waiting_for == "me":
        if principal.role != "approver" or principal.account is None:
            raise InvalidRequest("waiting_for=me is for an approver key")
        items = reads.proposals(mirror, charity_hex=principal.charity_id, waiting_for=principal.account)
    else:
        items = reads.proposals(mirror, charity_hex=principal.charity_id, labels_for=principal.can_read)
    return ProposalList(items=items)


@router.get("/v1/proposals/{proposal_id}", responses=problems(*READ_ERRORS))
def get_proposal(proposal_id: ProposalPath, mirror: MirrorDep) -> Proposal:
    """A proposed disbursement (public), with its votes and status."""
    found = reads.proposals(mirror, disbursement_hex=hex0x(ids.to_bytes32(proposal_id)))
    if not found:
        raise NotFound("proposal not found")
    return found[0]


@router.post(
    "/v1/proposals/{proposal_id}/approve",
    status_code=201,
    response_model=VoteRecorded,
    responses=write_responses(VoteRecorded),
)
def approve(
    proposal_id: ProposalPath, writes: WritesDep, principal: SignerPrincipal, wait: WaitParam = True
) -> JSONResponse:
    """Approve as this approver key's account. If it was the last approval needed, the
    proposal is executed at once (`execution`): the disbursement is recorded and counts."""
    created, states = service.vote(writes, principal, proposal_id, None, wait)
    return answer(created, states, wait)


@router.post(
    "/v1/proposals/{proposal_id}/reject",
    status_code=201,
    response_model=VoteRecorded,
    responses=write_responses(VoteRecorded),
)
def reject(
    proposal_id: ProposalPath,
    body: Rejection,
    writes: WritesDep,
    principal: SignerPrincipal,
    wait: WaitParam = True,
) -> JSONResponse:
    """Reject for good, with a public reason: an approver of the proposal's rule, or the
    charity (withdrawing its own proposal). A rejected proposal can never be paid."""
    created, states = service.vote(writes, principal, proposal_id, body.reason, wait)
    return answer(created, states, wait)


@router.post(
    "/v1/proposals/{proposal_id}/execute",
    status_code=201,
    response_model=Executed,
    responses=write_responses(Executed),
)
def execute(
    proposal_id: ProposalPath, writes: WritesDep, principal: SignerPrincipal, wait: WaitParam = True
) -> JSONResponse:
    """Execute an approved proposal from the input the service kept (the service does this
    by itself after the last approval it carries; this is for the rest)."""
    created, state = service.execute(writes, principal, proposal_id, wait)
    return answer(created, [state], wait)
