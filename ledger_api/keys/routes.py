"""API keys: issued and revoked by an admin."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse
from sqlalchemy import insert, select, update

from ledger_api.charities.service import find_charity
from ledger_api.core import ids
from ledger_api.core.deps import RuntimeDep
from ledger_api.core.errors import (
    AUTH_ERRORS,
    BODY_ERRORS,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    problems,
)
from ledger_api.core.idempotency import WITHHOLD_HEADER
from ledger_api.core.models import ApiKey
from ledger_api.core.security import AdminPrincipal, new_key
from ledger_api.keys.schemas import KeyCreate, KeyIssued

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.post(
    "",
    status_code=201,
    response_model=KeyIssued,
    responses=problems(*AUTH_ERRORS, *BODY_ERRORS, NotFound, IdempotencyConflict),
)
def create_key(body: KeyCreate, runtime: RuntimeDep, _: AdminPrincipal) -> JSONResponse:
    """Issue a key. The key itself is in this answer only; the service keeps its hash (a
    retry with the same Idempotency-Key answers the same key id with `"key": null`)."""
    charity_hex = ids.to_hex(body.charity_id, "charity") if body.charity_id else None
    if charity_hex is not None:
        find_charity(runtime, charity_hex)  # 404 for a charity this service does not know
    key_id, key, secret_hash = new_key()
    with runtime.engine.begin() as connection:
        connection.execute(
            insert(ApiKey).values(
                id=key_id, secret_hash=secret_hash, role=body.role, charity_id=charity_hex, label=body.label
            )
        )
    issued = KeyIssued(id=key_id, key=key, role=body.role, charity_id=body.charity_id, label=body.label)
    return JSONResponse(
        issued.body(),
        status_code=201,
        # Shown once: a retry with the same Idempotency-Key answers without it.
        headers={WITHHOLD_HEADER.decode(): "key"},
    )


@router.delete("/{key_id}", status_code=204, responses=problems(*AUTH_ERRORS, NotFound, InvalidRequest))
def revoke_key(
    runtime: RuntimeDep, _: AdminPrincipal, key_id: str = Path(max_length=12, pattern=r"^[a-z0-9]{12}$")
) -> Response:
    with runtime.engine.begin() as connection:
        revoked = connection.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        ).rowcount
        if not revoked and connection.execute(select(ApiKey.id).where(ApiKey.id == key_id)).first() is None:
            raise NotFound("no such key")
    return Response(status_code=204)
