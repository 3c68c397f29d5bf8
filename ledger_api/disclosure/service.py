"""Disclosure records, written by the campaign's charity: an end date, a report, the
disposal of remaining funds, and a correction (of any record) with its reason."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile

from ledger_api.chain.abi import encode
from ledger_api.chain.writer import TxState
from ledger_api.core import documents, ids
from ledger_api.core.errors import Conflict, InvalidRequest
from ledger_api.core.hexes import unhex
from ledger_api.core.security import Principal
from ledger_api.disbursements import service as disbursements
from ledger_api.disclosure import calendar
from ledger_api.disclosure.rules import RuleSet
from ledger_api.disclosure.schemas import (
    CorrectionRecord,
    DisposalRecord,
    EndDateSet,
    ReportPeriod,
    ReportPublish,
)
from ledger_api.transactions.service import Step, Writes

REPORT_KINDS = {"periodic": 0, "final": 1}
DISPOSITIONS = {"returned_to_donors": 0, "moved_to_campaign": 1, "kept_under_rule": 2}


def set_end(
    writes: Writes, principal: Principal, ruleset: RuleSet, campaign_id: str, body: EndDateSet, wait: bool
) -> tuple[dict[str, Any], TxState]:
    charity_hex = writes.charity_of_campaign(campaign_id)
    # Whose campaign it is comes first: another charity's key learns nothing of its state.
    signer = writes.operator_for(principal, charity_hex, "campaign")
    campaign = ids.to_bytes32(campaign_id, "campaign")
    current, _, _ = writes.view("disclosureOf", campaign, missing="campaign")
    if current and not body.reason:
        raise InvalidRequest(
            "this campaign has an end date already: a change needs its reason (it is published with it)"
        )
    ends_at = calendar.end_of(body.ends_on, ruleset.zone)
    call = encode("setCampaignEnd", campaign, ends_at, body.reason or "")
    (state,) = writes.submit(
        signer, charity_hex, [Step(call, {"kind": "campaign-end", "ids": [campaign_id]})], wait
    )
    answer = {
        "campaign_id": campaign_id,
        "ends_on": body.ends_on.isoformat(),
        "transaction": writes.transaction_view(state),
    }
    return answer, state


def publish_report(
    writes: Writes, principal: Principal, ruleset: RuleSet, campaign_id: str, body: ReportPublish, wait: bool
) -> tuple[dict[str, Any], TxState]:
    charity_hex = writes.charity_of_campaign(campaign_id)
    report_id = ids.new("report")
    start = calendar.end_of(body.period_start, ruleset.zone) - 86399
    end = calendar.end_of(body.period_end, ruleset.zone) + 1  # exclusive: the next day's first second
    call = encode(
        "publishReport",
        ids.to_bytes32(report_id),
        ids.to_bytes32(campaign_id, "campaign"),
        REPORT_KINDS[body.kind],
        start,
        end,
        unhex(body.document_sha256.lower()),
    )
    (state,) = writes.write(
        principal, charity_hex, "campaign", [Step(call, {"kind": "report", "ids": [report_id]})], wait
    )
    answer = {
        "id": report_id,
        "campaign_id": campaign_id,
        "kind": body.kind,
        "period_start": body.period_start.isoformat(),
        "period_end": body.period_end.isoformat(),
        "document_sha256": body.document_sha256.lower(),
        "transaction": writes.transaction_view(state),
    }
    return answer, state


def publish_report_document(
    writes: Writes,
    principal: Principal,
    ruleset: RuleSet,
    campaign_id: str,
    period: ReportPeriod,
    upload: UploadFile,
    wait: bool,
) -> tuple[dict[str, Any], TxState]:
    """Publish a report whose document is uploaded here: its SHA-256 is anchored, and the
    document is stored and served publicly at /v1/evidence/{sha256}, as evidence is. A
    report is a disclosure: it is public by nature (publish the version without personal
    data; the ledger never stores a report sealed)."""
    charity_hex = writes.charity_of_campaign(campaign_id)
    signer = writes.operator_for(principal, charity_hex, "campaign")
    root = writes.settings.evidence_path
    staged = disbursements.stage_document(root, upload, 1)
    try:
        known = disbursements.known_visibility(writes, {staged.sha256}).get(staged.sha256)
        if known == documents.RESTRICTED:
            raise Conflict(
                "this document is stored here as a restricted original: a report is public, so"
                " publish its redacted version instead"
            )
        body = ReportPublish(**period.model_dump(), document_sha256=staged.sha256)
        made, state = publish_report(writes, principal, ruleset, campaign_id, body, wait)
        target = disbursements.EvidenceTarget(made["id"], ids.to_bytes32(made["id"]), charity_hex, signer)
        disbursements.store_document(writes, target, staged, documents.PUBLIC, known)
    finally:
        staged.temporary.unlink(missing_ok=True)
    made["document_href"] = f"/v1/evidence/{staged.sha256}"
    return made, state


def record_disposal(
    writes: Writes, principal: Principal, campaign_id: str, body: DisposalRecord, wait: bool
) -> tuple[dict[str, Any], TxState]:
    charity_hex = writes.charity_of_campaign(campaign_id)
    disposal_id = ids.new("disposal")
    target = ids.to_bytes32(body.target_campaign_id, "campaign") if body.target_campaign_id else bytes(32)
    document = unhex(body.document_sha256.lower()) if body.document_sha256 else bytes(32)
    call = encode(
        "recordDisposal",
        ids.to_bytes32(disposal_id),
        ids.to_bytes32(campaign_id, "campaign"),
        DISPOSITIONS[body.disposition],
        body.amount,
        target,
        body.rule or "",
        document,
    )
    (state,) = writes.write(
        principal, charity_hex, "campaign", [Step(call, {"kind": "disposal", "ids": [disposal_id]})], wait
    )
    answer = {
        "id": disposal_id,
        "campaign_id": campaign_id,
        "disposition": body.disposition,
        "amount": body.amount,
        "transaction": writes.transaction_view(state),
    }
    return answer, state


def record_correction(
    writes: Writes, principal: Principal, charity_id: str, body: CorrectionRecord, wait: bool
) -> tuple[dict[str, Any], TxState]:
    if not body.reason.strip():
        raise InvalidRequest("a correction needs its reason: the explanation published with it")
    charity_hex = ids.to_hex(charity_id, "charity")
    try:
        original = ids.to_bytes32(body.original_id, body.original_kind)
        replacement = (
            ids.to_bytes32(body.replacement_id, body.original_kind) if body.replacement_id else bytes(32)
        )
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    correction_id = ids.new("correction")
    call = encode(
        "recordCorrection",
        ids.to_bytes32(correction_id),
        unhex(charity_hex),
        ids.RECORD_KINDS.index(body.original_kind),
        original,
        replacement,
        body.reason,
    )
    (state,) = writes.write(
        principal, charity_hex, "charity", [Step(call, {"kind": "correction", "ids": [correction_id]})], wait
    )
    answer = {
        "id": correction_id,
        "original_kind": body.original_kind,
        "original_id": body.original_id,
        "reason": body.reason,
        "transaction": writes.transaction_view(state),
    }
    return answer, state
