"""Writes decoded events and the projections the API reads, and rolls them back.

Rows are inserted in bulk with conflict-ignoring inserts keyed on the record IDs, so
replaying a range changes nothing. Aggregates (a donation's allocated and refunded, a
disbursement's evidence count, operator status) are recomputed from the rows they
summarise, for the keys a range or a rollback touched, by the same code on both paths, so
they cannot drift. Campaign totals are the exception: a campaign holds up to millions of
donations, so a range adds its own new rows to them (add_to_campaigns) when it inserted
every one, and they are recomputed like the others when it did not and after a rollback.
Likewise a campaign's evidenced disbursements (their number and sum, for the campaign
page's evidence coverage) change by the disbursements whose evidence count a range took
from zero or, in a rollback, back to zero (refresh).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Connection,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    update,
)

from indexer import models as m
from indexer.decoder import DecodedLog
from ledger_api.core.db import insert_ignore
from ledger_api.core.hexes import unhex

CHUNK = 900  # keys per IN (...) list, below SQLite's bound-parameter limits


def _json(args: dict[str, Any]) -> str:
    """Compact JSON; orjson, or json for integers past 64 bits (uint256 amounts)."""
    try:
        return orjson.dumps(args).decode()
    except TypeError:
        return json.dumps(args, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Touched:
    """Keys whose aggregates must be recomputed."""

    campaigns: set[str] = field(default_factory=set)
    donations: set[str] = field(default_factory=set)
    disbursements: set[str] = field(default_factory=set)
    operators: set[tuple[str, str]] = field(default_factory=set)
    grants: set[str] = field(default_factory=set)
    proposals: set[str] = field(default_factory=set)
    recipients: set[str] = field(default_factory=set)

    def add(self, name: str, args: dict[str, Any]) -> None:
        """Only the aggregates an event can change: a new donation starts with nothing
        allocated or refunded, so recording one touches its campaign, not itself (which
        keeps a backfill of many donations from recomputing each of them)."""
        if name in ("DonationRecorded", "DisbursementRecorded", "DonationRefunded", "CampaignCreated"):
            self.campaigns.add(args["campaignId"])
        if name in ("DonationAllocated", "DonationRefunded"):
            self.donations.add(args["donationId"])
        if name == "EvidenceAnchored":
            self.disbursements.add(args["disbursementId"])
        if name in ("OperatorAdded", "OperatorRemoved"):
            self.operators.add((args["charityId"], args["account"]))
        if name == "GrantReceived":
            self.grants.add(args["sourceDisbursementId"])
        if name in ("DisbursementApproved", "DisbursementRejected", "ProposalExecuted"):
            self.proposals.add(args["disbursementId"])
        if name == "RecipientAccountChanged":
            self.recipients.add(args["recipientId"])


class Scopes:
    """The charity, campaign and sender of each event of a range.

    Most events name their campaign or charity; an allocation or an evidence anchor names
    only its disbursement, and a donation or refund only its campaign. Those are resolved
    from the range itself (a campaign created or a disbursement recorded earlier in it) and
    otherwise from the projections of earlier ranges, with one query per kind per range."""

    def __init__(
        self,
        connection: Connection,
        deployment_id: int,
        logs: Sequence[DecodedLog],
        parsed: list[dict[str, Any]],
    ) -> None:
        self.charity_of: dict[str, str] = {}
        self.campaign_of: dict[str, str] = {}  # disbursement -> campaign
        self.sender_of: dict[str, str] = {}  # transaction -> its disbursement's or rule's operator
        for log, args in zip(logs, parsed, strict=True):
            if log.name == "CampaignCreated":
                self.charity_of[args["campaignId"]] = args["charityId"]
            elif log.name == "DisbursementRecorded":
                self.campaign_of[args["disbursementId"]] = args["campaignId"]
                self.sender_of[log.tx_hash] = args["operator"]
            elif log.name == "DonationRecorded":
                # A grant's GrantReceived names no operator: it is its donation's.
                self.sender_of.setdefault(log.tx_hash, args["operator"])
            elif log.name == "DisbursementProposed":
                self.campaign_of[args["disbursementId"]] = args["campaignId"]
            elif log.name == "ApprovalRuleSet":  # its ApproverNamed events follow in its transaction
                self.sender_of[log.tx_hash] = args["operator"]
        disbursements = {
            args["disbursementId"]
            for args in parsed
            if "disbursementId" in args and args["disbursementId"] not in self.campaign_of
        }
        B, C, P = m.table(m.Disbursement), m.table(m.Campaign), m.table(m.Proposal)
        for keys in _chunks(disbursements):
            # A vote or an execution names only its proposal, which is no disbursement
            # until executed: look in both.
            for source in (B, P):
                result = connection.execute(
                    select(source.c.disbursement_id, source.c.campaign_id).where(
                        source.c.deployment_id == deployment_id, source.c.disbursement_id.in_(keys)
                    )
                )
                self.campaign_of.update((key, value) for key, value in result)
        campaigns = {args["campaignId"] for args in parsed if "campaignId" in args}
        campaigns |= set(self.campaign_of.values())
        campaigns -= set(self.charity_of)
        for keys in _chunks(campaigns):
            result = connection.execute(
                select(C.c.campaign_id, C.c.charity_id).where(
                    C.c.deployment_id == deployment_id, C.c.campaign_id.in_(keys)
                )
            )
            self.charity_of.update((key, value) for key, value in result)

    def of(self, log: DecodedLog, args: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
        campaign = args.get("campaignId")
        if campaign is None and "disbursementId" in args:
            campaign = self.campaign_of.get(args["disbursementId"])
        charity = args.get("charityId") or (self.charity_of.get(campaign) if campaign else None)
        sender = (
            args.get("operator")
            or args.get("registrar")
            or args.get("addedBy")  # OperatorAdded
            or args.get("removedBy")  # OperatorRemoved
            or args.get("sender")  # RoleGranted, RoleRevoked
            or args.get("sealer")  # AccessLogSealed
            or args.get("proposer")  # DisbursementProposed
            or (args.get("approver") if log.name == "DisbursementApproved" else None)
            or args.get("rejectedBy")  # DisbursementRejected
            or args.get("executor")  # ProposalExecuted
            or (args.get("account") if log.name in ("Paused", "Unpaused", "ReceiptConfirmed") else None)
            or args.get("previousAccount")  # RecipientAccountChanged: the old key signs the move
            # an allocation, a grant's address: its disbursement's; a grant's receipt: its
            # donation's (the same transaction); an approver: its rule's
            or self.sender_of.get(log.tx_hash)
        )
        return charity, campaign, sender


def _origin(log: DecodedLog) -> dict[str, Any]:
    return {"block_number": log.block_number, "tx_hash": log.tx_hash, "log_index": log.log_index}


class UnprojectedEvent(RuntimeError):
    """The contract emitted an event that has neither a projector nor a place in
    TRAIL_ONLY: the contract changed and the indexer was not taught the new event. The
    range is not written (the cursor stays), rather than mirrored without it."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"no projector for the event {name!r}: add one to PROJECTORS, or list it in TRAIL_ONLY"
        )
        self.name = name


