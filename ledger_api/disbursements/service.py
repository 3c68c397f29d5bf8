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
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import UploadFile
from sqlalchemy import select

from indexer import models as im
from ledger_api.app import Runtime
from ledger_api.campaigns.service import charity_of_campaign, view_call
from ledger_api.chain.writer import TxState
from ledger_api.charities.service import ZERO, operator_for
from ledger_api.core import ids, writes
from ledger_api.core.errors import Conflict, ContractRejected, InvalidRequest
from ledger_api.core.security import Principal
from ledger_api.disbursements.schemas import MAX_ALLOCATIONS, DisbursementCreate

STALE = {"DonationOverdrawn", "DonationNotFound", "AllocationCampaignMismatch", "CampaignOverdrawn"}
MAX_DOCUMENT = 25 * 1024 * 1024
MAX_DOCUMENTS = 10


def fifo(runtime: Runtime, campaign_hex: str, amount: int) -> list[tuple[bytes, int]]:
    """Allocations for `amount`, oldest donations first, from the mirror."""
    D = im.Donation
    remaining = D.amount - D.allocated - D.refunded
    allocations: list[tuple[bytes, int]] = []
    left = amount
    with runtime.engine.connect() as connection:
        rows = connection.execute(
            select(D.donation_id, remaining)
            .where(D.deployment_id == runtime.deployment_id, D.campaign_id == campaign_hex, remaining > 0)
            .order_by(D.block_number, D.log_index)
            .execution_options(yield_per=500)
        )
        for donation_id, balance in rows:
            take = min(int(balance), left)
            allocations.append((bytes.fromhex(donation_id[2:]), take))
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


def _wait_for_mirror(runtime: Runtime, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    head = runtime.w3.eth.block_number
    while time.monotonic() < deadline:
        with runtime.engine.connect() as connection:
            indexed = connection.execute(
                select(im.Cursor.block_number).where(im.Cursor.deployment_id == runtime.deployment_id)
            ).scalar_one_or_none()
        if indexed is not None and indexed >= head:
            return
        time.sleep(0.05)


def record(
    runtime: Runtime, principal: Principal, body: DisbursementCreate, wait: bool
) -> tuple[dict[str, Any], TxState]:
    charity_hex = charity_of_campaign(runtime, body.campaign_id)
    operator = operator_for(runtime, principal, charity_hex, "campaign")
    campaign = ids.to_bytes32(body.campaign_id, "campaign")
    disbursement_id = ids.new("disbursement")
    evidence = bytes.fromhex(body.evidence_hash[2:]) if body.evidence_hash else ZERO
    automatic = body.allocations is None

    def call_for(allocations: list[tuple[bytes, int]]) -> Any:
        return runtime.contract.functions.recordDisbursement(
            ids.to_bytes32(disbursement_id),
            campaign,
            body.amount,
            body.recipient,
            body.purpose,
            evidence,
            [list(a) for a in allocations],
        )

    if automatic:
        try:
            allocations = fifo(runtime, "0x" + campaign.hex(), body.amount)
        except Conflict:
            _wait_for_mirror(runtime)  # the mirror may not have the newest donations yet
            allocations = fifo(runtime, "0x" + campaign.hex(), body.amount)
    else:
        assert body.allocations is not None
        allocations = [(ids.to_bytes32(a.donation_id, "donation"), a.amount) for a in body.allocations]
    call = call_for(allocations)
    try:
        gas = writes.simulate(runtime, operator, call)
    except ContractRejected as rejected:
        name = rejected.extra.get("error", {}).get("name")
        if not automatic or name not in STALE:
            raise
        _wait_for_mirror(runtime)
        allocations = fifo(runtime, "0x" + campaign.hex(), body.amount)
        call = call_for(allocations)
        try:
            gas = writes.simulate(runtime, operator, call)
        except ContractRejected as again:
            raise Conflict(
                "the automatic allocation was rejected twice (the campaign's donations changed meanwhile);"
                " try again or give the allocations explicitly",
                error=again.extra.get("error"),
            ) from None
    state = writes.send(
        runtime, operator, call, gas, charity_hex, {"kind": "disbursement", "ids": [disbursement_id]}
    )
    state = writes.settle(runtime, [state], wait)[0]
    created = {
        "id": disbursement_id,
        "campaign_id": body.campaign_id,
        "amount": body.amount,
        "recipient": body.recipient,
        "purpose": body.purpose,
        "allocation": "automatic (first in, first out)" if automatic else "explicit",
        "allocations": [{"donation_id": ids.from_bytes32(d), "amount": a} for d, a in allocations],
        "transaction": writes.transaction_view(runtime, state),
    }
    return created, state


def store_document(root: Path, upload: UploadFile) -> tuple[str, int]:
    """Store an upload content-addressed (root/ab/abcdef...); returns (sha256 hex, size)."""
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, temporary = tempfile.mkstemp(dir=root, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := upload.file.read(1 << 20):
                size += len(chunk)
                if size > MAX_DOCUMENT:
                    raise InvalidRequest(f"a document may be at most {MAX_DOCUMENT // (1024 * 1024)} MB")
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise InvalidRequest("an empty document cannot be evidence")
        sha = digest.hexdigest()
        target = root / sha[:2] / sha
        target.parent.mkdir(exist_ok=True)
        os.replace(temporary, target)
        return sha, size
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def anchor(
    runtime: Runtime, principal: Principal, disbursement_id: str, uploads: list[UploadFile], wait: bool
) -> tuple[dict[str, Any], list[TxState]]:
    if not 1 <= len(uploads) <= MAX_DOCUMENTS:
        raise InvalidRequest(f"upload 1 to {MAX_DOCUMENTS} documents as multipart field `files`")
    disbursement = ids.to_bytes32(disbursement_id, "disbursement")
    view = view_call(runtime, "disbursementOf", disbursement, missing="disbursement")
    charity_hex = charity_of_campaign(runtime, ids.from_bytes32(bytes(view[0])))
    operator = operator_for(runtime, principal, charity_hex, "disbursement")
    documents, states = [], []
    for upload in uploads:
        sha, size = store_document(runtime.settings.evidence_path, upload)
        document: dict[str, Any] = {"sha256": sha, "size": size, "filename": (upload.filename or "")[:200]}
        hash_bytes = bytes.fromhex(sha)
        if view_call(runtime, "isEvidenceAnchored", disbursement, hash_bytes, missing="disbursement"):
            document["already_anchored"] = True
        else:
            call = runtime.contract.functions.anchorEvidence(disbursement, hash_bytes)
            gas = writes.simulate(runtime, operator, call)
            state = writes.send(
                runtime, operator, call, gas, charity_hex, {"kind": "evidence", "ids": [disbursement_id, sha]}
            )
            states.append(state)
            document["transaction_id"] = state.id
        documents.append(document)
    states = writes.settle(runtime, states, wait)
    views = {s.id: writes.transaction_view(runtime, s) for s in states}
    for document in documents:
        if "transaction_id" in document:
            document["transaction"] = views[document.pop("transaction_id")]
    return {"disbursement_id": disbursement_id, "documents": documents}, states
