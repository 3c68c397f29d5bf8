"""Issuing and revoking API keys: the one place a key is made and stored, used by the
API (`POST /v1/keys`), the CLI (`ledger keys create`) and the demo.

A key is shown once, when it is issued; the database keeps only its SHA-256 digest
(core.security.new_key makes the id, the key and the digest)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ledger_api.core.accounts import operator_of
from ledger_api.core.errors import Conflict, NotFound
from ledger_api.core.models import ApiKey, ConsoleSession
from ledger_api.core.security import aware, expired_detail, new_key
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror


@dataclass(frozen=True)
class IssuedKey:
    id: str
    key: str  # the full key: give it to its holder now, it is not kept


def issue_key(
    engine: Engine,
    role: str,
    charity_hex: str | None = None,
    label: str | None = None,
    *,
    charities: list[str] | None = None,
    expires_at: datetime | None = None,
    account: str | None = None,
) -> IssuedKey:
    """Make a key for `role` (for one charity, by its 0x hex ID, if a charity key; an
    auditor key limited to `charities`, if given), expiring at `expires_at` (None: never),
    and store its digest."""
    key_id, key, secret_hash = new_key()
    with engine.begin() as connection:
        connection.execute(
            insert(ApiKey).values(
                id=key_id,
                secret_hash=secret_hash,
                role=role,
                charity_id=charity_hex,
                label=label,
                charities=charities,
                expires_at=expires_at,
                account=account,
            )
        )
    return IssuedKey(key_id, key)


@dataclass(frozen=True)
class Rotated:
    issued: IssuedKey
    role: str
    charity_id: str | None
    charities: list[str] | None
    label: str | None
    expires_at: datetime | None  # the new key's
    previous_expires_at: datetime  # the old key's, at the end of the grace period


def rotate_key(engine: Engine, key_id: str, grace: timedelta, expires_at: datetime | None = None) -> Rotated:
    """A new key with the old one's role, charity, scope and label; the old one expires
    after `grace` (or sooner, if it was to expire sooner), so its holder can switch
    without downtime. The new key expires at `expires_at` if given, else lives as long as
    the old one was meant to (None: never). NotFound for no such key; Conflict for a
    revoked or expired key, or one already rotated (rotate its successor)."""
    try:
        return _rotate(engine, key_id, grace, expires_at)
    except IntegrityError:  # another rotation of the same key won the race
        raise Conflict("this key was already rotated; rotate its successor") from None


def _rotate(engine: Engine, key_id: str, grace: timedelta, expires_at: datetime | None) -> Rotated:
    now = datetime.now(UTC)
    with engine.begin() as connection:
        old = connection.execute(select(ApiKey).where(ApiKey.id == key_id).with_for_update()).one_or_none()
        if old is None:
            raise NotFound("no such key")
        if old.revoked_at is not None:
            raise Conflict("this key is revoked; issue a new one instead")
        old_expiry = aware(old.expires_at) if old.expires_at is not None else None
        if old_expiry is not None and old_expiry <= now:
            raise Conflict(expired_detail(old_expiry))
        successor = connection.execute(select(ApiKey.id).where(ApiKey.rotated_from == key_id)).first()
        if successor is not None:
            raise Conflict(f"this key was already rotated (its successor is {successor.id})")
        if expires_at is None and old_expiry is not None:
            expires_at = now + (old_expiry - aware(old.created_at))
        previous = now + grace if old_expiry is None else min(old_expiry, now + grace)
        new_id, key, secret_hash = new_key()
        connection.execute(
            insert(ApiKey).values(
                id=new_id,
                secret_hash=secret_hash,
                role=old.role,
                charity_id=old.charity_id,
                label=old.label,
                charities=old.charities,
                expires_at=expires_at,
                rotated_from=key_id,
                account=old.account,
            )
        )
        connection.execute(update(ApiKey).where(ApiKey.id == key_id).values(expires_at=previous))
    return Rotated(
        IssuedKey(new_id, key), old.role, old.charity_id, old.charities, old.label, expires_at, previous
    )


def revoke_key(engine: Engine, key_id: str) -> bool:
    """Revoke a key (revoking it again changes nothing), and end the console sessions it
    opened; False if there is no such key."""
    with engine.begin() as connection:
        connection.execute(delete(ConsoleSession).where(ConsoleSession.key_id == key_id))
        revoked = connection.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        ).rowcount
        return (
            bool(revoked)
            or connection.execute(select(ApiKey.id).where(ApiKey.id == key_id)).first() is not None
        )


def registered_here(mirror: Mirror, charity_hex: str) -> bool:
    """Whether a charity key may be issued for `charity_hex`: a charity this service
    registered with a platform-held key, or one of this ledger (mirrored: registered by
    this deployment's registrar) that holds its own key."""
    if operator_of(mirror.engine, mirror.deployment_id, charity_hex) is not None:
        return True
    with mirror.engine.connect() as connection:
        found = connection.execute(
            select(im.Charity.charity_id).where(
                im.Charity.deployment_id == mirror.deployment_id, im.Charity.charity_id == charity_hex
            )
        ).first()
    return found is not None
