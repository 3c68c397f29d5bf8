"""API keys and who is calling.

A key is `lk_<id>_<secret>`: the id finds the row, the secret is checked against its
SHA-256 in constant time. Keys are shown once, at creation. The admin key can also come
from LEDGER_ADMIN_KEY. Roles: `admin` (the platform: registers charities, issues keys),
`charity` (writes that one charity's records), `auditor` (reads everything, or the
charities its key is limited to, and writes nothing), `approver` (bound to one approver
account of one charity: approves or rejects the proposals whose rule names that account,
and writes nothing else); no key is the anonymous public.

Any key may have an expiry: after it the key answers 401 `key-expired`, saying when it
expired (a rotated key expires at the end of its grace period). An unknown, malformed or
revoked key answers 401 `unauthenticated`, all alike.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine, select

from ledger_api.core.errors import Forbidden, KeyExpired, NotFound, Unauthenticated
from ledger_api.core.models import ApiKey

ROLES = ("admin", "charity", "auditor", "approver")
_KEY = re.compile(r"^lk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
ENV_ADMIN = "admin-env"


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str
    charity_id: str | None = None  # 0x hex, for charity keys
    charities: tuple[str, ...] | None = None  # 0x hex: an auditor key limited to these
    expires_at: datetime | None = None
    account: str | None = None  # an approver key's approver account

    def can_write_for(self, charity_id: str) -> bool:
        return self.role == "admin" or (self.role == "charity" and self.charity_id == charity_id)

    def can_read(self, charity_id: str) -> bool:
        """Whether this key may read `charity_id`'s non-public records."""
        if self.role == "auditor":
            return self.charities is None or charity_id in self.charities
        return self.can_write_for(charity_id)


def aware(moment: datetime) -> datetime:
    """A time from the database as UTC (SQLite gives it back without its zone)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def expired_detail(expires_at: datetime) -> str:
    return f"this key expired at {aware(expires_at).isoformat(timespec='seconds')}; ask for a new one"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key() -> tuple[str, str, str]:
    """(key id, the full key to show once, the digest to store)."""
    key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    secret = secrets.token_urlsafe(32)
    return key_id, f"lk_{key_id}_{secret}", digest(secret)


def authenticate(engine: Engine, admin_key: str | None, authorization: str | None) -> Principal | None:
    """The caller of a request, None for the anonymous public; Unauthenticated for a
    key that is malformed, unknown or revoked (all alike, to give nothing away)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("use `Authorization: Bearer <API key>`")
    if admin_key and hmac.compare_digest(token.encode(), admin_key.encode()):
        return Principal(ENV_ADMIN, "admin")
    match = _KEY.fullmatch(token)
    if not match:
        raise Unauthenticated("invalid or revoked API key")
    with engine.connect() as connection:
        row = connection.execute(
            select(
                ApiKey.secret_hash,
                ApiKey.role,
                ApiKey.charity_id,
                ApiKey.revoked_at,
                ApiKey.charities,
                ApiKey.expires_at,
                ApiKey.account,
            ).where(ApiKey.id == match.group(1))
        ).one_or_none()
    if (
        row is None
        or row.revoked_at is not None
        or not hmac.compare_digest(row.secret_hash, digest(match.group(2)))
    ):
        raise Unauthenticated("invalid or revoked API key")
    expires_at = aware(row.expires_at) if row.expires_at is not None else None
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise KeyExpired(expired_detail(expires_at), expired_at=expires_at.isoformat(timespec="seconds"))
    charities = tuple(row.charities) if row.charities is not None else None
    return Principal(match.group(1), row.role, row.charity_id, charities, expires_at, row.account)


def _principal(request: Request) -> Principal | None:
    runtime = request.app.state.mirror
    admin = runtime.settings.admin_key.get_secret_value() if runtime.settings.admin_key else None
    return authenticate(runtime.engine, admin, request.headers.get("authorization"))


def _caller(request: Request) -> Principal:
    principal = _principal(request)
    if principal is None:
        raise Unauthenticated("this endpoint needs an API key: `Authorization: Bearer <key>`")
    return principal


def _admin(principal: Annotated[Principal, Depends(_caller)]) -> Principal:
    if principal.role != "admin":
        raise Forbidden("only an admin key may do this")
    return principal


def _writer(principal: Annotated[Principal, Depends(_caller)]) -> Principal:
    if principal.role not in ("admin", "charity"):
        raise Forbidden("this key may read but not write")
    return principal


def _signer(principal: Annotated[Principal, Depends(_caller)]) -> Principal:
    """A key that may submit signed calls: a writer's, or an approver's (its own approvals)."""
    if principal.role not in ("admin", "charity", "approver"):
        raise Forbidden("this key may read but not write")
    return principal


def _approver(principal: Annotated[Principal, Depends(_caller)]) -> Principal:
    if principal.role != "approver" or principal.account is None:
        raise Forbidden("only an approver key may approve or reject a proposal")
    return principal


OptionalPrincipal = Annotated[Principal | None, Depends(_principal)]
CurrentPrincipal = Annotated[Principal, Depends(_caller)]
AdminPrincipal = Annotated[Principal, Depends(_admin)]
WriterPrincipal = Annotated[Principal, Depends(_writer)]
SignerPrincipal = Annotated[Principal, Depends(_signer)]
ApproverPrincipal = Annotated[Principal, Depends(_approver)]


def require_charity(principal: Principal, charity_id: str, what: str = "charity") -> None:
    """A charity key touching another charity's records is told they do not exist."""
    if not principal.can_write_for(charity_id):
        raise NotFound(f"{what} not found")
