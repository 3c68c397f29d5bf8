"""What the console lists for one charity, beyond the public reads: its disbursements
that have no evidence yet, and its transactions still pending or failed. Every statement
is scoped to the charity first; another charity's rows are simply not there."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ledger_api.core import ids
from ledger_api.core.models import ChainTransaction
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror

LISTED = 100  # rows of each list on the dashboard (the oldest first: they need doing)


@dataclass(frozen=True)
class Unevidenced:
    id: str
    campaign_id: str
    amount: int
    currency: str
    recipient: str
    purpose: str


@dataclass(frozen=True)
class OpenTransaction:
    id: str
    function: str
    status: str  # queued (signed or sent, not mined yet) or failed
    records: list[str]
    error: str | None
    created_at: datetime | None


def without_evidence(mirror: Mirror, charity_hex: str) -> list[Unevidenced]:
    B, C = im.Disbursement, im.Campaign
    with mirror.engine.connect() as connection:
        rows = connection.execute(
            select(B.disbursement_id, B.campaign_id, B.amount, B.recipient, B.purpose, C.currency)
            .join(C, (C.deployment_id == B.deployment_id) & (C.campaign_id == B.campaign_id))
            .where(
                B.deployment_id == mirror.deployment_id, C.charity_id == charity_hex, B.evidence_count == 0
            )
            .order_by(B.block_number, B.log_index)
            .limit(LISTED)
        ).all()
    return [
        Unevidenced(
            ids.from_bytes32(r.disbursement_id),
            ids.from_bytes32(r.campaign_id),
            int(r.amount),
            r.currency,
            r.recipient,
            r.purpose,
        )
        for r in rows
    ]


def open_transactions(mirror: Mirror, charity_hex: str) -> list[OpenTransaction]:
    T = ChainTransaction
    with mirror.engine.connect() as connection:
        rows = connection.execute(
            select(T.id, T.function, T.status, T.records, T.error, T.created_at)
            .where(
                T.chain_id == mirror.deployment.chain_id,
                T.charity_id == charity_hex,
                T.status.in_(("signed", "sent", "failed")),
            )
            .order_by(T.created_at)
            .limit(LISTED)
        ).all()
    found = []
    for r in rows:
        records = json.loads(r.records or "{}").get("ids", [])
        error = json.loads(r.error).get("name") if r.error and r.error.startswith("{") else r.error
        found.append(
            OpenTransaction(
                r.id,
                r.function,
                "failed" if r.status == "failed" else "queued",
                [str(x) for x in records][:5],
                str(error)[:200] if error else None,
                r.created_at,
            )
        )
    return found
