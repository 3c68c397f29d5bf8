"""Approvals before payout (maker-checker): approver accounts and their keys, a
campaign's approval rule, approving, rejecting and executing proposals.

Who is an approver, and with what credential:
- A charity registers approver accounts (POST /v1/charities/{id}/approvers), each with a
  label ("Finance officer"). Without an account the platform makes one in its keystore and
  signs for the approver, like a platform-held operator key; with an account, the approver
  holds the key and signs each approval as an EIP-712 SignedCall, relayed by POST /v1/relay.
- Either way the approver gets an API key of role `approver`, bound to that one account
  and charity: it lists what waits for it and approves or rejects, and nothing else (it
  may not write records nor read the charity's private ones). Whether the account may
  approve a given proposal is the contract's to say: an approver of the rule version the
  proposal was made under, never its proposer, once (NotApprover, ProposerCannotApprove,
  AlreadyApproved come back as 409s).
- A rule may only name approver accounts the charity registered, so every approver has a
  label its console shows and the self-dealing check can read.

A plain disbursement on a campaign with a rule becomes a proposal (disbursements/service.py);
after an approval the service sends is mined, the proposal is executed at once if it now
has its approvals (transactions/proposals.py).
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger_api.approvals.schemas import ApproverCreate, RuleSet
from ledger_api.chain.abi import encode
from ledger_api.chain.writer import TxState
from ledger_api.core import ids
from ledger_api.core.db import insert_ignore
from ledger_api.core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from ledger_api.core.models import ApproverAccount
from ledger_api.core.security import Principal, require_charity
from ledger_api.keys.service import IssuedKey, issue_key
from ledger_api.transactions import proposals
from ledger_api.transactions.service import SignatureRequired, Step, Writes


def approver_accounts(writes: Writes, charity_hex: str) -> dict[str, ApproverAccount]:
    with Session(writes.engine) as session:
        rows = session.scalars(
            select(ApproverAccount)
            .where(
                ApproverAccount.deployment_id == writes.deployment_id,
                ApproverAccount.charity_id == charity_hex,
            )
            .order_by(ApproverAccount.created_at, ApproverAccount.account)
        ).all()
        session.expunge_all()  # plain values from here on
        return {row.account: row for row in rows}


def register_approver(
    writes: Writes, principal: Principal, charity_hex: str, body: ApproverCreate
) -> tuple[ApproverAccount, IssuedKey]:
    require_charity(principal, charity_hex)
    writes.known_charity(charity_hex)
    if body.account is None:
        account = writes.keystore.create(label=f"approver:{charity_hex}:{body.label}")
    else:
        account = to_checksum_address(body.account)
        if account in writes.keystore.addresses() or account == to_checksum_address(writes.service_account):
            raise InvalidRequest("this account's key is held by the platform: leave `account` out instead")
    if account in approver_accounts(writes, charity_hex):
        raise Conflict(f"{account} is already an approver of this charity")
    # A platform-held approver pays the gas of its approvals. One with its own key does
    # not (the relayer does), but eth-tester refuses even the eth_call simulating its
    # prepared approval from an account without balance: development chains fund both.
    writes.fund_on_dev_chain(account)
    row = {
        "deployment_id": writes.deployment_id,
        "charity_id": charity_hex,
        "account": account,
        "label": body.label,
        "held_by_platform": body.account is None,
    }
    with writes.engine.begin() as connection:
        insert_ignore(connection, ApproverAccount.__table__, [row])  # type: ignore[arg-type]
    issued = issue_key(writes.engine, "approver", charity_hex, body.label, account=account)
    return approver_accounts(writes, charity_hex)[account], issued


def set_rule(
    writes: Writes, principal: Principal, campaign_id: str, body: RuleSet, wait: bool
) -> tuple[dict[str, Any], TxState]:
    charity_hex = writes.charity_of_campaign(campaign_id)
    operator = writes.operator_for(principal, charity_hex, "campaign")
    approvers = [to_checksum_address(a) for a in body.approvers]
    if len(set(approvers)) != len(approvers):
        raise InvalidRequest("an approver is named twice")
    if body.threshold > len(approvers):
        raise InvalidRequest(f"a threshold of {body.threshold} needs at least {body.threshold} approvers")
    unknown = [a for a in approvers if a not in approver_accounts(writes, charity_hex)]
    if unknown:
        raise InvalidRequest(
            f"not approvers of this charity: {', '.join(unknown)} (register them first:"
            " POST /v1/charities/{id}/approvers)"
        )
    operators = {a.lower() for a in writes.own_operators(charity_hex)} | {operator.lower()}
    if any(a.lower() in operators for a in approvers):
        # The contract only stops a proposer approving its own proposal; an operator that
        # approves another operator's is no check on the charity's staff.
        raise InvalidRequest("an operator of the charity cannot be one of its approvers")
    validity = body.validity_hours * 3600
    campaign = ids.to_bytes32(campaign_id, "campaign")
    call = encode("setApprovalRule", campaign, approvers, body.threshold, validity)
    (state,) = writes.write(
        principal,
        charity_hex,
        "campaign",
        [Step(call, {"kind": "approval-rule", "ids": [campaign_id]})],
        wait,
    )
    answer = {
        "campaign_id": campaign_id,
        "approvers": approvers,
        "threshold": body.threshold,
        "validity_seconds": validity,
        "transaction": writes.transaction_view(state),
    }
    return answer, state


def _proposal(writes: Writes, proposal_id: str) -> tuple[bytes, str, dict[str, Any]]:
    """The proposal's on-chain ID, its charity and proposalOf."""
    disbursement = ids.to_bytes32(proposal_id, "disbursement")
    found = proposals.on_chain(writes, disbursement)
    return disbursement, writes.charity_of_campaign(found["campaign_id"]), found


