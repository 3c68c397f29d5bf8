"""Webhook endpoints: registered, listed, disabled; their secrets sealed at rest; the event
types and the payload of each final record.

The secret (`whsec_` + 32 random bytes, Standard Webhooks) is shown once, in the answer
that registers the endpoint. The service must sign with it, so it cannot keep only a
hash: it keeps it sealed with AES-GCM under a key derived from LEDGER_SECRET_KEY
(`Settings.signing_key("webhook secrets")`, as statement imports seal their rows), bound
to the endpoint's id, and opens it only to sign. It is never logged.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, func, insert, select, update

from ledger_api.core import ids
from ledger_api.core.config import Settings
from ledger_api.core.errors import Conflict, NotFound
from ledger_api.core.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from ledger_api.core.security import Principal, aware
from ledger_api.mirror.gateway import Mirror
from ledger_api.mirror.proofs import chain_view

# Chain event -> webhook event type. Allocations, grants addressed and approval rules are
# parts of the records listed here (a disbursement carries its allocations in its
# transaction); record.retracted is sent to every endpoint that was told of a record
# a reorg deeper than the confirmation window removed.
EVENT_TYPES: dict[str, str] = {
    "CampaignCreated": "campaign.created",
    "CampaignClosed": "campaign.closed",
    "DonationRecorded": "donation.recorded",
    "DonationRefunded": "donation.refunded",
    "DisbursementRecorded": "disbursement.recorded",
    "EvidenceAnchored": "evidence.anchored",
    "RedactedCopyLinked": "evidence.copy_linked",
    "EvidenceWithdrawn": "evidence.withdrawn",
    "CorrectionRecorded": "correction.recorded",
    "GrantReceived": "grant.received",
    "ReceiptConfirmed": "receipt.confirmed",
    "DisbursementProposed": "proposal.created",
    "DisbursementApproved": "proposal.approved",
    "DisbursementRejected": "proposal.rejected",
    "ProposalExecuted": "proposal.executed",
    # Disclosure records (contract 2.3.0): what a regulator's integration watches for.
    "CampaignEndSet": "campaign.end_set",
    "ReportPublished": "report.published",
    "RemainingFundsDisposed": "disposal.recorded",
}
RETRACTED = "record.retracted"
KNOWN_TYPES = (*EVENT_TYPES.values(), RETRACTED)
CHAIN_NAMES = {kind: name for name, kind in EVENT_TYPES.items()}

MAX_ENDPOINTS_PER_KEY = 10
_AAD = b"webhook secret "


def _key(settings: Settings) -> bytes:
    return settings.signing_key("webhook secrets")


def seal_secret(settings: Settings, endpoint_id: str, secret: str) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(_key(settings)).encrypt(nonce, secret.encode(), _AAD + endpoint_id.encode())


def open_secret(settings: Settings, endpoint_id: str, sealed: bytes) -> str:
    return AESGCM(_key(settings)).decrypt(sealed[:12], sealed[12:], _AAD + endpoint_id.encode()).decode()


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Registered:
    endpoint: dict[str, Any]
    secret: str


def describe(row: Any) -> dict[str, Any]:
    """An endpoint as its owner sees it (never its secret)."""
    return {
        "id": row.id,
        "url": row.url,
        "events": json.loads(row.events),
        "scope": {
            "charity_id": ids.from_bytes32(row.charity_id) if row.charity_id else None,
            "campaign_id": ids.from_bytes32(row.campaign_id) if row.campaign_id else None,
        },
        "created_at": aware(row.created_at).isoformat(timespec="seconds"),
        "disabled_at": aware(row.disabled_at).isoformat(timespec="seconds") if row.disabled_at else None,
        "disabled_reason": row.disabled_reason,
        "consecutive_failures": row.consecutive_failures,
    }


def register(
    mirror: Mirror,
    principal: Principal,
    url: str,
    events: list[str],
    charity_hex: str | None,
    campaign_hex: str | None,
) -> Registered:
    """Store an endpoint (its URL and scope already checked); events from the next final
    block on are queued for it. At most MAX_ENDPOINTS_PER_KEY live endpoints per key (409)."""
    endpoint_id = "wh_" + secrets.token_hex(12)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    E = WebhookEndpoint
    with mirror.engine.begin() as connection:
        live = connection.execute(
            select(func.count()).where(E.key_id == principal.key_id, E.disabled_at.is_(None))
        ).scalar_one()
        if live >= MAX_ENDPOINTS_PER_KEY:
            raise Conflict(f"this key already has {MAX_ENDPOINTS_PER_KEY} webhooks; delete one first")
        view = chain_view(mirror, connection)
        connection.execute(
            insert(E).values(
                id=endpoint_id,
                deployment_id=mirror.deployment_id,
                key_id=principal.key_id,
                url=url,
                events=json.dumps(sorted(set(events))),
                charity_id=charity_hex,
                campaign_id=campaign_hex,
                secret_sealed=seal_secret(mirror.settings, endpoint_id, secret),
                created_at=now(),
                consecutive_failures=0,
                queued_block=view.finalized_block,
            )
        )
        row = connection.execute(select(E).where(E.id == endpoint_id)).one()
    return Registered(describe(row), secret)


def _owned(connection: Connection, principal: Principal, endpoint_id: str) -> Any:
    """The caller's endpoint; another key's is "not found"."""
    row = connection.execute(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.key_id == principal.key_id
        )
    ).one_or_none()
    if row is None:
        raise NotFound("webhook not found")
    return row


def listing(mirror: Mirror, principal: Principal) -> list[dict[str, Any]]:
    with mirror.engine.connect() as connection:
        rows = connection.execute(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.key_id == principal.key_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        ).all()
    return [describe(row) for row in rows]


def get(mirror: Mirror, principal: Principal, endpoint_id: str) -> dict[str, Any]:
    with mirror.engine.connect() as connection:
        return describe(_owned(connection, principal, endpoint_id))


def delete(mirror: Mirror, principal: Principal, endpoint_id: str) -> None:
    """Disable the endpoint: nothing more is queued or sent; its log stays readable."""
    with mirror.engine.begin() as connection:
        row = _owned(connection, principal, endpoint_id)
        if row.disabled_at is None:
            connection.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.disabled_at.is_(None))
                .values(disabled_at=now(), disabled_reason="deleted by its owner")
            )
        connection.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
            .values(status="cancelled", next_attempt_at=None)
        )


def deliveries(mirror: Mirror, principal: Principal, endpoint_id: str, limit: int) -> list[dict[str, Any]]:
    """The endpoint's delivery log, newest first, each with every attempt."""
    D, A = WebhookDelivery, WebhookAttempt
    with mirror.engine.connect() as connection:
        _owned(connection, principal, endpoint_id)
        rows = connection.execute(
            select(D).where(D.endpoint_id == endpoint_id).order_by(D.id.desc()).limit(limit)
        ).all()
        attempts: dict[int, list[dict[str, Any]]] = {row.id: [] for row in rows}
        if rows:
            for attempt in connection.execute(
                select(A).where(A.delivery_id.in_(list(attempts))).order_by(A.id)
            ):
                attempts[attempt.delivery_id].append(
                    {
                        "at": aware(attempt.at).isoformat(timespec="seconds"),
                        "status_code": attempt.status_code,
                        "error": attempt.error,
                        "duration_ms": attempt.duration_ms,
                    }
                )
    return [
        {
            "event_id": row.event_id,
            "type": row.type,
            "status": row.status,
            "attempts": row.attempts,
            "next_attempt_at": aware(row.next_attempt_at).isoformat(timespec="seconds")
            if row.next_attempt_at and row.status == "pending"
            else None,
            "delivered_at": aware(row.delivered_at).isoformat(timespec="seconds")
            if row.delivered_at
            else None,
            "log": attempts[row.id],
        }
        for row in rows
    ]


