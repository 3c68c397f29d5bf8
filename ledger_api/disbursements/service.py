"""Disbursements, their allocations to donations, and evidence documents.

Automatic allocation is first-in-first-out: the campaign's donations with a remaining
balance, oldest first (block, then log index), each drawn down fully before the next,
the last one partly. It reads the SQL mirror; the contract checks every allocation, so
a stale mirror can only cause a rejection, never a wrong record: on one, the service
waits for the mirror to reach the head, allocates again, and tries once more.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from starlette.datastructures import UploadFile

from ledger_api.chain.abi import Call, encode
from ledger_api.chain.writer import TxState
from ledger_api.core import documents, ids, reference
from ledger_api.core.db import insert_ignore
from ledger_api.core.errors import Conflict, ContractRejected, InvalidRequest, NotFound
from ledger_api.core.hexes import bytes32_or_zero, hex0x, unhex
from ledger_api.core.models import EvidenceFile
from ledger_api.core.security import Principal
from ledger_api.disbursements.schemas import MAX_ALLOCATIONS, DisbursementCreate
from ledger_api.mirror import tables as im
from ledger_api.transactions import proposals
from ledger_api.transactions.service import Step, Writes

STALE = {"DonationOverdrawn", "DonationNotFound", "AllocationCampaignMismatch", "CampaignOverdrawn"}
MAX_DOCUMENT = 25 * 1024 * 1024
MAX_DOCUMENTS = 10
# The body limit of an upload: ten documents at their largest, and their multipart headers.
EVIDENCE_BODY = MAX_DOCUMENTS * MAX_DOCUMENT + 1024 * 1024


def fifo(writes: Writes, campaign_hex: str, amount: int) -> list[tuple[bytes, int]]:
    """Allocations for `amount`, oldest donations first, from the mirror."""
    D = im.Donation
    remaining = D.amount - D.allocated - D.refunded
    allocations: list[tuple[bytes, int]] = []
    left = amount
    # The result is closed by `with`: the loop stops early, and on PostgreSQL yield_per
    # holds a server-side cursor that must not be left for the garbage collector.
    with (
        writes.engine.connect() as connection,
        connection.execute(
            select(D.donation_id, remaining)
            .where(D.deployment_id == writes.deployment_id, D.campaign_id == campaign_hex, remaining > 0)
            .order_by(D.block_number, D.log_index)
            .execution_options(yield_per=500)
        ) as rows,
    ):
        for donation_id, balance in rows:
            take = min(int(balance), left)
            allocations.append((unhex(donation_id), take))
            left -= take
            if left == 0:
                break
    if left > 0:
        raise Conflict(
            f"the campaign's unallocated donations add up to {amount - left}, less than {amount}",
            available=amount - left,
        )
    if len(allocations) > MAX_ALLOCATIONS:
        raise Conflict(
            f"this amount would draw on {len(allocations)} donations; one disbursement may draw on at most "
            f"{MAX_ALLOCATIONS}: split it, or give the allocations explicitly"
        )
    return allocations


def _wait_for_mirror(writes: Writes, timeout: float = 5.0) -> None:
    """Until the mirror has indexed the chain's current head (or `timeout` passed)."""
    writes.await_mirror(writes.w3.eth.block_number, timeout)


def approval_rule(writes: Writes, campaign: bytes) -> tuple[int, int, int, int]:
    """The campaign's approval rule from the chain (the mirror may lag behind a rule just
    set): (version, threshold, approver count, validity in seconds); version 0: none."""
    version, threshold, count, validity = writes.view("approvalRuleOf", campaign, missing="campaign")
    return int(version), int(threshold), int(count), int(validity)


