"""The console's sentences for contract 2.1.0's refusals (console/explain.py), in both
languages: each of the new custom errors has its own words, never the general sentence
that only names the error."""

from __future__ import annotations

import pytest

from ledger_api.chain.abi import load_artifact
from ledger_api.console.explain import sentence
from ledger_api.core.errors import ContractRejected
from ledger_api.pages.i18n import Reader

NEW_ERRORS = (
    "EvidenceNotAnchored",
    "EvidenceAlreadyWithdrawn",
    "RedactedCopyAlreadyLinked",
    "AccessLogAlreadySealed",
    "InvalidAccessLogSeal",
)


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_each_new_refusal_of_the_contract_has_its_own_sentence(lang: str) -> None:
    errors = {item["name"] for item in load_artifact()["abi"] if item["type"] == "error"}
    assert set(NEW_ERRORS) <= errors
    reader = Reader(lang)
    general = {reader.t("refused.other", name=name) for name in NEW_ERRORS}
    said = [
        sentence(reader, ContractRejected("rejected", error={"name": name, "args": {}}), "CNY")
        for name in NEW_ERRORS
    ]
    assert not set(said) & general
    assert all(s and not s.startswith("refused.") for s in said)
    assert len(set(said)) == len(NEW_ERRORS)


APPROVAL_ERRORS = (
    "ApprovalRequired",
    "NoApprovalRule",
    "InvalidApprovalRule",
    "ProposalNotFound",
    "ProposalNotPending",
    "ProposalExpired",
    "NotApprover",
    "ProposerCannotApprove",
    "AlreadyApproved",
    "ApprovalsMissing",
    "ProposalMismatch",
)


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_each_refusal_of_approvals_before_payout_has_its_own_sentence(lang: str) -> None:
    errors = {item["name"] for item in load_artifact()["abi"] if item["type"] == "error"}
    assert set(APPROVAL_ERRORS) <= errors
    reader = Reader(lang)
    general = {reader.t("refused.other", name=name) for name in APPROVAL_ERRORS}
    said = [
        sentence(reader, ContractRejected("rejected", error={"name": name, "args": {}}), None)
        for name in APPROVAL_ERRORS
    ]
    assert not set(said) & general
    assert len(set(said)) == len(APPROVAL_ERRORS)


def test_an_expired_proposal_says_when_it_expired() -> None:
    error = {"name": "ProposalExpired", "args": {"disbursementId": "0x00", "expiresAt": 1_767_225_600}}
    said = sentence(Reader("en"), ContractRejected("rejected", error=error), None)
    assert said.startswith("This proposal expired on 2026-01-01 00:00 UTC: it can never be paid.")
