"""Signed-in sessions of the console, and the CSRF token of every form.

1. Sign-in is a POST of an API key (never a URL): the key is checked by
   `core.security.authenticate`, exactly as the API checks a bearer key (hashed keys,
   revoked keys refused), and then forgotten. Admin, charity and approver keys may sign
   in (an approver's session reaches only its own approval pages, `console/approvals.py`).
2. A session is a random 256-bit token in a cookie (HttpOnly, SameSite=Strict,
   Path=/console, Secure when the request came over HTTPS; behind a proxy the scheme is the
   one uvicorn's `--proxy-headers` took from it). The database keeps the SHA-256 of the
   token, the key's id, role and charity: a stolen database opens no session.
3. A session ends after IDLE without a request, after ABSOLUTE whatever happens, on
   sign-out (its row is deleted), and when its key is revoked (the lookup joins the key).
4. Every form carries a synchronizer token: HMAC-SHA256 of the session token, so it is
   bound to the session, stored nowhere, and compared in constant time. The sign-in form,
   before there is a session, is bound the same way to a short-lived sign-in cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, exists, insert, or_, select, update
from starlette.requests import Request
from starlette.responses import Response

from ledger_api.core.models import ApiKey, ConsoleSession
from ledger_api.core.security import ENV_ADMIN, Principal

COOKIE = "ledger_console"
SIGN_IN_COOKIE = "ledger_console_signin"
PATH = "/console"
IDLE = timedelta(minutes=30)  # a bookkeeper's pause for lunch ends the session
ABSOLUTE = timedelta(hours=12)  # one working day, whatever happens
SIGN_IN_AGE = 3600  # the sign-in form's own token, in seconds
TOKEN = 32  # bytes of randomness in a session token
_CSRF = b"ledger-console-csrf"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_for(token: str) -> str:
    """The synchronizer token of the session (or sign-in cookie) `token`."""
    return hmac.new(token.encode(), _CSRF, hashlib.sha256).hexdigest()


def csrf_matches(token: str | None, given: str) -> bool:
    """Whether a form's token belongs to the session token `token` (constant time)."""
    if not token or not given:
        return False
    return hmac.compare_digest(csrf_for(token).encode(), given.encode()[:200])


@dataclass(frozen=True)
class Staff:
    """Who is signed in: the key's principal, and the session's token (for the CSRF)."""

    principal: Principal
    token: str

    @property
    def csrf(self) -> str:
        return csrf_for(self.token)

    @property
    def charity_hex(self) -> str | None:
        return self.principal.charity_id


def open_session(engine: Engine, principal: Principal) -> str:
    """A new session for `principal`; the token for the cookie (stored only hashed)."""
    token = secrets.token_urlsafe(TOKEN)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(ConsoleSession).values(
                token_hash=_hash(token),
                key_id=principal.key_id,
                role=principal.role,
                charity_id=principal.charity_id,
                created_at=now,
                seen_at=now,
            )
        )
    return token


def find(engine: Engine, token: str | None) -> Staff | None:
    """The session of a cookie's token, None if there is none, it expired or its key was
    revoked or has expired; a live session's idle clock starts again."""
    if not token or len(token) > 100:
        return None
    now = datetime.now(UTC)
    S = ConsoleSession
    key_alive = exists().where(
        ApiKey.id == S.key_id,
        ApiKey.revoked_at.is_(None),
        or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
    )
    live = (
        S.token_hash == _hash(token),
        S.created_at > now - ABSOLUTE,
        S.seen_at > now - IDLE,
        or_(S.key_id == ENV_ADMIN, key_alive),
    )
    with engine.begin() as connection:
        # An approver key's account is the key's, not the session's: read it with the key.
        account = select(ApiKey.account).where(ApiKey.id == S.key_id).scalar_subquery()
        row = connection.execute(
            select(S.key_id, S.role, S.charity_id, account.label("account")).where(*live)
        ).one_or_none()
        if row is None:
            return None
        connection.execute(update(S).where(S.token_hash == _hash(token)).values(seen_at=now))
    return Staff(Principal(row.key_id, row.role, row.charity_id, account=row.account), token)


def end(engine: Engine, token: str | None) -> None:
    """Sign-out: the session's row is deleted, so its cookie opens nothing any more."""
    if token:
        with engine.begin() as connection:
            connection.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == _hash(token)))


def forget_expired(engine: Engine) -> int:
    """Delete sessions past either expiry (run at each sign-in and by the retention job:
    the table stays small); how many."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        return int(
            connection.execute(
                delete(ConsoleSession).where(
                    or_(ConsoleSession.created_at <= now - ABSOLUTE, ConsoleSession.seen_at <= now - IDLE)
                )
            ).rowcount
        )


def secure(request: Request) -> bool:
    """Whether the request came over HTTPS (the cookie is then Secure)."""
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, token: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        token,
        max_age=max_age,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path=PATH, httponly=True, samesite="strict", secure=secure(request))


def new_sign_in_token() -> str:
    """The sign-in form's cookie token (before there is a session)."""
    return secrets.token_urlsafe(TOKEN)
