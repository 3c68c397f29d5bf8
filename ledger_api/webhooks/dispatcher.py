"""The webhook dispatcher: queue, send, retry, retract.

One round (`Dispatcher.run_once`):

1. Queue. For each live endpoint, the events of blocks above its `queued_block` up to the
   mirror's finalized block (never a block still inside the confirmation window) that
   match its types and scope become one delivery each, in the same transaction that
   moves `queued_block` on with a conditional UPDATE; the unique constraint on
   (endpoint, event id) makes a second dispatcher's insert fail and roll back, so no
   event is queued twice.
2. Retract. A delivered event whose row is gone from the mirror (a reorg deeper than the
   confirmation window removed it) queues one `record.retracted` with the same
   coordinates, and its endpoint's `queued_block` goes back below it so what replaced it
   is queued. A queued event that vanished before it was sent is cancelled.
3. Send. Due deliveries are claimed one by one with a conditional UPDATE of their lease
   (the one dispatcher whose UPDATE changed the row sends it: several processes may run
   dispatchers). The URL is checked again (targets.resolve) and the connection goes to
   the address checked; redirects are not followed, the answer is read up to 64 KiB,
   each attempt is recorded. A 2xx delivers it; anything else schedules the next attempt
   base * 2^(n-1) seconds later (at most 6 hours), up to `webhook_max_attempts`; then it
   fails. An endpoint with DISABLE_AFTER failed deliveries in a row is disabled.

At least once, not exactly once: a process that dies after the receiver answered and
before the answer is recorded sends the event again when the lease runs out. Receivers
dedupe by the `webhook-id` header (the event id, the same on every attempt).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from standardwebhooks.webhooks import Webhook

from ledger_api.core.config import Settings
from ledger_api.core.models import ApiKey, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror
from ledger_api.mirror.proofs import chain_view
from ledger_api.webhooks import service, targets

log = logging.getLogger("ledger_api.webhooks")

MAX_DELAY = timedelta(hours=6)
LEASE = timedelta(seconds=60)
MAX_ANSWER_BYTES = 64 * 1024
DISABLE_AFTER = 20  # failed deliveries in a row
RETRACT_WINDOW = 1024  # blocks below the finalized height where delivered events are rechecked
BATCH = 50


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def backoff(settings: Settings, attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt."""
    delay = timedelta(seconds=settings.webhook_retry_base * 2 ** min(attempts - 1, 40))
    return min(delay, MAX_DELAY)


@dataclass
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def send(settings: Settings, url: str, headers: dict[str, str], body: str) -> Outcome:
    """One attempt: the URL checked again, the connection to the checked address."""
    started = time.monotonic()

    def done(status: int | None, error: str | None) -> Outcome:
        return Outcome(status, error, int((time.monotonic() - started) * 1000))

    try:
        target = targets.resolve(url, settings)
    except targets.RefusedTarget as refusal:
        return done(None, str(refusal)[:200])
    host = f"[{target.address}]" if ":" in target.address else target.address
    netloc = f"{host}:{target.port}"
    direct = target.url._replace(netloc=netloc).geturl()
    host_header = target.url.netloc.rpartition("@")[2]
    try:
        with httpx.Client(
            timeout=settings.webhook_timeout, follow_redirects=False, trust_env=False
        ) as client:
            request = client.build_request(
                "POST",
                direct,
                content=body.encode(),
                headers={**headers, "host": host_header, "content-type": "application/json"},
                extensions={"sni_hostname": target.host},
            )
            answer = client.send(request, stream=True)
            try:
                read = 0
                for chunk in answer.iter_raw():
                    read += len(chunk)
                    if read > MAX_ANSWER_BYTES:  # the rest is not read: only the status counts
                        break
                return done(answer.status_code, None)
            finally:
                answer.close()
    except httpx.TimeoutException:
        return done(None, "timed out")
    except httpx.HTTPError as error:
        return done(None, f"{type(error).__name__}: could not connect or send"[:200])