@dataclass
class Projection:
    """The rows one range adds to the projections, by table, and the campaigns it closes."""

    deployment_id: int
    rows: dict[Table, list[dict[str, Any]]] = field(default_factory=dict)
    closed: list[dict[str, Any]] = field(default_factory=list)
    executed: list[dict[str, Any]] = field(default_factory=list)  # ProposalExecuted

    def add(self, model: type[m.Base], row: dict[str, Any]) -> None:
        """`row` is the projector's own new dict: it gets the deployment in place (a copy
        per row was a tenth of a backfill's Python time)."""
        row["deployment_id"] = self.deployment_id
        self.rows.setdefault(m.table(model), []).append(row)


def _donation_recorded(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.Donation,
        {
            "donation_id": args["donationId"],
            "campaign_id": args["campaignId"],
            "amount": args["amount"],
            "donor_commitment": args["donorCommitment"],
            "channel": args["channel"],
            "metadata_hash": args["metadataHash"],
            "operator": args["operator"],
            "allocated": 0,
            "refunded": 0,
            **_origin(log),
        },
    )


def _donation_allocated(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.Allocation,
        {
            "disbursement_id": args["disbursementId"],
            "donation_id": args["donationId"],
            "amount": args["amount"],
            **_origin(log),
        },
    )