def record(
    writes: Writes, principal: Principal, body: DisbursementCreate, wait: bool
) -> tuple[dict[str, Any], TxState]:
    """Record a disbursement; on a campaign under an approval rule, propose it instead
    (the same body, the same answer with `status: proposed`): staff record a payout the
    same way whether or not their campaign needs approvals, and the contract would refuse
    recordDisbursement there (ApprovalRequired) anyway."""
    charity_hex = writes.charity_of_campaign(body.campaign_id)
    operator = writes.operator_for(principal, charity_hex, "campaign")
    campaign = ids.to_bytes32(body.campaign_id, "campaign")
    version, threshold, approver_count, validity = approval_rule(writes, campaign)
    disbursement_id = ids.new("disbursement")
    evidence = bytes32_or_zero(body.evidence_hash)
    automatic = body.allocations is None
    salt = None
    if body.recipient_person is not None:
        # Only the salted commitment leaves this function: the details are not kept.
        salt = secrets.token_bytes(32)
        recipient = reference.private_recipient(salt, body.recipient_person.reference)
    else:
        assert body.recipient is not None
        recipient = body.recipient

    recipient_campaign = (
        ids.to_bytes32(body.recipient_campaign_id, "campaign") if body.recipient_campaign_id else bytes(32)
    )
    # An unregistered organisation is the contract's RecipientNotFound, a 409 from the simulation.
    recipient_org = ids.to_bytes32(body.recipient_org_id, "recipient") if body.recipient_org_id else bytes(32)
    destined = recipient_campaign != bytes(32) or recipient_org != bytes(32)

    def input_for(allocations: list[tuple[bytes, int]]) -> proposals.DisbursementInput:
        return (
            ids.to_bytes32(disbursement_id),
            campaign,
            body.amount,
            recipient,
            body.purpose,
            evidence,
            recipient_campaign,
            recipient_org,
            allocations,
        )

    def call_for(allocations: list[tuple[bytes, int]]) -> Call:
        if version:
            return encode("proposeDisbursement", input_for(allocations))
        if destined:
            # A destination on the ledger (a campaign, a registered organisation) needs
            # disburse(DisbursementInput); the plain case keeps recordDisbursement.
            return encode("disburse", input_for(allocations))
        return encode(
            "recordDisbursement",
            ids.to_bytes32(disbursement_id),
            campaign,
            body.amount,
            recipient,
            body.purpose,
            evidence,
            allocations,
        )

    if automatic:
        try:
            allocations = fifo(writes, hex0x(campaign), body.amount)
        except Conflict:
            _wait_for_mirror(writes)  # the mirror may not have the newest donations yet
            allocations = fifo(writes, hex0x(campaign), body.amount)
    else:
        assert body.allocations is not None
        allocations = [(ids.to_bytes32(a.donation_id, "donation"), a.amount) for a in body.allocations]
    call = call_for(allocations)
    try:
        gas = writes.simulate(operator, call)
    except ContractRejected as rejected:
        name = rejected.extra.get("error", {}).get("name")
        if not automatic or name not in STALE:
            raise
        _wait_for_mirror(writes)
        allocations = fifo(writes, hex0x(campaign), body.amount)
        call = call_for(allocations)
        try:
            gas = writes.simulate(operator, call)
        except ContractRejected as again:
            raise Conflict(
                "the automatic allocation was rejected twice (the campaign's donations changed meanwhile);"
                " try again or give the allocations explicitly",
                error=again.extra.get("error"),
            ) from None
    kind = "disbursement"
    if version:
        kind = "proposal"
        proposals.keep(writes, charity_hex, operator, input_for(allocations))
    (state,) = writes.submit(
        operator, charity_hex, [Step(call, {"kind": kind, "ids": [disbursement_id]}, gas)], wait
    )
    created = {
        "id": disbursement_id,
        "campaign_id": body.campaign_id,
        "amount": body.amount,
        "recipient": recipient,
        **({"recipient_secret": hex0x(salt)} if salt is not None else {}),
        "purpose": body.purpose,
        "allocation": "automatic (first in, first out)" if automatic else "explicit",
        "allocations": [{"donation_id": ids.from_bytes32(d), "amount": a} for d, a in allocations],
        **({"recipient_campaign_id": body.recipient_campaign_id} if body.recipient_campaign_id else {}),
        **({"recipient_org_id": ids.from_bytes32(recipient_org)} if body.recipient_org_id else {}),
        "transaction": writes.transaction_view(state),
    }
    if version:
        created["status"] = "proposed"
        created["approval"] = {
            "rule_version": version,
            "threshold": threshold,
            "approvers": approver_count,
            "validity_seconds": validity,
            "note": f"proposed: it is paid, and counts, once {threshold} of the rule's {approver_count}"
            f" approvers other than the proposer approve it within {validity // 3600} h",
        }
    return created, state


