"""The service's refusals in a bookkeeper's words, in her language.

The write services raise problems (`core.errors`): a would-be revert is a 409
`ContractRejected` whose `error` names the contract's custom error and its arguments
(`chain/writer.py` `_rejection`); the first-in-first-out allocation says what is left
(`disbursements/service.py` `fifo`: a `Conflict` with `available`). Each known one
becomes a sentence with the amounts in the campaign's currency ("this campaign has
CN¥1,200.00 left to pay out; you asked for CN¥1,800.00"); anything else a general
sentence naming the contract's error, so nothing is hidden and nothing leaks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ledger_api.core.errors import Conflict, ContractRejected, NotFound, Problem
from ledger_api.pages.i18n import N_, Reader

# Contract errors with a sentence of their own (the message key is `refused.<Name>`).
KNOWN = (
    N_("refused.CampaignOverdrawn"),
    N_("refused.DonationOverdrawn"),
    N_("refused.CampaignIsClosed"),
    N_("refused.InvalidAmount"),
    N_("refused.AllocationSumMismatch"),
    N_("refused.EvidenceAlreadyAnchored"),
    N_("refused.EvidenceNotAnchored"),
    N_("refused.EvidenceAlreadyWithdrawn"),
    N_("refused.RedactedCopyAlreadyLinked"),
    N_("refused.AccessLogAlreadySealed"),
    N_("refused.InvalidAccessLogSeal"),
    N_("refused.NotCharityOperator"),
    N_("refused.EnforcedPause"),
    N_("refused.GrantOverdrawn"),
    N_("refused.GrantNotAddressed"),
    N_("refused.GrantCurrencyMismatch"),
    N_("refused.InvalidGrantRecipient"),
    # Approvals before payout (contract 2.2.0).
    N_("refused.ApprovalRequired"),
    N_("refused.NoApprovalRule"),
    N_("refused.InvalidApprovalRule"),
    N_("refused.ProposalNotFound"),
    N_("refused.ProposalNotPending"),
    N_("refused.ProposalExpired"),
    N_("refused.NotApprover"),
    N_("refused.ProposerCannotApprove"),
    N_("refused.AlreadyApproved"),
    N_("refused.ApprovalsMissing"),
    N_("refused.ProposalMismatch"),
    # Disclosure on time (contract 2.3.0).
    N_("refused.CampaignNotClosed"),
    N_("refused.InvalidPeriod"),
    N_("refused.InvalidDisposition"),
    N_("refused.ReportAlreadyExists"),
    N_("refused.DisposalAlreadyExists"),
)


def _amount(value: Any) -> int:
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else 0


def _moment(value: Any) -> str:
    """A contract's timestamp (seconds) as the pages write a time: "2025-03-01 09:30 UTC"."""
    seconds = _amount(value)
    if not seconds:
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def sentence(reader: Reader, problem: Problem, currency: str | None, requested: int | None = None) -> str:
    """What `problem` means for the person who filled in the form."""

    def money(value: Any) -> str:
        return reader.money(_amount(value), currency) if currency else str(value)

    error = problem.extra.get("error") if isinstance(problem, ContractRejected | Conflict) else None
    if isinstance(error, dict) and isinstance(error.get("name"), str):
        name, args = error["name"], error.get("args") or {}
        key = f"refused.{name}"
        if key in KNOWN:
            return reader.t(
                key,
                available=money(args.get("available", 0)),
                requested=money(args.get("requested", 0)),
                id=str(args.get("donationId", "")),
                amount=money(args.get("amount", args.get("disbursementAmount", 0))),
                allocated=money(args.get("allocatedSum", 0)),
                at=_moment(args.get("expiresAt")),
                count=str(args.get("approvals", "")),
                k=str(args.get("threshold", "")),
            )
        return reader.t("refused.other", name=name)
    if isinstance(problem, Conflict) and "available" in problem.extra and requested is not None:
        return reader.t(
            "refused.CampaignOverdrawn",
            available=money(problem.extra["available"]),
            requested=money(requested),
            id="",
            amount="",
            allocated="",
        )
    if isinstance(problem, NotFound):
        return reader.t("refused.not_found")
    if problem.status == 503:
        return reader.t("refused.unavailable")
    if problem.status == 504:
        return reader.t("refused.pending")
    return reader.t("refused.general")
