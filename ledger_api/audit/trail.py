"""The audit trail: every ledger event of a charity, a campaign or the whole deployment,
in chain order, each with its chain reference and the account that sent it.

Events are shown as the contract emitted them, with record IDs made readable and field
names in snake case; nothing is merged or summarised, so a regulator can replay the
trail and arrive at every total the service shows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Select, and_, select, tuple_

from ledger_api.audit.schemas import TrailEntry
from ledger_api.audit.scope import Scope
from ledger_api.chain.abi import EVENT_NAMES
from ledger_api.core import ids
from ledger_api.core.errors import InvalidRequest
from ledger_api.core.hexes import text_of
from ledger_api.core.pages import Page, decode_cursor, page, timestamp
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror
from ledger_api.mirror.proofs import ChainView, iso


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# Every event of the contract (chain.abi.EVENT_NAMES): the ledger's own, and the
# access-control and pause events of the deployment itself (those belong to no charity:
# they show in unscoped trails).
KINDS = {snake(name): name for name in EVENT_NAMES}  # donation_recorded -> DonationRecorded
RECORD_IDS = {
    "charityId": "charity",
    "campaignId": "campaign",
    "donationId": "donation",
    "refundId": "refund",
    "disbursementId": "disbursement",
    "correctionId": "correction",
    "originalId": None,
    "replacementId": None,
    "reportId": "report",
    "disposalId": "disposal",
    "targetCampaignId": "campaign",
}


def event_names(kinds: list[str] | None) -> list[str] | None:
    if not kinds:
        return None
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InvalidRequest(f"unknown kind {unknown[0]!r}; one of: {', '.join(KINDS)}")
    return [KINDS[k] for k in kinds]


def data_of(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """An event's fields for people: record IDs readable, text decoded, snake case."""
    data: dict[str, Any] = {}
    for key, value in args.items():
        if key in RECORD_IDS and isinstance(value, str):
            value = None if int(value, 16) == 0 else ids.from_bytes32(value)
        elif key == "currency":
            value = text_of(value, strip_padding=False)
        elif key == "channel":
            value = text_of(value)
        elif key == "originalKind":
            value = ids.RECORD_KINDS[value] if 0 <= value < len(ids.RECORD_KINDS) else value
        data[snake(key)] = value
    return data


def scoped(statement: Any, scope: Scope) -> Select[Any]:
    E = im.Event
    if scope.campaign_id is not None:
        return statement.where(E.campaign_id == scope.campaign_id)
    if scope.charity_id is not None:
        return statement.where(E.charity_id == scope.charity_id)
    return statement


def statement(
    mirror: Mirror,
    scope: Scope,
    names: list[str] | None = None,
    from_block: int | None = None,
    to_block: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
) -> Select[Any]:
    E = im.Event
    query = scoped(
        select(
            E.block_number,
            E.log_index,
            E.block_hash,
            E.tx_hash,
            E.name,
            E.args,
            E.sender,
            E.charity_id,
            E.campaign_id,
            im.Block.timestamp,
            im.Operator.held_by_charity,
        )
        .outerjoin(
            im.Block, and_(im.Block.deployment_id == E.deployment_id, im.Block.number == E.block_number)
        )
        # Who signed: the sender among its charity's operators, and whether the charity
        # holds that key (OperatorAdded.heldByCharity); the registrar's events match none.
        .outerjoin(
            im.Operator,
            and_(
                im.Operator.deployment_id == E.deployment_id,
                im.Operator.charity_id == E.charity_id,
                im.Operator.account == E.sender,
            ),
        )
        .where(E.deployment_id == mirror.deployment_id),
        scope,
    )
    if names:
        query = query.where(E.name.in_(names))
    if from_block is not None:
        query = query.where(E.block_number >= from_block)
    if to_block is not None:
        query = query.where(E.block_number <= to_block)
    start, end = timestamp(since), timestamp(until)
    if start is not None:
        query = query.where(im.Block.timestamp >= start)
    if end is not None:
        query = query.where(im.Block.timestamp < end)
    after = decode_cursor(mirror.settings.signing_key("cursor"), cursor)
    if after is not None:
        query = query.where(tuple_(E.block_number, E.log_index) > tuple_(*after))
    return query.order_by(E.block_number, E.log_index)


def _signer(held_by_charity: bool | None) -> str | None:
    if held_by_charity is None:
        return None
    return "charity" if held_by_charity else "platform"


def entry(view: ChainView, row: Any) -> dict[str, Any]:
    return {
        "kind": snake(row.name),
        "event": row.name,
        "charity_id": ids.from_bytes32(row.charity_id) if row.charity_id else None,
        "campaign_id": ids.from_bytes32(row.campaign_id) if row.campaign_id else None,
        "data": data_of(row.name, orjson.loads(row.args)),
        "sender": row.sender,
        "signed_by": _signer(row.held_by_charity),
        "proof": {
            "chain_id": view.chain_id,
            "contract": view.contract,
            "tx_hash": row.tx_hash,
            "block_number": row.block_number,
            "block_hash": row.block_hash,
            "log_index": row.log_index,
            "recorded_at": iso(row.timestamp),
            "final": row.block_number <= view.finalized_block,
            "confirmations": max(0, view.indexed_block - row.block_number + 1),
        },
    }


def trail_page(
    mirror: Mirror, connection: Connection, view: ChainView, query: Select[Any], limit: int
) -> Page[TrailEntry]:
    rows = connection.execute(query.limit(limit + 1)).all()
    items = [TrailEntry.model_validate(entry(view, row)) for row in rows[:limit]]
    return page(mirror.settings.signing_key("cursor"), items, rows, limit)


def stream(connection: Connection, view: ChainView, query: Select[Any]) -> Iterator[dict[str, Any]]:
    """Every entry of the query, read from the database in slices (for exports)."""
    with connection.execute(query.execution_options(yield_per=2000)) as rows:  # closed if abandoned
        for row in rows:
            yield entry(view, row)
