"""Chain references for records read from the mirror: everything anyone needs to check a
record against any node (chain id, contract, transaction, block number and hash, log
index), the block's time, and whether the record is final yet."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, select
from sqlalchemy.orm import aliased

from ledger_api.core.answers import Proof
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror


@dataclass(frozen=True)
class ChainView:
    """The mirror's position, read once per answer."""

    chain_id: int
    contract: str
    indexed_block: int
    finalized_block: int


def chain_view(mirror: Mirror, connection: Connection) -> ChainView:
    cursor = connection.execute(
        select(im.Cursor.block_number, im.Cursor.finalized_block).where(
            im.Cursor.deployment_id == mirror.deployment_id
        )
    ).one_or_none()
    return position(mirror, *(cursor or (None, None)))


def position(mirror: Mirror, indexed: int | None, finalized: int | None) -> ChainView:
    """The view from the cursor's columns read along with a record (None before the indexer
    has committed its first range), for queries that join the cursor instead of asking
    for it in a round trip of their own."""
    return ChainView(mirror.deployment.chain_id, mirror.deployment.address, indexed or 0, finalized or 0)


def block_join(deployment: Any, number: Any) -> tuple[Any, ColumnElement[bool]]:
    """An alias of the mirror's blocks and the condition joining it (outer) to a record's
    block, so a query reads the block's hash and time with the record; `blocks_of` then
    collects them into the map `proof` reads."""
    block = aliased(im.Block)
    return block, (block.deployment_id == deployment) & (block.number == number)


def origin_columns(record: Any, block: Any) -> tuple[Any, ...]:
    """A record's chain reference with its block's hash and time (`block` from
    `block_join`), the columns `proof` and `blocks_of` read."""
    return (
        record.block_number,
        record.tx_hash,
        record.log_index,
        block.hash.label("block_hash"),
        block.timestamp.label("block_time"),
    )


def blocks_of(
    rows: Any, number: str = "block_number", block_hash: str = "block_hash", timestamp: str = "block_time"
) -> dict[int, tuple[str, int]]:
    """(hash, timestamp) by block number from rows that joined their block (`block_join`);
    a block the mirror does not hold is left out, as `block_info` leaves it out."""
    out = {}
    for row in rows:
        found = getattr(row, block_hash)
        if found is not None:
            out[getattr(row, number)] = (found, getattr(row, timestamp))
    return out


def block_info(mirror: Mirror, connection: Connection, numbers: set[int]) -> dict[int, tuple[str, int]]:
    """(hash, timestamp) of the given blocks (the indexer keeps every block with events)."""
    if not numbers:
        return {}
    rows = connection.execute(
        select(im.Block.number, im.Block.hash, im.Block.timestamp).where(
            im.Block.deployment_id == mirror.deployment_id, im.Block.number.in_(sorted(numbers))
        )
    )
    return {number: (block_hash, timestamp) for number, block_hash, timestamp in rows}


def iso(timestamp: int | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp is not None else None


def proof(view: ChainView, blocks: dict[int, tuple[str, int]], row: Any) -> Proof:
    """The chain reference of a mirrored row (it has block_number, tx_hash, log_index)."""
    block_hash, timestamp = blocks.get(row.block_number, (None, None))
    return Proof(
        chain_id=view.chain_id,
        contract=view.contract,
        tx_hash=row.tx_hash,
        block_number=row.block_number,
        block_hash=block_hash,
        log_index=row.log_index,
        recorded_at=iso(timestamp),
        final=row.block_number <= view.finalized_block,
        confirmations=max(0, view.indexed_block - row.block_number + 1),
    )


def event_args(mirror: Mirror, positions: set[tuple[int, int]]) -> dict[tuple[int, int], dict[str, Any]]:
    """The mirror's copy of the events at these (block number, log index) positions: their
    decoded arguments (what the pages' "Verify it yourself" boxes expect for the fields
    they do not otherwise show, such as the operator)."""
    if not positions:
        return {}
    E = im.Event
    with mirror.engine.connect() as connection:
        rows = connection.execute(
            select(E.block_number, E.log_index, E.args).where(
                E.deployment_id == mirror.deployment_id,
                E.block_number.in_(sorted({block for block, _ in positions})),
            )
        ).all()
    return {
        (row.block_number, row.log_index): json.loads(row.args)
        for row in rows
        if (row.block_number, row.log_index) in positions
    }