class Dispatcher:
    def __init__(self, mirror: Mirror, clock: Callable[[], datetime] = service.now) -> None:
        self.mirror = mirror
        self.settings = mirror.settings
        self.engine: Engine = mirror.engine
        self.clock = clock

    # -------------------------------------------------------------- 1. queue

    def queue(self) -> int:
        queued = 0
        E = WebhookEndpoint
        with self.engine.connect() as connection:
            view = chain_view(self.mirror, connection)
            endpoints = connection.execute(
                select(E).where(
                    E.deployment_id == self.mirror.deployment_id,
                    E.disabled_at.is_(None),
                    E.queued_block < view.finalized_block,
                )
            ).all()
        for endpoint in endpoints:
            try:
                queued += self._queue_for(endpoint, view)
            except IntegrityError:  # another dispatcher queued the same range: it won
                continue
        return queued

    def _queue_for(self, endpoint: Any, view: Any) -> int:
        Ev = im.Event
        names = [
            service.CHAIN_NAMES[kind] for kind in json.loads(endpoint.events) if kind in service.CHAIN_NAMES
        ]
        conditions = [
            Ev.deployment_id == self.mirror.deployment_id,
            Ev.block_number > endpoint.queued_block,
            Ev.block_number <= view.finalized_block,
            Ev.name.in_(names),
        ]
        if endpoint.campaign_id is not None:
            conditions.append(Ev.campaign_id == endpoint.campaign_id)
        elif endpoint.charity_id is not None:
            conditions.append(Ev.charity_id == endpoint.charity_id)
        with self.engine.begin() as connection:
            moved = connection.execute(
                update(WebhookEndpoint)
                .where(
                    WebhookEndpoint.id == endpoint.id, WebhookEndpoint.queued_block == endpoint.queued_block
                )
                .values(queued_block=view.finalized_block)
            ).rowcount
            if moved != 1:
                return 0
            events = connection.execute(
                select(Ev).where(*conditions).order_by(Ev.block_number, Ev.log_index)
            ).all()
            charities = self._readable_charities(endpoint)
            blocks = {
                number: timestamp
                for number, timestamp in connection.execute(
                    select(im.Block.number, im.Block.timestamp).where(
                        im.Block.deployment_id == self.mirror.deployment_id,
                        im.Block.number.in_(sorted({event.block_number for event in events})),
                    )
                )
            }
            now = self.clock()
            rows = []
            for event in events:
                if charities is not None and event.charity_id not in charities:
                    continue
                rows.append(
                    {
                        "endpoint_id": endpoint.id,
                        "event_id": service.event_id(event.tx_hash, event.log_index),
                        "type": service.EVENT_TYPES[event.name],
                        "block_number": event.block_number,
                        "tx_hash": event.tx_hash,
                        "log_index": event.log_index,
                        "payload": service.payload(
                            service.EVENT_TYPES[event.name],
                            event,
                            blocks.get(event.block_number),
                            view.chain_id,
                            view.contract,
                            json.loads(event.args),
                        ),
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "retracted": False,
                        "created_at": now,
                    }
                )
            if rows:
                connection.execute(insert(WebhookDelivery), rows)
        return len(rows)

    def _readable_charities(self, endpoint: Any) -> set[str] | None:
        """For an endpoint without a charity scope, the charities its key may still read
        (an auditor key limited to some); None: every charity (or its scope's); empty: none,
        for a key revoked or expired since."""
        with self.engine.connect() as connection:
            key = connection.execute(
                select(ApiKey.charities, ApiKey.revoked_at, ApiKey.expires_at).where(
                    ApiKey.id == endpoint.key_id
                )
            ).one_or_none()
        if key is None:
            return None  # the admin key from the environment
        if key.revoked_at is not None or (
            key.expires_at is not None and _aware(key.expires_at) <= self.clock()
        ):
            return set()  # a revoked or expired key's endpoints are told nothing more
        if endpoint.charity_id is not None:
            return None  # checked against the key at registration
        return set(key.charities) if key.charities is not None else None

    # -------------------------------------------------------------- 2. retract

    def retract(self) -> int:
        D, Ev = WebhookDelivery, im.Event
        retracted = 0
        with self.engine.begin() as connection:
            view = chain_view(self.mirror, connection)
            candidates = connection.execute(
                select(
                    D.id,
                    D.endpoint_id,
                    D.event_id,
                    D.block_number,
                    D.tx_hash,
                    D.log_index,
                    D.payload,
                    D.status,
                )
                .join(WebhookEndpoint, WebhookEndpoint.id == D.endpoint_id)
                .where(
                    WebhookEndpoint.deployment_id == self.mirror.deployment_id,
                    D.type != service.RETRACTED,
                    D.retracted.is_(False),
                    D.status.in_(("pending", "delivered")),
                    D.block_number > view.finalized_block - RETRACT_WINDOW,
                )
            ).all()
            if not candidates:
                return 0
            present = {
                (row.tx_hash, row.log_index)
                for row in connection.execute(
                    select(Ev.tx_hash, Ev.log_index).where(
                        Ev.deployment_id == self.mirror.deployment_id,
                        Ev.block_number.in_(sorted({c.block_number for c in candidates})),
                    )
                )
            }
            now = self.clock()
            for gone in [c for c in candidates if (c.tx_hash, c.log_index) not in present]:
                changed = connection.execute(
                    update(D).where(D.id == gone.id, D.retracted.is_(False)).values(retracted=True)
                ).rowcount
                if changed != 1:
                    continue
                connection.execute(
                    update(WebhookEndpoint)
                    .where(
                        WebhookEndpoint.id == gone.endpoint_id,
                        WebhookEndpoint.queued_block >= gone.block_number,
                    )
                    .values(queued_block=gone.block_number - 1)
                )
                if gone.status == "pending":  # never sent: nothing to take back
                    connection.execute(update(D).where(D.id == gone.id).values(status="cancelled"))
                    continue
                original = json.loads(gone.payload)
                body = {
                    "type": service.RETRACTED,
                    "timestamp": now.isoformat(),
                    "data": {"retracted_type": original["type"], **original["data"]},
                }
                connection.execute(
                    insert(WebhookDelivery).values(
                        endpoint_id=gone.endpoint_id,
                        event_id=f"{gone.event_id}:retracted",
                        type=service.RETRACTED,
                        block_number=gone.block_number,
                        tx_hash=gone.tx_hash,
                        log_index=gone.log_index,
                        payload=json.dumps(body, separators=(",", ":"), sort_keys=True),
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        retracted=True,
                        created_at=now,
                    )
                )
                retracted += 1
                log.error(
                    "webhooks: %s was delivered and is no longer on the chain: retracting", gone.event_id
                )
        return retracted

    # -------------------------------------------------------------- 3. send

    def _claim(self) -> list[Any]:
        D = WebhookDelivery
        now = self.clock()
        claimed = []
        with self.engine.connect() as connection:
            due = connection.execute(
                select(D.id)
                .join(WebhookEndpoint, WebhookEndpoint.id == D.endpoint_id)
                .where(
                    WebhookEndpoint.deployment_id == self.mirror.deployment_id,
                    WebhookEndpoint.disabled_at.is_(None),
                    D.status == "pending",
                    D.next_attempt_at <= now,
                    or_(D.lease_until.is_(None), D.lease_until < now),
                )
                .order_by(D.next_attempt_at, D.id)
                .limit(BATCH)
            ).all()
        for (delivery_id,) in due:
            with self.engine.begin() as connection:
                won = connection.execute(
                    update(D)
                    .where(
                        D.id == delivery_id,
                        D.status == "pending",
                        or_(D.lease_until.is_(None), D.lease_until < now),
                    )
                    .values(lease_until=now + LEASE)
                ).rowcount
                if won == 1:
                    claimed.append(
                        connection.execute(
                            select(
                                *WebhookDelivery.__table__.c,
                                WebhookEndpoint.url,
                                WebhookEndpoint.secret_sealed,
                            )
                            .join(WebhookEndpoint, WebhookEndpoint.id == D.endpoint_id)
                            .where(D.id == delivery_id)
                        ).one()
                    )
        return claimed

    def deliver_due(self) -> int:
        sent = 0
        for row in self._claim():
            delivery = row
            secret = service.open_secret(self.settings, delivery.endpoint_id, row.secret_sealed)
            moment = self.clock()
            signature = Webhook(secret).sign(delivery.event_id, moment, delivery.payload)
            headers = {
                "webhook-id": delivery.event_id,
                "webhook-timestamp": str(int(moment.timestamp())),
                "webhook-signature": signature,
                "user-agent": "charity-ledger-webhooks/1",
            }
            outcome = send(self.settings, row.url, headers, delivery.payload)
            self._record(delivery, outcome, moment)
            sent += outcome.ok
        return sent

    def _record(self, delivery: Any, outcome: Outcome, moment: datetime) -> None:
        D, E = WebhookDelivery, WebhookEndpoint
        attempts = delivery.attempts + 1
        with self.engine.begin() as connection:
            connection.execute(
                insert(WebhookAttempt).values(
                    delivery_id=delivery.id,
                    at=moment,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                )
            )
            if outcome.ok:
                values: dict[str, Any] = {
                    "status": "delivered",
                    "delivered_at": moment,
                    "next_attempt_at": None,
                }
            elif attempts >= self.settings.webhook_max_attempts:
                values = {"status": "failed", "next_attempt_at": None}
            else:
                values = {"next_attempt_at": moment + backoff(self.settings, attempts)}
            connection.execute(
                update(D).where(D.id == delivery.id).values(attempts=attempts, lease_until=None, **values)
            )
            if outcome.ok:
                connection.execute(
                    update(E).where(E.id == delivery.endpoint_id).values(consecutive_failures=0)
                )
            elif values.get("status") == "failed":
                connection.execute(
                    update(E)
                    .where(E.id == delivery.endpoint_id)
                    .values(consecutive_failures=E.consecutive_failures + 1)
                )
                connection.execute(
                    update(E)
                    .where(
                        and_(E.id == delivery.endpoint_id, E.disabled_at.is_(None)),
                        E.consecutive_failures >= DISABLE_AFTER,
                    )
                    .values(disabled_at=moment, disabled_reason=f"{DISABLE_AFTER} deliveries in a row failed")
                )

    def run_once(self) -> dict[str, int]:
        if self.mirror.deployment_id is None:
            return {"queued": 0, "retracted": 0, "delivered": 0}
        retracted = self.retract()
        queued = self.queue()
        delivered = self.deliver_due()
        return {"queued": queued, "retracted": retracted, "delivered": delivered}


class DispatcherWorker:
    """Runs the dispatcher in a daemon thread every `webhook_poll_seconds`."""

    def __init__(self, mirror: Mirror) -> None:
        self.dispatcher = Dispatcher(mirror)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.dispatcher.run_once()
            except Exception:  # the next round tries again; the log says why
                log.exception("webhooks: dispatcher round failed")
            self.stop_event.wait(self.dispatcher.settings.webhook_poll_seconds)