def _disbursement_recorded(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.Disbursement,
        {
            "disbursement_id": args["disbursementId"],
            "campaign_id": args["campaignId"],
            "amount": args["amount"],
            "recipient": args["recipient"],
            "purpose": args["purpose"],
            "allocation_count": args["allocationCount"],
            "operator": args["operator"],
            "evidence_count": 0,
            **_origin(log),
        },
    )


def _donation_refunded(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.Refund,
        {
            "refund_id": args["refundId"],
            "donation_id": args["donationId"],
            "campaign_id": args["campaignId"],
            "amount": args["amount"],
            "reason": args["reason"],
            "operator": args["operator"],
            **_origin(log),
        },
    )


def _evidence_anchored(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.Evidence,
        {
            "disbursement_id": args["disbursementId"],
            "document_hash": args["documentHash"],
            "operator": args["operator"],
            **_origin(log),
        },
    )


def _campaign_created(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.Campaign,
        {
            "campaign_id": args["campaignId"],
            "charity_id": args["charityId"],
            "name": args["name"],
            "currency": unhex(args["currency"]).decode("ascii"),
            "goal": str(args["goal"]),
            "metadata_hash": args["metadataHash"],
            "operator": args["operator"],
            "closed_block": None,
            "received": 0,
            "refunded": 0,
            "disbursed": 0,
            "donation_count": 0,
            "disbursement_count": 0,
            "evidenced": 0,
            "evidenced_count": 0,
            **_origin(log),
        },
    )


