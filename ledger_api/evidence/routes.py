"""Evidence documents: the file, if this service stores it and the caller may read it,
and otherwise where it is anchored (ledger_api/core/documents.py says how files are kept
and shown)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ledger_api.core import documents
from ledger_api.core.errors import READ_ERRORS, NotFound, Problem, Unauthenticated, problems
from ledger_api.core.security import OptionalPrincipal
from ledger_api.evidence import reads
from ledger_api.evidence.schemas import EvidenceAnchors
from ledger_api.mirror.gateway import MirrorDep

router = APIRouter(prefix="/v1/evidence", tags=["evidence"])
Sha256 = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="The document's SHA-256, lower-case hex")]


class Withdrawn(Problem):
    status, kind, title = 410, "evidence-withdrawn", "The document was withdrawn"


class Restricted(NotFound):
    kind, title = "evidence-restricted", "The original is held for auditors"


STORED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The stored document (PDFs and photos shown inline, anything else a"
        " download), or where it is anchored (JSON).",
        "content": {
            media_type: {"schema": {"type": "string", "format": "binary"}}
            for media_type in (documents.OCTET_STREAM, *documents.INLINE_TYPES)
        },
    },
    **problems(*READ_ERRORS, Unauthenticated, Withdrawn, reads.KeyMissing),
}


@router.get("/{sha256}", response_model=EvidenceAnchors, responses=STORED)
async def get_evidence(
    sha256: Sha256, request: Request, mirror: MirrorDep, principal: OptionalPrincipal
) -> Response:
    """The stored document, by its hash. A restricted original only to the charity that
    owns it and to auditors whose key covers that charity (each such read is in the access
    log); everyone else learns only where it is anchored, as for a document anchored but
    not stored here. A withdrawn document answers 410 with its anchors and withdrawal."""
    found = await run_in_threadpool(reads.document, mirror, sha256)
    if not found.anchors.anchored:
        raise NotFound("no document with this hash is anchored on the ledger")
    facts = found.anchors.body()
    if found.withdrawals:
        raise Withdrawn("the charity withdrew this document; its anchor stays on the ledger", **facts)
    described = found.file
    if described is not None and described.visibility == documents.RESTRICTED:
        plain = await run_in_threadpool(reads.read_restricted, mirror, request, principal, found)
        if plain is None:
            raise Restricted(
                "this document is restricted: the charity and its auditors can read the original;"
                " the ledger shows where and when it was anchored",
                **facts,
            )
        media_type, disposition, policy = documents.presentation(described.media_type)
        return Response(
            plain,
            media_type=media_type,
            headers={
                "Content-Disposition": reads.disposition(disposition, described.filename),
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": policy,
                "Cache-Control": "private, no-store",
            },
        )
    path = documents.public_path(mirror.settings.evidence_path, sha256)
    if path.is_file():
        media_type, disposition, policy = documents.presentation(
            described.media_type if described else documents.OCTET_STREAM
        )
        return FileResponse(
            path,
            media_type=media_type,
            headers={
                "Content-Disposition": reads.disposition(
                    disposition, described.filename if described else f"{sha256}.bin"
                ),
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": policy,
            },
        )
    return JSONResponse(facts)
