"""Evidence documents: the file, if this service stores it, and where it is anchored."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import select

from ledger_api.core import ids
from ledger_api.core.errors import READ_ERRORS, NotFound, problems
from ledger_api.evidence.schemas import Anchor, EvidenceAnchors
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import MirrorDep
from ledger_api.mirror.proofs import block_info, chain_view, proof

router = APIRouter(prefix="/v1/evidence", tags=["evidence"])
Sha256 = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="The document's SHA-256, lower-case hex")]


STORED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The stored document (octet-stream), or where it is anchored (JSON).",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    **problems(*READ_ERRORS),
}


@router.get("/{sha256}", response_model=EvidenceAnchors, responses=STORED)
def get_evidence(sha256: Sha256, mirror: MirrorDep) -> Response:
    """The stored document (public, by its hash). Documents that are anchored but not
    stored here are described instead: anyone holding a copy can check it."""
    E = im.Evidence
    with mirror.engine.connect() as connection:
        anchors = connection.execute(
            select(E.disbursement_id, E.block_number, E.tx_hash, E.log_index).where(
                E.deployment_id == mirror.deployment_id, E.document_hash == "0x" + sha256
            )
        ).all()
        view = chain_view(mirror, connection)
        blocks = block_info(mirror, connection, {a.block_number for a in anchors})
    if not anchors:
        raise NotFound("no document with this hash is anchored on the ledger")
    path = mirror.settings.evidence_path / sha256[:2] / sha256
    if path.is_file():
        return FileResponse(
            path,
            media_type="application/octet-stream",
            filename=f"{sha256}.bin",
            headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"},
        )
    described = EvidenceAnchors(
        sha256=sha256,
        stored=False,
        anchored=[
            Anchor(disbursement_id=ids.from_bytes32(a.disbursement_id), proof=proof(view, blocks, a))
            for a in anchors
        ],
    )
    return JSONResponse(described.body())
