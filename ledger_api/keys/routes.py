"""API keys: issued and revoked by an admin."""

from __future__ import annotations

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from ledger_api.core import ids
from ledger_api.core.errors import (
    AUTH_ERRORS,
    BODY_ERRORS,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    problems,
)
from ledger_api.core.idempotency import WITHHOLD_HEADER
from ledger_api.core.security import AdminPrincipal
from ledger_api.keys import service
from ledger_api.keys.schemas import KeyCreate, KeyIssued
from ledger_api.mirror.gateway import MirrorDep

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.post(
    "",
    status_code=201,
    response_model=KeyIssued,
    responses=problems(*AUTH_ERRORS, *BODY_ERRORS, NotFound, IdempotencyConflict),
)
def create_key(body: KeyCreate, mirror: MirrorDep, _: AdminPrincipal) -> JSONResponse:
    """Issue a key. The key itself is in this answer only; the service keeps its hash (a
    retry with the same Idempotency-Key answers the same key id with `"key": null`)."""
    charity_hex = ids.to_hex(body.charity_id, "charity") if body.charity_id else None
    if charity_hex is not None and not service.registered_here(mirror, charity_hex):
        raise NotFound("charity not found")  # not a charity of this ledger
    issued = service.issue_key(mirror.engine, body.role, charity_hex, body.label)
    answer = KeyIssued(
        id=issued.id, key=issued.key, role=body.role, charity_id=body.charity_id, label=body.label
    )
    return JSONResponse(
        answer.body(),
        status_code=201,
        # Shown once: a retry with the same Idempotency-Key answers without it.
        headers={WITHHOLD_HEADER.decode(): "key"},
    )


@router.delete("/{key_id}", status_code=204, responses=problems(*AUTH_ERRORS, NotFound, InvalidRequest))
def revoke_key(
    mirror: MirrorDep, _: AdminPrincipal, key_id: str = Path(max_length=12, pattern=r"^[a-z0-9]{12}$")
) -> Response:
    if not service.revoke_key(mirror.engine, key_id):
        raise NotFound("no such key")
    return Response(status_code=204)
