"""The SQL store behind `Idempotency-Key`, on a real database of each kind: one claim per
key, answers sealed for the caller that made the request, a dead request answered once,
old rows expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine, update

from ledger_api.core import db
from ledger_api.core import idempotency_store as store
from ledger_api.core.models import IdempotencyRecord

SLOT = store.Slot(key_id="k1", bearer="ledger_k1_secret", key="order-7")
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"11")]


@pytest.fixture
def engine(database_url: str) -> Engine:
    db.upgrade(database_url)
    return db.make_engine(database_url)


def _age(engine: Engine, slot: store.Slot, by: timedelta) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(IdempotencyRecord).where(slot.where).values(created_at=datetime.now(UTC) - by)
        )


def test_a_key_is_claimed_once_until_it_is_released(engine: Engine) -> None:
    assert store.claim(engine, SLOT, "hash-a")
    assert not store.claim(engine, SLOT, "hash-a")
    other_caller = store.Slot(key_id="k2", bearer="ledger_k2_secret", key=SLOT.key)
    assert store.claim(engine, other_caller, "hash-a")  # keys are per caller
    store.release(engine, SLOT)
    assert store.load(engine, SLOT) is None
    assert store.claim(engine, SLOT, "hash-b")


def test_a_finished_answer_is_sealed_for_its_caller_only(engine: Engine) -> None:
    store.claim(engine, SLOT, "hash-a")
    running = store.load(engine, SLOT)
    assert running is not None and running.answer is None and not running.stale
    store.finish(engine, SLOT, 201, HEADERS, b'{"id":"DN"}')
    record = store.load(engine, SLOT)
    assert record is not None and record.request_hash == "hash-a" and record.answer is not None
    answer = record.answer
    assert (answer.status, answer.headers) == (201, [(b"content-type", b"application/json")])
    assert b"DN" not in answer.sealed_body
    assert SLOT.unseal(answer.sealed_body) == b'{"id":"DN"}'
    with pytest.raises(InvalidTag):
        store.Slot(SLOT.key_id, "ledger_k1_another", SLOT.key).unseal(answer.sealed_body)
    with pytest.raises(InvalidTag):  # a sealed body cannot be moved to another key's row
        store.Slot(SLOT.key_id, SLOT.bearer, "order-8").unseal(answer.sealed_body)


def test_a_request_that_never_finished_is_given_up_once(engine: Engine) -> None:
    store.claim(engine, SLOT, "hash-a")
    _age(engine, SLOT, store.STALE_AFTER + timedelta(seconds=1))
    record = store.load(engine, SLOT)
    assert record is not None and record.stale and record.answer is None
    first = store.give_up(engine, SLOT, 409, HEADERS, b"first")
    second = store.give_up(engine, SLOT, 409, HEADERS, b"second")  # a racing retry
    assert SLOT.unseal(first.sealed_body) == SLOT.unseal(second.sealed_body) == b"first"


def test_rows_older_than_the_ttl_expire_answered_or_not(engine: Engine) -> None:
    old, running, recent = (store.Slot("k1", "ledger_k1_secret", key) for key in ("old", "running", "recent"))
    for slot in (old, running, recent):
        store.claim(engine, slot, "hash")
    store.finish(engine, old, 201, HEADERS, b"{}")
    _age(engine, old, store.IDEMPOTENCY_TTL + timedelta(minutes=1))
    _age(engine, running, store.IDEMPOTENCY_TTL + timedelta(minutes=1))
    assert store.expire(engine) == 2
    assert store.load(engine, old) is None and store.load(engine, running) is None
    assert store.load(engine, recent) is not None