# ------------------------------------------------------------------ payloads


def _readable(args: dict[str, Any]) -> dict[str, Any]:
    """An event's arguments with record IDs as printed on receipts (DN-..., CP-...)."""
    data: dict[str, Any] = {}
    for name, value in args.items():
        if name.endswith("Id") and isinstance(value, str) and value.startswith("0x") and len(value) == 66:
            data[name] = ids.from_bytes32(value)
        elif name == "channel" and isinstance(value, str) and value.startswith("0x"):
            data[name] = bytes.fromhex(value[2:]).rstrip(b"\0").decode("ascii", "replace")
        else:
            data[name] = value
    return data


def payload(
    kind: str, event: Any, block_time: int | None, chain_id: int, contract: str, args: dict[str, Any]
) -> str:
    """The JSON body of a webhook: {type, timestamp, data}. `data` is the event as it is on
    chain (public: a donor is only a commitment, a private recipient only its hash) with
    its chain coordinates, so the receiver can check it against any node."""
    body = {
        "type": kind,
        "timestamp": datetime.fromtimestamp(block_time, UTC).isoformat() if block_time is not None else None,
        "data": {
            "event": event.name,
            "record": _readable(args),
            "charity_id": ids.from_bytes32(event.charity_id) if event.charity_id else None,
            "campaign_id": ids.from_bytes32(event.campaign_id) if event.campaign_id else None,
            "chain": {
                "chain_id": chain_id,
                "contract": contract,
                "block_number": event.block_number,
                "block_hash": event.block_hash,
                "tx_hash": event.tx_hash,
                "log_index": event.log_index,
            },
        },
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def event_id(tx_hash: str, log_index: int) -> str:
    return f"{tx_hash}:{log_index}"


def known_event_names() -> list[str]:
    return list(CHAIN_NAMES.values())
