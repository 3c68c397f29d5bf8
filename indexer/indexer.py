"""The indexer: follows one ledger deployment's events over JSON-RPC into SQL.

One step reads the next block range with a single `eth_getLogs` for all ledger events,
checks it links to what is stored (parent hash of the range's first block equals the
cursor's hash; every log's block hash equals its block header's), and writes the
range's rows, block hashes and the new cursor in one transaction. On a mismatch it walks
back to the highest stored block still on the canonical chain, deletes everything above
it in one transaction (see projections.rollback_above) and goes on from there.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, select
from web3 import Web3

from indexer import models as m
from indexer.decoder import DecodedLog, LogDecoder
from indexer.projections import apply_logs, hex0x, insert_ignore, rollback_above
from ledger_api.chain.contract import load_artifact
from ledger_api.core.models import Deployment

log = logging.getLogger("indexer")

_LIMIT_HINT = re.compile(r"(?:max(?:imum)?|limit(?:ed)?(?: to)?|up to)\D{0,20}(\d+)", re.IGNORECASE)


@dataclass
class IndexerConfig:
    # Blocks behind the head before a record counts as final.
    confirmations: int = 12
    # First and largest block span of one eth_getLogs; the span doubles after each
    # answered query and halves (or drops to the node's stated limit) when refused.
    initial_range: int = 2_000
    max_range: int = 100_000
    # Seconds between polls once caught up with the head.
    poll_interval: float = 0.5
    # Block hashes kept below the finalized height (besides blocks holding events),
    # so a reorg deeper than the confirmation window still finds a common ancestor.
    reorg_window: int = 256


class ReorgDeeperThanConfirmations(RuntimeWarning):
    pass


class Indexer:
    def __init__(
        self, w3: Web3, engine: Engine, deployment_id: int, config: IndexerConfig | None = None
    ) -> None:
        self.w3 = w3
        self.engine = engine
        self.config = config or IndexerConfig()
        self.decoder = LogDecoder(load_artifact()["abi"])
        with engine.connect() as connection:
            row = connection.execute(
                select(Deployment.address, Deployment.deployment_block).where(Deployment.id == deployment_id)
            ).one()
        self.deployment_id = deployment_id
        self.address = Web3.to_checksum_address(row.address)
        self.start_block = row.deployment_block
        self.range = self.config.initial_range
        self.reorgs = 0

    # ---------------------------------------------------------------- state

    def cursor(self) -> tuple[int, str] | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(m.Cursor.block_number, m.Cursor.block_hash).where(
                    m.Cursor.deployment_id == self.deployment_id
                )
            ).one_or_none()
        return (row[0], row[1]) if row else None

    # ----------------------------------------------------------------- loop

    def run(self, stop: Any = None) -> None:
        """Index until `stop` (a threading.Event) is set."""
        while stop is None or not stop.is_set():
            try:
                caught_up = self.step()
            except Exception:
                log.exception("indexer step failed; retrying")
                time.sleep(min(5.0, self.config.poll_interval * 4))
                continue
            if caught_up:
                time.sleep(self.config.poll_interval)

    def sync(self) -> None:
        """Index up to the current head (for tests and one-shot runs)."""
        while not self.step():
            pass

    def step(self) -> bool:
        """Index one range; return True when caught up with the head."""
        head = self.w3.eth.block_number
        cursor = self.cursor()
        if cursor is not None and not self._canonical(*cursor):
            self._rewind(cursor[0], head)
            return False
        start = cursor[0] + 1 if cursor else self.start_block
        if start > head:
            return True
        end = min(head, start + self.range - 1)
        logs = self._get_logs(start, end)
        if logs is None:
            return False
        headers = self._headers({lg.block_number for lg in logs} | {start, end})
        if cursor is not None and headers[start]["parentHash"] != cursor[1]:
            return False  # the chain changed under us: the next step rewinds
        if any(hex0x(lg.block_hash) != headers[lg.block_number]["hash"] for lg in logs):
            return False  # logs and headers from different forks: read the range again
        self._write(logs, headers, end, head)
        return end >= head

    # ------------------------------------------------------------- reading

    def _get_logs(self, start: int, end: int) -> list[DecodedLog] | None:
        try:
            raw = self.w3.eth.get_logs(
                {"address": self.address, "fromBlock": start, "toBlock": end, "topics": [self.decoder.topics]}
            )
        except (ConnectionError, TimeoutError, OSError):
            raise
        except Exception as exc:  # the node refused the range: shrink it
            message = str(exc)
            hint = _LIMIT_HINT.search(message)
            span = end - start + 1
            limit = int(hint.group(1)) if hint else 0
            self.range = max(1, min(span // 2, limit) if 0 < limit < span else span // 2)
            log.info("eth_getLogs refused %d blocks (%s); trying %d", span, message[:120], self.range)
            if span == 1:
                raise
            return None
        self.range = min(self.config.max_range, self.range * 2)
        decoded = [self.decoder.decode(dict(entry)) for entry in raw]
        return [d for d in decoded if d is not None]

    def _headers(self, numbers: set[int]) -> dict[int, dict[str, Any]]:
        headers = {}
        for number in sorted(numbers):
            block = self.w3.eth.get_block(number)
            headers[number] = {
                "hash": hex0x(bytes(block["hash"])),
                "parentHash": hex0x(bytes(block["parentHash"])),
                "timestamp": int(block["timestamp"]),
            }
        return headers

    def _canonical(self, number: int, block_hash: str) -> bool:
        return hex0x(bytes(self.w3.eth.get_block(number)["hash"])) == block_hash

    # ------------------------------------------------------------- writing

    def _write(self, logs: list[DecodedLog], headers: dict[int, dict[str, Any]], end: int, head: int) -> None:
        finalized = max(0, head - self.config.confirmations)
        with self.engine.begin() as connection:
            apply_logs(connection, self.deployment_id, logs)
            insert_ignore(
                connection,
                m.table(m.Block),
                [
                    {
                        "deployment_id": self.deployment_id,
                        "number": n,
                        "hash": h["hash"],
                        "parent_hash": h["parentHash"],
                        "timestamp": h["timestamp"],
                    }
                    for n, h in headers.items()
                ],
            )
            blocks = m.table(m.Block)
            # Prune hashes of old blocks without events; they no longer help find an ancestor.
            event_blocks = select(m.Event.block_number).where(m.Event.deployment_id == self.deployment_id)
            connection.execute(
                delete(blocks).where(
                    blocks.c.deployment_id == self.deployment_id,
                    blocks.c.number < finalized - self.config.reorg_window,
                    blocks.c.number.not_in(event_blocks),
                )
            )
            values = {
                "block_number": end,
                "block_hash": headers[end]["hash"],
                "head_block": head,
                "finalized_block": finalized,
            }
            cursor = m.table(m.Cursor)
            updated = connection.execute(
                cursor.update().where(cursor.c.deployment_id == self.deployment_id).values(**values)
            )
            if updated.rowcount == 0:
                connection.execute(cursor.insert().values(deployment_id=self.deployment_id, **values))

    def _rewind(self, cursor_block: int, head: int) -> None:
        """Walk back to the highest stored block still canonical and delete what is above."""
        with self.engine.connect() as connection:
            stored = connection.execute(
                select(m.Block.number, m.Block.hash)
                .where(m.Block.deployment_id == self.deployment_id)
                .order_by(m.Block.number.desc())
            ).all()
        ancestor = self.start_block - 1
        for number, block_hash in stored:
            if number <= head and self._canonical(number, block_hash):
                ancestor = number
                break
        depth = cursor_block - ancestor
        finalized = max(0, head - self.config.confirmations)
        if ancestor < finalized:
            log.error(
                "REORG DEEPER THAN THE CONFIRMATION WINDOW: %d blocks back to %d (finalized height was %d);"
                " records marked final were wrong; re-indexing from %d",
                depth,
                ancestor,
                finalized,
                ancestor + 1,
            )
        else:
            log.warning("reorg: rolling back %d blocks to common ancestor %d", depth, ancestor)
        with self.engine.begin() as connection:
            removed = rollback_above(connection, self.deployment_id, ancestor)
            cursor = m.table(m.Cursor)
            if ancestor < self.start_block:
                connection.execute(cursor.delete().where(cursor.c.deployment_id == self.deployment_id))
            else:
                ancestor_hash = dict(stored)[ancestor]
                connection.execute(
                    cursor.update()
                    .where(cursor.c.deployment_id == self.deployment_id)
                    .values(block_number=ancestor, block_hash=ancestor_hash)
                )
        self.reorgs += 1
        log.warning("reorg: removed %d events above block %d", removed, ancestor)
