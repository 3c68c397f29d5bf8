"""API keys: issued, rotated and revoked by an admin (a charity key may rotate itself)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Path, Response
from fastapi.responses import JSONResponse

from ledger_api.core import ids
from ledger_api.core.errors import (
    AUTH_ERRORS,
    BODY_ERRORS,
    Conflict,
    Forbidden,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    problems,
)
from ledger_api.core.idempotency import WITHHOLD_HEADER
from ledger_api.core.security import AdminPrincipal, CurrentPrincipal
from ledger_api.keys import service
from ledger_api.keys.schemas import MAX_DAYS, KeyCreate, KeyIssued, KeyRotate, Lifetime
from ledger_api.mirror.gateway import MirrorDep

router = APIRouter(prefix="/v1/keys", tags=["keys"])

KeyId = Annotated[str, Path(max_length=12, pattern=r"^[a-z0-9]{12}$")]


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment is not None else None


def expiry(lifetime: Lifetime, now: datetime) -> datetime | None:
    """The expiry a request asks for: not in the past, at most ten years away (422)."""
    if lifetime.expires_in_days is not None:
        return now + timedelta(days=lifetime.expires_in_days)
    if lifetime.expires_at is None:
        return None
    if lifetime.expires_at <= now:
        raise InvalidRequest("expires_at is in the past: a key must expire in the future")
    if lifetime.expires_at > now + timedelta(days=MAX_DAYS):
        raise InvalidRequest(f"expires_at is more than {MAX_DAYS} days away")
    return lifetime.expires_at


def _issued(answer: KeyIssued, status: int) -> JSONResponse:
    return JSONResponse(
        answer.body(),
        status_code=status,
        # Shown once: a retry with the same Idempotency-Key answers without it.
        headers={WITHHOLD_HEADER.decode(): "key"},
    )


@router.post(
    "",
    status_code=201,
    response_model=KeyIssued,
    responses=problems(*AUTH_ERRORS, *BODY_ERRORS, NotFound, IdempotencyConflict),
)
def create_key(body: KeyCreate, mirror: MirrorDep, _: AdminPrincipal) -> JSONResponse:
    """Issue a key. The key itself is in this answer only; the service keeps its hash (a
    retry with the same Idempotency-Key answers the same key id with `"key": null`). An
    auditor key may be limited to some charities (`charities`; unknown ones are 422);
    any key may expire (`expires_at` or `expires_in_days`)."""
    charity_hex = ids.to_hex(body.charity_id, "charity") if body.charity_id else None
    if charity_hex is not None and not service.registered_here(mirror, charity_hex):
        raise NotFound("charity not found")  # not a charity of this ledger
    charities = None
    if body.charities is not None:
        charities = list(dict.fromkeys(ids.to_hex(charity, "charity") for charity in body.charities))
        unknown = [ids.from_bytes32(c) for c in charities if not service.registered_here(mirror, c)]
        if unknown:
            raise InvalidRequest(f"no such charity on this ledger: {', '.join(unknown)}")
    expires_at = expiry(body, datetime.now(UTC))
    issued = service.issue_key(
        mirror.engine, body.role, charity_hex, body.label, charities=charities, expires_at=expires_at
    )
    answer = KeyIssued(
        id=issued.id,
        key=issued.key,
        role=body.role,
        charity_id=body.charity_id,
        charities=[ids.from_bytes32(c) for c in charities] if charities is not None else None,
        expires_at=_iso(expires_at),
        label=body.label,
    )
    return _issued(answer, 201)


@router.post(
    "/{key_id}/rotate",
    status_code=201,
    response_model=KeyIssued,
    responses=problems(*AUTH_ERRORS, *BODY_ERRORS, NotFound, Conflict, IdempotencyConflict),
)
def rotate_key(
    key_id: KeyId,
    mirror: MirrorDep,
    principal: CurrentPrincipal,
    body: Annotated[KeyRotate | None, Body()] = None,
) -> JSONResponse:
    """Issue a successor to a key (same role, charity, scope and label) and have the old
    one expire after a grace period (`grace_hours`, default 24, at most 168), so its
    holder switches without downtime. An admin rotates any key; a charity key itself."""
    if principal.role == "auditor":
        raise Forbidden("an auditor key cannot rotate keys; ask an admin")
    if principal.role in ("charity", "approver") and principal.key_id != key_id:
        raise NotFound("no such key")  # another key: as if it did not exist
    body = body or KeyRotate()
    now = datetime.now(UTC)
    rotated = service.rotate_key(mirror.engine, key_id, timedelta(hours=body.grace_hours), expiry(body, now))
    answer = KeyIssued(
        id=rotated.issued.id,
        key=rotated.issued.key,
        role=rotated.role,  # type: ignore[arg-type]
        charity_id=ids.from_bytes32(rotated.charity_id) if rotated.charity_id else None,
        charities=[ids.from_bytes32(c) for c in rotated.charities] if rotated.charities is not None else None,
        expires_at=_iso(rotated.expires_at),
        label=rotated.label,
        rotated_from=key_id,
        previous_expires_at=_iso(rotated.previous_expires_at),
    )
    return _issued(answer, 201)


@router.delete("/{key_id}", status_code=204, responses=problems(*AUTH_ERRORS, NotFound, InvalidRequest))
def revoke_key(mirror: MirrorDep, _: AdminPrincipal, key_id: KeyId) -> Response:
    if not service.revoke_key(mirror.engine, key_id):
        raise NotFound("no such key")
    return Response(status_code=204)
