"""Issuing and revoking API keys: the one place a key is made and stored, used by the
API (`POST /v1/keys`), the CLI (`ledger keys create`) and the demo.

A key is shown once, when it is issued; the database keeps only its SHA-256 digest
(core.security.new_key makes the id, the key and the digest)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, insert, select, update

from ledger_api.core.accounts import operator_of
from ledger_api.core.models import ApiKey, ConsoleSession
from ledger_api.core.security import new_key
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror


@dataclass(frozen=True)
class IssuedKey:
    id: str
    key: str  # the full key: give it to its holder now, it is not kept


def issue_key(
    engine: Engine, role: str, charity_hex: str | None = None, label: str | None = None
) -> IssuedKey:
    """Make a key for `role` (for one charity, by its 0x hex ID, if a charity key) and
    store its digest."""
    key_id, key, secret_hash = new_key()
    with engine.begin() as connection:
        connection.execute(
            insert(ApiKey).values(
                id=key_id, secret_hash=secret_hash, role=role, charity_id=charity_hex, label=label
            )
        )
    return IssuedKey(key_id, key)


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