def _campaign_closed(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.closed.append({"c": args["campaignId"], "b": log.block_number})


def _charity_registered(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.Charity,
        {
            "charity_id": args["charityId"],
            "name": args["name"],
            "metadata_hash": args["metadataHash"],
            "registrar": args["registrar"],
            "self_custody": bool(args["selfCustody"]),
            **_origin(log),
        },
    )


def _correction_recorded(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    replacement = args["replacementId"]
    out.add(
        m.Correction,
        {
            "correction_id": args["correctionId"],
            "charity_id": args["charityId"],
            "original_kind": args["originalKind"],
            "original_id": args["originalId"],
            "replacement_id": None if int(replacement, 16) == 0 else replacement,
            "reason": args["reason"],
            "operator": args["operator"],
            **_origin(log),
        },
    )


def _redacted_copy_linked(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.EvidenceLink,
        {
            "disbursement_id": args["disbursementId"],
            "copy_hash": args["copyHash"],
            "original_hash": args["originalHash"],
            "operator": args["operator"],
            **_origin(log),
        },
    )


def _evidence_withdrawn(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.EvidenceWithdrawal,
        {
            "disbursement_id": args["disbursementId"],
            "document_hash": args["documentHash"],
            "reason": args["reason"],
            "operator": args["operator"],
            **_origin(log),
        },
    )


def _access_log_sealed(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.AccessLogSeal,
        {
            "day": args["day"],
            "root": args["root"],
            "row_count": args["rowCount"],
            "last_row_hash": args["lastRowHash"],
            "sealer": args["sealer"],
            **_origin(log),
        },
    )


def _grant_addressed(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.Grant,
        {
            "disbursement_id": args["disbursementId"],
            "recipient_campaign_id": args["recipientCampaignId"],
            "recipient_charity_id": args["recipientCharityId"],
            "received": 0,
            **_origin(log),
        },
    )


def _grant_received(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    # sourceReceived is not stored: the grant's received total is recomputed from these
    # rows (refresh), so it follows a rollback; reconciliation checks it against grantOf.
    out.add(
        m.GrantDonation,
        {
            "donation_id": args["donationId"],
            "source_disbursement_id": args["sourceDisbursementId"],
            "campaign_id": args["campaignId"],
            "amount": args["amount"],
            **_origin(log),
        },
    )


def _approval_rule_set(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.ApprovalRule,
        {
            "campaign_id": args["campaignId"],
            "version": args["version"],
            "charity_id": args["charityId"],
            "threshold": args["threshold"],
            "approver_count": args["approverCount"],
            "validity": args["validity"],
            "operator": args["operator"],
            **_origin(log),
        },
    )


def _approver_named(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.ApprovalRuleApprover,
        {
            "campaign_id": args["campaignId"],
            "version": args["version"],
            "approver": args["approver"],
            **_origin(log),
        },
    )


def _disbursement_proposed(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.Proposal,
        {
            "disbursement_id": args["disbursementId"],
            "campaign_id": args["campaignId"],
            "input_hash": args["inputHash"],
            "amount": args["amount"],
            "recipient": args["recipient"],
            "purpose": args["purpose"],
            "rule_version": args["ruleVersion"],
            "threshold": args["threshold"],
            "expires_at": args["expiresAt"],
            "proposer": args["proposer"],
            "approvals": 0,
            "state": "pending",
            "executed_block": None,
            "executed_tx": None,
            "executor": None,
            **_origin(log),
        },
    )


def _disbursement_approved(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.ProposalVote,
        {
            "disbursement_id": args["disbursementId"],
            "voter": args["approver"],
            "vote": "approve",
            "reason": None,
            **_origin(log),
        },
    )


def _disbursement_rejected(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.ProposalVote,
        {
            "disbursement_id": args["disbursementId"],
            "voter": args["rejectedBy"],
            "vote": "reject",
            "reason": args["reason"],
            **_origin(log),
        },
    )


def _proposal_executed(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.executed.append(
        {"d": args["disbursementId"], "b": log.block_number, "t": log.tx_hash, "x": args["executor"]}
    )


def _recipient_registered(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.Recipient,
        {
            "recipient_id": args["recipientId"],
            "identifier": args["identifier"],
            "name": args["name"],
            "account": args["account"],
            "registrar": args["registrar"],
            "account_block": None,
            **_origin(log),
        },
    )


def _recipient_account_changed(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    """Nothing of its own: the recipient's account is recomputed from the trail
    (`_refresh_recipients`), which holds this event."""


def _recipient_named(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.DisbursementRecipient,
        {"disbursement_id": args["disbursementId"], "recipient_id": args["recipientId"], **_origin(log)},
    )


def _receipt_confirmed(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.ReceiptConfirmation,
        {
            "confirmation_id": args["confirmationId"],
            "disbursement_id": args["disbursementId"],
            "recipient_id": args["recipientId"],
            "amount": args["amount"],
            "confirmed_total": args["confirmedTotal"],
            "statement": args["statement"],
            "evidence_hash": args["evidenceHash"],
            "account": args["account"],
            **_origin(log),
        },
    )


def _campaign_end_set(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.CampaignEnd,
        {
            "campaign_id": args["campaignId"],
            "charity_id": args["charityId"],
            "ends_at": args["endsAt"],
            "previous_ends_at": args["previousEndsAt"],
            "reason": args["reason"],
            "operator": args["operator"],
            **_origin(log),
        },
    )


def _report_published(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    out.add(
        m.Report,
        {
            "report_id": args["reportId"],
            "campaign_id": args["campaignId"],
            "charity_id": args["charityId"],
            "kind": args["kind"],
            "period_start": args["periodStart"],
            "period_end": args["periodEnd"],
            "document_hash": args["documentHash"],
            "operator": args["operator"],
            **_origin(log),
        },
    )


def _remaining_funds_disposed(out: Projection, log: DecodedLog, args: dict[str, Any]) -> None:
    target, document = args["targetCampaignId"], args["documentHash"]
    out.add(
        m.Disposal,
        {
            "disposal_id": args["disposalId"],
            "campaign_id": args["campaignId"],
            "charity_id": args["charityId"],
            "disposition": args["disposition"],
            "amount": args["amount"],
            "available": args["available"],
            "target_campaign_id": None if int(target, 16) == 0 else target,
            "rule": args["rule"],
            "document_hash": None if int(document, 16) == 0 else document,
            "operator": args["operator"],
            **_origin(log),
        },
    )


Projector = Callable[[Projection, DecodedLog, dict[str, Any]], None]

# Each ledger event that has rows of its own in the projections, and what writes them.
PROJECTORS: dict[str, Projector] = {
    "CharityRegistered": _charity_registered,
    "CampaignCreated": _campaign_created,
    "CampaignClosed": _campaign_closed,
    "DonationRecorded": _donation_recorded,
    "DisbursementRecorded": _disbursement_recorded,
    "DonationAllocated": _donation_allocated,
    "DonationRefunded": _donation_refunded,
    "EvidenceAnchored": _evidence_anchored,
    "CorrectionRecorded": _correction_recorded,
    "RedactedCopyLinked": _redacted_copy_linked,
    "EvidenceWithdrawn": _evidence_withdrawn,
    "AccessLogSealed": _access_log_sealed,
    "GrantAddressed": _grant_addressed,
    "GrantReceived": _grant_received,
    "ApprovalRuleSet": _approval_rule_set,
    "ApproverNamed": _approver_named,
    "DisbursementProposed": _disbursement_proposed,
    "DisbursementApproved": _disbursement_approved,
    "DisbursementRejected": _disbursement_rejected,
    "ProposalExecuted": _proposal_executed,
    "RecipientRegistered": _recipient_registered,
    "RecipientAccountChanged": _recipient_account_changed,
    "RecipientNamed": _recipient_named,
    "ReceiptConfirmed": _receipt_confirmed,
    "CampaignEndSet": _campaign_end_set,
    "ReportPublished": _report_published,
    "RemainingFundsDisposed": _remaining_funds_disposed,
}

# Events that go to the audit trail (the events table) and nowhere else: pausing,
# OpenZeppelin's role changes and SignedCallExecuted (a relayed call: the records it wrote
# have their own events, naming the signer as operator; this one names the relayer). An
# operator's status is derived from its OperatorAdded and OperatorRemoved rows in the
# trail (`_refresh_operators`), so those have no projector either; EIP712DomainChanged is
# never emitted (the domain is fixed). tests/indexer/test_projectors.py holds this table
# and PROJECTORS to the ABI.
TRAIL_ONLY = frozenset(
    {
        "OperatorAdded",
        "OperatorRemoved",
        "SignedCallExecuted",
        "EIP712DomainChanged",
        "Paused",
        "Unpaused",
        "RoleAdminChanged",
        "RoleGranted",
        "RoleRevoked",
    }
)


def apply_logs(connection: Connection, deployment_id: int, logs: Sequence[DecodedLog]) -> Touched:
    """Insert the events of a range and their projection rows; recompute aggregates.
    Raises UnprojectedEvent, before writing anything, for an event this module does not
    know."""
    out = Projection(deployment_id)
    events = []
    touched = Touched()

    # The decoder gives bytes values as hex text already (DecodedLog), so the arguments
    # go to the projectors and the trail's JSON as they are, without a copy per log.
    parsed = [log.args for log in logs]
    scopes = Scopes(connection, deployment_id, logs, parsed)
    for log, args in zip(logs, parsed, strict=True):
        project = PROJECTORS.get(log.name)
        if project is not None:
            project(out, log, args)
        elif log.name not in TRAIL_ONLY:
            raise UnprojectedEvent(log.name)
        touched.add(log.name, args)
        charity_id, campaign_id, sender = scopes.of(log, args)
        events.append(
            {
                "deployment_id": deployment_id,
                "block_number": log.block_number,
                "block_hash": log.block_hash,
                "tx_hash": log.tx_hash,
                "tx_index": log.tx_index,
                "log_index": log.log_index,
                "name": log.name,
                "args": _json(args),
                "sender": sender,
                "charity_id": charity_id,
                "campaign_id": campaign_id,
            }
        )

    insert_ignore(connection, m.table(m.Event), events)
    complete = True  # every donation, refund and disbursement of the range went in
    # Parents before children, so the projection order never depends on the range.
    for model in (
        m.Charity,
        m.Campaign,
        m.Donation,
        m.Disbursement,
        m.Allocation,
        m.Refund,
        m.Evidence,
        m.Correction,
        m.EvidenceLink,
        m.EvidenceWithdrawal,
        m.AccessLogSeal,
        m.Grant,
        m.GrantDonation,
        m.ApprovalRule,
        m.ApprovalRuleApprover,
        m.Proposal,
        m.ProposalVote,
        m.Recipient,
        m.DisbursementRecipient,
        m.ReceiptConfirmation,
        m.CampaignEnd,
        m.Report,
        m.Disposal,
    ):
        rows = out.rows.get(m.table(model), [])
        if insert_ignore(connection, m.table(model), rows) != len(rows) and model in _TOTALLED:
            complete = False
    if out.closed:
        campaigns = m.table(m.Campaign)
        connection.execute(
            update(campaigns)
            .where(
                and_(campaigns.c.deployment_id == deployment_id, campaigns.c.campaign_id == bindparam("c"))
            )
            .values(closed_block=bindparam("b")),
            out.closed,
        )
    if out.executed:
        proposals = m.table(m.Proposal)
        connection.execute(
            update(proposals)
            .where(
                and_(
                    proposals.c.deployment_id == deployment_id, proposals.c.disbursement_id == bindparam("d")
                )
            )
            .values(executed_block=bindparam("b"), executed_tx=bindparam("t"), executor=bindparam("x")),
            out.executed,
        )
    if complete:
        add_to_campaigns(connection, deployment_id, out)
        refresh(connection, deployment_id, replace(touched, campaigns=set()))
    else:
        refresh(connection, deployment_id, touched)
    return touched


# The records a campaign's totals sum up.
_TOTALLED = (m.Donation, m.Refund, m.Disbursement)


def add_to_campaigns(connection: Connection, deployment_id: int, out: Projection) -> None:
    """Add the range's donations, refunds and disbursements to their campaigns' totals.

    Recomputing a campaign's totals from all its rows (refresh) costs a scan of the
    campaign, so a ledger of a million donations made every range (and, at the head,
    every block) slower than the last. The rows of a range are new (a record's ID is
    recorded once on chain, and a range is applied once, with its cursor), so adding them
    is exact; apply_logs does it only when every one of them was inserted, and recomputes
    otherwise. A rollback always recomputes (rollback_above)."""
    sums: dict[str, list[int]] = {}
    for model, amount, count in (
        (m.Donation, 0, 1),
        (m.Refund, 2, None),
        (m.Disbursement, 3, 4),
    ):
        for row in out.rows.get(m.table(model), []):
            totals = sums.setdefault(row["campaign_id"], [0, 0, 0, 0, 0])
            totals[amount] += row["amount"]
            if count is not None:
                totals[count] += 1
    _add_to_columns(connection, deployment_id, _TOTALS, sums)


# The order of add_to_campaigns' sums.
_TOTALS = ("received", "donation_count", "refunded", "disbursed", "disbursement_count")


def _add_to_columns(
    connection: Connection, deployment_id: int, columns: Sequence[str], deltas: dict[str, list[int]]
) -> None:
    """Add each campaign's deltas (in the order of `columns`) to those columns, in one
    UPDATE run for every campaign with something to add."""
    changes = [
        {"key": campaign, **{f"add_{column}": value for column, value in zip(columns, values, strict=True)}}
        for campaign, values in sorted(deltas.items())
        if any(values)
    ]
    if not changes:
        return
    C = m.table(m.Campaign)
    connection.execute(
        update(C)
        .where(and_(C.c.deployment_id == deployment_id, C.c.campaign_id == bindparam("key")))
        .values({column: C.c[column] + bindparam(f"add_{column}", type_=BigInteger) for column in columns}),
        changes,
    )


def _chunks(keys: Iterable[Any]) -> Iterable[list[Any]]:
    keys = sorted(keys)
    for i in range(0, len(keys), CHUNK):
        yield keys[i : i + CHUNK]


def refresh(connection: Connection, deployment_id: int, touched: Touched) -> None:
    """Recompute the aggregates of the touched keys from the rows they summarise."""
    D, A, R, B, C, E, G, GD = (
        m.table(m.Donation),
        m.table(m.Allocation),
        m.table(m.Refund),
        m.table(m.Disbursement),
        m.table(m.Campaign),
        m.table(m.Evidence),
        m.table(m.Grant),
        m.table(m.GrantDonation),
    )

    def total(table: Table, column: str, key: str, outer: Table, outer_key: str) -> Any:
        return (
            select(func.coalesce(func.sum(table.c[column]), 0))
            .where(table.c.deployment_id == outer.c.deployment_id, table.c[key] == outer.c[outer_key])
            .scalar_subquery()
        )

    def count(table: Table, key: str, outer: Table, outer_key: str) -> Any:
        return (
            select(func.count())
            .where(table.c.deployment_id == outer.c.deployment_id, table.c[key] == outer.c[outer_key])
            .scalar_subquery()
        )

    for keys in _chunks(touched.donations):
        connection.execute(
            update(D)
            .where(D.c.deployment_id == deployment_id, D.c.donation_id.in_(keys))
            .values(
                allocated=total(A, "amount", "donation_id", D, "donation_id"),
                refunded=total(R, "amount", "donation_id", D, "donation_id"),
            )
        )
    evidenced: dict[str, list[int]] = {}  # campaign -> [amount, count] gained (or lost)
    for keys in _chunks(touched.disbursements):
        before = _evidenced(connection, deployment_id, keys)
        connection.execute(
            update(B)
            .where(B.c.deployment_id == deployment_id, B.c.disbursement_id.in_(keys))
            .values(evidence_count=count(E, "disbursement_id", B, "disbursement_id"))
        )
        for disbursement, (campaign, amount, now) in _evidenced(connection, deployment_id, keys).items():
            was = before.get(disbursement, (campaign, amount, False))[2]
            if now != was:  # (a touched campaign is recomputed below anyway)
                delta = evidenced.setdefault(campaign, [0, 0])
                sign = 1 if now else -1
                delta[0] += sign * amount
                delta[1] += sign
    # The disbursements whose first evidence this range anchored (or, after a rollback,
    # those that lost their last), added to (taken from) their campaigns.
    _add_to_columns(connection, deployment_id, ("evidenced", "evidenced_count"), evidenced)
    evidenced_rows = and_(
        B.c.deployment_id == C.c.deployment_id, B.c.campaign_id == C.c.campaign_id, B.c.evidence_count > 0
    )
    evidenced_sum = select(func.coalesce(func.sum(B.c.amount), 0)).where(evidenced_rows).scalar_subquery()
    for keys in _chunks(touched.campaigns):
        connection.execute(
            update(C)
            .where(C.c.deployment_id == deployment_id, C.c.campaign_id.in_(keys))
            .values(
                received=total(D, "amount", "campaign_id", C, "campaign_id"),
                donation_count=count(D, "campaign_id", C, "campaign_id"),
                refunded=total(R, "amount", "campaign_id", C, "campaign_id"),
                disbursed=total(B, "amount", "campaign_id", C, "campaign_id"),
                disbursement_count=count(B, "campaign_id", C, "campaign_id"),
                evidenced=evidenced_sum,
                evidenced_count=select(func.count()).where(evidenced_rows).scalar_subquery(),
            )
        )
    for keys in _chunks(touched.grants):
        connection.execute(
            update(G)
            .where(G.c.deployment_id == deployment_id, G.c.disbursement_id.in_(keys))
            .values(received=total(GD, "amount", "source_disbursement_id", G, "disbursement_id"))
        )
    _refresh_proposals(connection, deployment_id, touched.proposals)
    _refresh_operators(connection, deployment_id, touched.operators)
    _refresh_recipients(connection, deployment_id, touched.recipients)


def _evidenced(
    connection: Connection, deployment_id: int, keys: list[str]
) -> dict[str, tuple[str, int, bool]]:
    """Each disbursement's campaign, amount and whether it has evidence."""
    B = m.table(m.Disbursement)
    rows = connection.execute(
        select(B.c.disbursement_id, B.c.campaign_id, B.c.amount, B.c.evidence_count).where(
            B.c.deployment_id == deployment_id, B.c.disbursement_id.in_(keys)
        )
    )
    return {row[0]: (row[1], int(row[2]), row[3] > 0) for row in rows}


def _refresh_recipients(connection: Connection, deployment_id: int, keys: set[str]) -> None:
    """A recipient's account is that of its latest RecipientAccountChanged, or the
    registered one when it has none (left in the row by the registration's projector,
    and put back from the trail's RecipientRegistered after a rollback)."""
    if not keys:
        return
    events, recipients = m.table(m.Event), m.table(m.Recipient)
    latest: dict[str, tuple[int, int, str, bool]] = {}
    result = connection.execute(
        select(events.c.block_number, events.c.log_index, events.c.name, events.c.args).where(
            events.c.deployment_id == deployment_id,
            events.c.name.in_(["RecipientRegistered", "RecipientAccountChanged"]),
        )
    )
    for block_number, log_index, name, raw in result:
        args = json.loads(raw)
        key = args["recipientId"]
        if key in keys and (block_number, log_index) > latest.get(key, (-1, -1))[:2]:
            latest[key] = (block_number, log_index, args["account"], name == "RecipientAccountChanged")
    for key in keys:
        if key not in latest:
            continue  # its registration was rolled back with it
        block_number, _, account, changed = latest[key]
        connection.execute(
            update(recipients)
            .where(recipients.c.deployment_id == deployment_id, recipients.c.recipient_id == key)
            .values(account=account, account_block=block_number if changed else None)
        )


def _refresh_proposals(connection: Connection, deployment_id: int, keys: set[str]) -> None:
    """A proposal's approvals are its approve votes; its state is executed once executed,
    rejected once any reject vote stands (the contract makes both final), else pending."""
    P, V = m.table(m.Proposal), m.table(m.ProposalVote)

    def votes(kind: str) -> Any:
        return (
            select(func.count())
            .where(
                V.c.deployment_id == P.c.deployment_id,
                V.c.disbursement_id == P.c.disbursement_id,
                V.c.vote == kind,
            )
            .scalar_subquery()
        )

    for chunk in _chunks(keys):
        connection.execute(
            update(P)
            .where(P.c.deployment_id == deployment_id, P.c.disbursement_id.in_(chunk))
            .values(
                approvals=votes("approve"),
                state=case(
                    (P.c.executed_block.is_not(None), "executed"),
                    (votes("reject") > 0, "rejected"),
                    else_="pending",
                ),
            )
        )


def _refresh_operators(connection: Connection, deployment_id: int, keys: set[tuple[str, str]]) -> None:
    """An operator's status is that of its latest OperatorAdded/OperatorRemoved event;
    whether the charity holds its key and who added it, from its latest OperatorAdded."""
    if not keys:
        return
    events, operators = m.table(m.Event), m.table(m.Operator)
    latest: dict[tuple[str, str], tuple[int, int, bool, str | None]] = {}
    latest_added: dict[tuple[str, str], tuple[int, int, bool, str]] = {}
    result = connection.execute(
        select(events.c.block_number, events.c.log_index, events.c.name, events.c.args).where(
            events.c.deployment_id == deployment_id,
            events.c.name.in_(["OperatorAdded", "OperatorRemoved"]),
        )
    )
    for block_number, log_index, name, raw in result:
        args = json.loads(raw)
        key = (args["charityId"], args["account"])
        if key not in keys:
            continue
        position = (block_number, log_index)
        if position > latest.get(key, (-1, -1))[:2]:
            latest[key] = (block_number, log_index, name == "OperatorAdded", args.get("removedBy"))
        if name == "OperatorAdded" and position > latest_added.get(key, (-1, -1))[:2]:
            latest_added[key] = (block_number, log_index, bool(args["heldByCharity"]), args["addedBy"])
    for charity_id, account in keys:
        connection.execute(
            delete(operators).where(
                operators.c.deployment_id == deployment_id,
                operators.c.charity_id == charity_id,
                operators.c.account == account,
            )
        )
        if (charity_id, account) in latest:
            block_number, _, active, removed_by = latest[(charity_id, account)]
            added = latest_added.get((charity_id, account))
            connection.execute(
                insert(operators).values(
                    deployment_id=deployment_id,
                    charity_id=charity_id,
                    account=account,
                    active=active,
                    block_number=block_number,
                    held_by_charity=added[2] if added else False,
                    added_by=added[3] if added else None,
                    removed_by=None if active else removed_by,
                )
            )


def rollback_above(connection: Connection, deployment_id: int, ancestor: int) -> int:
    """Delete everything derived from blocks above `ancestor`; recompute what it touched.
    Returns the number of events removed."""
    events = m.table(m.Event)
    touched = Touched()
    removed = 0
    for name, raw in connection.execute(
        select(events.c.name, events.c.args).where(
            events.c.deployment_id == deployment_id, events.c.block_number > ancestor
        )
    ):
        touched.add(name, json.loads(raw))
        removed += 1
    for model in (*m.APPEND_ONLY, m.Event):
        table = m.table(model)
        connection.execute(
            delete(table).where(table.c.deployment_id == deployment_id, table.c.block_number > ancestor)
        )
    blocks = m.table(m.Block)
    connection.execute(
        delete(blocks).where(blocks.c.deployment_id == deployment_id, blocks.c.number > ancestor)
    )
    campaigns = m.table(m.Campaign)
    connection.execute(
        update(campaigns)
        .where(campaigns.c.deployment_id == deployment_id, campaigns.c.closed_block > ancestor)
        .values(closed_block=None)
    )
    proposals = m.table(m.Proposal)
    connection.execute(
        update(proposals)
        .where(proposals.c.deployment_id == deployment_id, proposals.c.executed_block > ancestor)
        .values(executed_block=None, executed_tx=None, executor=None)
    )
    refresh(connection, deployment_id, touched)
    return removed