@dataclass(frozen=True)
class EvidenceTarget:
    """A disbursement documents are anchored to, checked against the caller before any
    document is read."""

    disbursement_id: str
    disbursement: bytes
    charity_hex: str
    operator: str


def evidence_target(writes: Writes, principal: Principal, disbursement_id: str) -> EvidenceTarget:
    """The disbursement and the operator that anchors to it; 404 when it does not exist
    or belongs to another charity than the caller's."""
    disbursement = ids.to_bytes32(disbursement_id, "disbursement")
    view = writes.view("disbursementOf", disbursement, missing="disbursement")
    charity_hex = writes.charity_of_campaign(ids.from_bytes32(bytes(view[0])))
    operator = writes.operator_for(principal, charity_hex, "disbursement")
    return EvidenceTarget(disbursement_id, disbursement, charity_hex, operator)


@dataclass(frozen=True)
class Staged:
    """An uploaded document written to a temporary file beside the store, not yet in it."""

    temporary: Path
    sha256: str
    size: int
    filename: str
    media_type: str  # as its first bytes show it (documents.sniff)


def stage_document(root: Path, upload: UploadFile, position: int) -> Staged:
    """Copy an upload into a temporary file in `root`, hashing and counting it; a 422 that
    names the document when it is empty or too large (nothing is kept then)."""
    root.mkdir(parents=True, exist_ok=True)
    name = documents.clean_name(upload.filename)
    which = f"document {position}" + (f" ({name!r})" if upload.filename else "")
    digest = hashlib.sha256()
    size = 0
    head = b""
    fd, temporary = tempfile.mkstemp(dir=root, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := upload.file.read(1 << 20):
                if len(head) < 16:
                    head += chunk[:16]
                size += len(chunk)
                if size > MAX_DOCUMENT:
                    raise InvalidRequest(
                        f"{which} is larger than {MAX_DOCUMENT // (1024 * 1024)} MB; nothing was kept"
                    )
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise InvalidRequest(
                f"{which} is empty: an empty document cannot be evidence; nothing was stored"
            )
    except BaseException:
        os.unlink(temporary)
        raise
    return Staged(Path(temporary), digest.hexdigest(), size, name, documents.media_type(name, head))


def stored_path(root: Path, sha256: str) -> Path:
    return documents.public_path(root, sha256)


def known_visibility(writes: Writes, sha256s: set[str]) -> dict[str, str]:
    """The visibility each of these documents is stored with already, if any."""
    F = EvidenceFile
    with writes.engine.connect() as connection:
        return dict(
            connection.execute(
                select(F.sha256, F.visibility).where(
                    F.deployment_id == writes.deployment_id, F.sha256.in_(sorted(sha256s))
                )
            ).all()
        )


def store_document(
    writes: Writes, target: EvidenceTarget, document: Staged, visibility: str, known: str | None
) -> None:
    """Move a checked document into the store (sealed if restricted) and describe it, as
    uploaded for `target` (a disbursement's evidence, or a campaign's report: then its ID
    stands in the disbursement's place)."""
    root = writes.settings.evidence_path
    key_id = None
    if visibility == documents.RESTRICTED:
        key_id, sealed = documents.KeyRing.of(writes.settings).seal(
            document.sha256, document.temporary.read_bytes()
        )
        documents.write_atomically(documents.sealed_path(root, document.sha256), sealed)
        document.temporary.unlink()
    else:
        final = documents.public_path(root, document.sha256)
        final.parent.mkdir(exist_ok=True)
        os.replace(document.temporary, final)
    if known is not None:
        return  # described when first stored
    with writes.engine.begin() as connection:
        insert_ignore(
            connection,
            EvidenceFile.__table__,  # type: ignore[arg-type]
            [
                {
                    "deployment_id": writes.deployment_id,
                    "sha256": document.sha256,
                    "disbursement_id": hex0x(target.disbursement),
                    "charity_id": target.charity_hex,
                    "visibility": visibility,
                    "filename": document.filename,
                    "media_type": document.media_type,
                    "size": document.size,
                    "key_id": key_id,
                    "stored_at": datetime.now(UTC),
                }
            ],
        )


def anchor(
    writes: Writes,
    target: EvidenceTarget,
    uploads: list[UploadFile],
    wait: bool,
    visibility: str = documents.PUBLIC,
) -> tuple[dict[str, Any], list[TxState]]:
    """Store documents content-addressed and anchor each new hash to the disbursement.

    All or nothing up to the sends: every document is read and checked, and every anchor
    simulated, before any document is stored or any transaction signed; a document sent
    twice (or already anchored) is anchored once. A restricted document is sealed at rest;
    a document keeps the visibility it was first stored with (409 otherwise: publish a
    redacted copy instead)."""
    if not 1 <= len(uploads) <= MAX_DOCUMENTS:
        raise InvalidRequest(f"upload 1 to {MAX_DOCUMENTS} documents as multipart field `files`")
    if visibility not in documents.VISIBILITIES:
        raise InvalidRequest("visibility is `public` or `restricted`")
    root = writes.settings.evidence_path
    staged: list[Staged] = []
    try:
        for position, upload in enumerate(uploads, start=1):
            staged.append(stage_document(root, upload, position))
        known = known_visibility(writes, {d.sha256 for d in staged})
        for document in staged:
            if known.get(document.sha256, visibility) != visibility:
                raise Conflict(
                    f"document {document.sha256} is stored here as {known[document.sha256]}: it keeps"
                    " that visibility (to publish a restricted document, upload a redacted copy of it)"
                )
        if visibility == documents.RESTRICTED:
            documents.KeyRing.of(writes.settings)  # a bad key ring is refused before anything is sent
        plans: dict[str, tuple[Call, int] | None] = {}  # sha256 -> (call, gas), None if anchored
        for document in staged:
            if document.sha256 in plans:
                continue
            hash_bytes = unhex(document.sha256)
            if writes.view("isEvidenceAnchored", target.disbursement, hash_bytes, missing="disbursement"):
                plans[document.sha256] = None
                continue
            call = encode("anchorEvidence", target.disbursement, hash_bytes)
            plans[document.sha256] = (call, writes.simulate(target.operator, call))
        for document in staged:  # checked: now stored, before anything names them on chain
            if document.temporary.exists():  # a document sent twice is stored once
                store_document(writes, target, document, visibility, known.get(document.sha256))
                known.setdefault(document.sha256, visibility)
    finally:
        for document in staged:
            document.temporary.unlink(missing_ok=True)
    sent = {sha: plan for sha, plan in plans.items() if plan is not None}
    steps = [
        Step(call, {"kind": "evidence", "ids": [target.disbursement_id, sha]}, gas)
        for sha, (call, gas) in sent.items()
    ]
    settled = writes.submit(target.operator, target.charity_hex, steps, wait)
    by_sha = {sha: writes.transaction_view(state) for sha, state in zip(sent, settled, strict=True)}
    answered: list[dict[str, Any]] = []
    for document in staged:
        entry: dict[str, Any] = {
            "sha256": document.sha256,
            "size": document.size,
            "filename": document.filename,
            "media_type": document.media_type,
            "visibility": known.get(document.sha256, visibility),
        }
        if plans[document.sha256] is None:
            entry["already_anchored"] = True
        else:
            entry["transaction"] = by_sha[document.sha256]
        answered.append(entry)
    return {"disbursement_id": target.disbursement_id, "documents": answered}, settled


def _status(writes: Writes, target: EvidenceTarget, sha256: str) -> tuple[bool, bool, str]:
    """evidenceStatus from the chain: (anchored here, withdrawn, original if a copy)."""
    anchored, withdrawn, original = writes.view(
        "evidenceStatus", target.disbursement, unhex(sha256), missing="disbursement"
    )
    return bool(anchored), bool(withdrawn), hex0x(original)[2:]


def erase(writes: Writes, charity_hex: str, sha256: str) -> bool:
    """Delete a document's bytes (plain and sealed) when this charity stored them (or they
    predate descriptions), and mark it withdrawn; whether there were bytes to delete."""
    F = EvidenceFile
    with writes.engine.begin() as connection:
        owner = connection.execute(
            select(F.charity_id).where(F.deployment_id == writes.deployment_id, F.sha256 == sha256)
        ).scalar_one_or_none()
        if owner is not None and owner != charity_hex:
            return False  # another charity's copy of the same bytes is theirs to withdraw
        connection.execute(
            update(F)
            .where(F.deployment_id == writes.deployment_id, F.sha256 == sha256, F.withdrawn_at.is_(None))
            .values(withdrawn_at=datetime.now(UTC))
        )
    root = writes.settings.evidence_path
    erased = False
    for path in (documents.public_path(root, sha256), documents.sealed_path(root, sha256)):
        if path.is_file():
            path.unlink()
            erased = True
    return erased


def withdraw(
    writes: Writes, target: EvidenceTarget, sha256: str, reason: str, wait: bool
) -> tuple[dict[str, Any], list[TxState]]:
    """Erase a document anchored on the disbursement and record the withdrawal on chain
    (the anchor stays). Checked and simulated before the bytes are deleted; a retry after
    a failed send finds them gone and records the withdrawal."""
    anchored, withdrawn, _ = _status(writes, target, sha256)
    if not anchored:
        raise NotFound("no document with this hash is anchored on this disbursement")
    if withdrawn:
        raise Conflict("this document was already withdrawn", error={"name": "EvidenceAlreadyWithdrawn"})
    call = encode("withdrawEvidence", target.disbursement, unhex(sha256), reason)
    gas = writes.simulate(target.operator, call)
    erased = erase(writes, target.charity_hex, sha256)
    step = Step(call, {"kind": "evidence-withdrawn", "ids": [target.disbursement_id, sha256]}, gas)
    [state] = writes.submit(target.operator, target.charity_hex, [step], wait)
    body = {
        "disbursement_id": target.disbursement_id,
        "sha256": sha256,
        "reason": reason,
        "erased": erased,
        "transaction": writes.transaction_view(state),
    }
    return body, [state]


def link_copy(
    writes: Writes, target: EvidenceTarget, original: str, upload: UploadFile, wait: bool
) -> tuple[dict[str, Any], list[TxState]]:
    """Store a redacted copy (public) of a document anchored on the disbursement, and link
    them on chain (the copy is anchored by the link if it is not yet)."""
    anchored, _, _ = _status(writes, target, original)
    if not anchored:
        raise NotFound("no document with this hash is anchored on this disbursement")
    root = writes.settings.evidence_path
    staged = stage_document(root, upload, 1)
    try:
        if staged.sha256 == original:
            raise InvalidRequest("the copy is the original itself: upload the redacted version")
        copy_anchored, _, linked_to = _status(writes, target, staged.sha256)
        if int(linked_to, 16):
            raise Conflict(
                f"this file is already the redacted copy of {linked_to}",
                error={"name": "RedactedCopyAlreadyLinked"},
            )
        known = known_visibility(writes, {staged.sha256}).get(staged.sha256)
        if known == documents.RESTRICTED:
            raise Conflict("this file is stored here as restricted: a redacted copy is public")
        call = encode("linkRedactedCopy", target.disbursement, unhex(original), unhex(staged.sha256))
        gas = writes.simulate(target.operator, call)
        store_document(writes, target, staged, documents.PUBLIC, known)
    finally:
        staged.temporary.unlink(missing_ok=True)
    step = Step(
        call,
        {"kind": "evidence-redacted-copy", "ids": [target.disbursement_id, original, staged.sha256]},
        gas,
    )
    [state] = writes.submit(target.operator, target.charity_hex, [step], wait)
    body = {
        "disbursement_id": target.disbursement_id,
        "original_sha256": original,
        "redacted_copy": {
            "sha256": staged.sha256,
            "size": staged.size,
            "filename": staged.filename,
            "media_type": staged.media_type,
            "visibility": documents.PUBLIC,
            **({"already_anchored": True} if copy_anchored else {}),
        },
        "transaction": writes.transaction_view(state),
    }
    return body, [state]
