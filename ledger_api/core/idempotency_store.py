"""Where `Idempotency-Key` answers are kept: one row per (caller, key) in SQL, its answer
sealed. The ASGI side (what is remembered, what is replayed) is `core/idempotency.py`.

A slot's life: `claim` inserts the row with the request's fingerprint (the primary key
makes a second claim fail, so one request runs per key); `finish` stores the answer, or
`release` deletes the row so the key may be used again; `load` reads it back for a
retry; `give_up` answers a row whose request never finished (its process died), once;
`expire` deletes rows older than IDEMPOTENCY_TTL.

Stored answers hold secrets (a donor's receipt secret): their bodies are encrypted with
AES-GCM under a key derived (HKDF-SHA256) from the caller's own API key, which the
database does not hold (it keeps only a SHA-256 of the key's secret). Whoever reads the
table learns nothing from them, and only the caller that made the request can replay it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ledger_api.core.models import IdempotencyRecord

IDEMPOTENCY_TTL = timedelta(hours=24)
# Longer than any request runs (a batch of 2,000 waits for four transactions of at most
# LEDGER_WRITE_TIMEOUT each, then for the mirror): a row unanswered for longer belongs to
# a process that died while it ran.
STALE_AFTER = timedelta(minutes=15)
_SEALED = b"aesgcm1:"

Headers = list[tuple[bytes, bytes]]


def _sealing_key(token: str, key_id: str) -> AESGCM:
    """The key that seals a caller's stored answers, from the API key it presented."""
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"charity-ledger idempotent answers v1",
        info=key_id.encode(),
    ).derive(token.encode())
    return AESGCM(derived)


def seal(token: str, key_id: str, key: str, body: bytes) -> bytes:
    nonce = os.urandom(12)
    associated = f"{key_id}\n{key}".encode()  # a sealed body cannot be moved to another row
    return _SEALED + nonce + _sealing_key(token, key_id).encrypt(nonce, body, associated)


def unseal(token: str, key_id: str, key: str, stored: bytes) -> bytes:
    """The body `seal` sealed; InvalidTag if it was sealed for another caller or row."""
    if not stored.startswith(_SEALED):
        raise InvalidTag
    nonce, sealed = stored[len(_SEALED) : len(_SEALED) + 12], stored[len(_SEALED) + 12 :]
    return _sealing_key(token, key_id).decrypt(nonce, sealed, f"{key_id}\n{key}".encode())


@dataclass(frozen=True)
class Slot:
    """One caller's key: where its row is, and how its answers are sealed."""

    key_id: str  # the caller's API key id (the row's principal)
    bearer: str  # the API key the caller presented: it seals the answers
    key: str  # the Idempotency-Key

    @property
    def where(self) -> Any:
        return (IdempotencyRecord.principal == self.key_id) & (IdempotencyRecord.key == self.key)

    def seal(self, body: bytes) -> bytes:
        return seal(self.bearer, self.key_id, self.key, body)

    def unseal(self, stored: bytes) -> bytes:
        return unseal(self.bearer, self.key_id, self.key, stored)


@dataclass(frozen=True)
class Answer:
    """A stored answer: status, headers (without content-length) and the sealed body."""

    status: int
    headers: Headers
    sealed_body: bytes


@dataclass(frozen=True)
class Record:
    """A slot's row as `load` finds it; `answer` is None while its request runs."""

    request_hash: str
    created_at: datetime
    answer: Answer | None

    @property
    def stale(self) -> bool:
        """Unanswered for longer than any request runs (STALE_AFTER)."""
        created_at = self.created_at
        if created_at.tzinfo is None:  # SQLite keeps UTC without a zone
            created_at = created_at.replace(tzinfo=UTC)
        return datetime.now(UTC) - created_at >= STALE_AFTER


def _stored_headers(headers: Headers) -> str:
    kept = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers if k.lower() != b"content-length"]
    return json.dumps(kept)


def _answer(status: int, headers: str, body: bytes | None) -> Answer:
    pairs = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in json.loads(headers)]
    return Answer(status, pairs, body or b"")


def claim(engine: Any, slot: Slot, request_hash: str) -> bool:
    """Take the slot for a request with this fingerprint; False if the key has a row."""
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(IdempotencyRecord).values(
                    principal=slot.key_id, key=slot.key, request_hash=request_hash
                )
            )
    except IntegrityError:
        return False
    return True


def finish(engine: Any, slot: Slot, status: int, headers: Headers, body: bytes) -> None:
    """Store the answer of the slot's request, its body sealed."""
    with engine.begin() as connection:
        connection.execute(
            update(IdempotencyRecord)
            .where(slot.where)
            .values(status_code=status, headers=_stored_headers(headers), body=slot.seal(body))
        )


def release(engine: Any, slot: Slot) -> None:
    """Forget the slot: its key may be used again."""
    with engine.begin() as connection:
        connection.execute(delete(IdempotencyRecord).where(slot.where))


def load(engine: Any, slot: Slot) -> Record | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(
                IdempotencyRecord.request_hash,
                IdempotencyRecord.status_code,
                IdempotencyRecord.headers,
                IdempotencyRecord.body,
                IdempotencyRecord.created_at,
            ).where(slot.where)
        ).one_or_none()
    if row is None:
        return None
    answer = None if row.status_code is None else _answer(row.status_code, row.headers, row.body)
    return Record(row.request_hash, row.created_at, answer)


def give_up(engine: Any, slot: Slot, status: int, headers: Headers, body: bytes) -> Answer:
    """Store this answer for a row its request never answered (once, with a conditional
    UPDATE: two retries may race), and return whatever answer the row now has."""
    with engine.begin() as connection:
        connection.execute(
            update(IdempotencyRecord)
            .where(slot.where & IdempotencyRecord.status_code.is_(None))
            .values(status_code=status, headers=_stored_headers(headers), body=slot.seal(body))
        )
        row = connection.execute(
            select(IdempotencyRecord.status_code, IdempotencyRecord.headers, IdempotencyRecord.body).where(
                slot.where
            )
        ).one()
    return _answer(int(row.status_code), str(row.headers), bytes(row.body))


def expire(engine: Any) -> int:
    """Delete rows older than IDEMPOTENCY_TTL, answered or not: stored answers hold
    donors' receipt secrets (sealed), kept only as long as a client could retry."""
    cutoff = datetime.now(UTC) - IDEMPOTENCY_TTL
    with engine.begin() as connection:
        return int(
            connection.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff)
            ).rowcount
        )