def approver_of(writes: Writes, principal: Principal, charity_hex: str) -> ApproverAccount:
    """The approver account an approver key is bound to, for a proposal of `charity_hex`;
    another charity's proposal is not found."""
    if principal.role != "approver" or principal.account is None:
        raise Forbidden("only an approver key may approve")
    if principal.charity_id != charity_hex:
        raise NotFound("proposal not found")
    account = approver_accounts(writes, charity_hex).get(to_checksum_address(principal.account))
    if account is None:
        raise Forbidden("this key's approver account is no longer registered")
    return account


def vote(
    writes: Writes, principal: Principal, proposal_id: str, reason: str | None, wait: bool
) -> tuple[dict[str, Any], list[TxState]]:
    """Approve (reason None) or reject a proposal as the key's approver account, or reject
    it as the charity's operator (withdrawing it). After an approval is mined, executes the
    proposal if it now has its approvals."""
    disbursement, charity_hex, _ = _proposal(writes, proposal_id)
    kind = "approve" if reason is None else "reject"
    if reason is None:
        call = encode("approveDisbursement", disbursement)
    else:
        call = encode("rejectDisbursement", disbursement, reason)
    step = Step(
        call, {"kind": "proposal-approved" if reason is None else "proposal-rejected", "ids": [proposal_id]}
    )
    if principal.role in ("admin", "charity"):
        if reason is None:
            raise Forbidden("the charity's operators propose; only its approvers approve")
        states = writes.write(principal, charity_hex, "proposal", [step], wait)
    else:
        approver = approver_of(writes, principal, charity_hex)
        if not approver.held_by_platform:
            if writes.mode != "prepare":
                raise SignatureRequired(
                    "you hold your approver key: ask again with ?mode=prepare, sign the answer's"
                    " typed data with it, and submit it to POST /v1/relay",
                    operator=approver.account,
                )
            states = writes.prepare(approver.account, [step])
        else:
            gas = writes.simulate(approver.account, call)
            state = writes.writer.submit(approver.account, call, gas, charity_hex, step.records)
            states = writes.settle([state], wait)
    answer: dict[str, Any] = {
        "id": proposal_id,
        "vote": kind,
        "transaction": writes.transaction_view(states[0]),
    }
    if reason is None and states[0].status == "mined":
        execution = proposals.execute_if_ready(writes, proposal_id, wait)
        if execution is not None:
            answer["execution"] = writes.transaction_view(execution)
            states = [*states, execution]
    return answer, states


def execute(
    writes: Writes, principal: Principal, proposal_id: str, wait: bool
) -> tuple[dict[str, Any], TxState]:
    _, charity_hex, _ = _proposal(writes, proposal_id)
    if principal.role == "approver":
        approver_of(writes, principal, charity_hex)
    else:
        require_charity(principal, charity_hex, "proposal")
    state = proposals.execute(writes, proposal_id, wait)
    return {"id": proposal_id, "transaction": writes.transaction_view(state)}, state
