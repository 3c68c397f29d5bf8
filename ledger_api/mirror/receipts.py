"""Whether the recipient organisation a disbursement names has confirmed receipt, from the
mirror: one place for the disbursement answers, the pages, the trace and the anomaly
report, so they all say the same thing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Connection, select

from ledger_api.mirror import tables as im

CHUNK = 900  # keys per IN (...) list, below SQLite's bound-parameter limits


@dataclass(frozen=True)
class Confirmation:
    confirmation_id: str  # 0x hex
    amount: int
    statement: str
    evidence_hash: str | None  # 0x hex, None when none was given
    account: str
    confirmed_at: int | None  # the block's Unix time
    block_number: int
    tx_hash: str
    log_index: int


@dataclass
class ReceiptStatus:
    """A disbursement's named recipient organisation and its confirmations, oldest first."""

    recipient_id: str  # 0x hex
    identifier: str
    name: str
    amount: int  # the disbursement's
    confirmations: list[Confirmation] = field(default_factory=list)

    @property
    def confirmed(self) -> int:
        return sum(c.amount for c in self.confirmations)

    @property
    def state(self) -> Literal["none", "partial", "full"]:
        """none: not confirmed yet; partial; full."""
        if not self.confirmations:
            return "none"
        return "full" if self.confirmed >= self.amount else "partial"


def receipts_of(
    connection: Connection, deployment_id: int, disbursements: Iterable[str]
) -> dict[str, ReceiptStatus]:
    """The receipt status of each disbursement (0x hex) that names a registered recipient;
    a disbursement naming none is absent."""
    keys = sorted(set(disbursements))
    NR, R, B, RC = im.DisbursementRecipient, im.Recipient, im.Disbursement, im.ReceiptConfirmation
    out: dict[str, ReceiptStatus] = {}
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        rows = connection.execute(
            select(NR.disbursement_id, R.recipient_id, R.identifier, R.name, B.amount)
            .join(R, (R.deployment_id == NR.deployment_id) & (R.recipient_id == NR.recipient_id))
            .join(B, (B.deployment_id == NR.deployment_id) & (B.disbursement_id == NR.disbursement_id))
            .where(NR.deployment_id == deployment_id, NR.disbursement_id.in_(chunk))
        ).all()
        for row in rows:
            out[row.disbursement_id] = ReceiptStatus(row.recipient_id, row.identifier, row.name, row.amount)
        named = sorted({row.disbursement_id for row in rows})
        if not named:  # no registered recipient: nobody to confirm (a round trip saved per read)
            continue
        found = connection.execute(
            select(RC)
            .where(RC.deployment_id == deployment_id, RC.disbursement_id.in_(named))
            .order_by(RC.block_number, RC.log_index)
        ).all()
        blocks = block_info_for(connection, deployment_id, {c.block_number for c in found})
        for c in found:
            status = out.get(c.disbursement_id)
            if status is None:
                continue
            evidence = None if int(c.evidence_hash, 16) == 0 else c.evidence_hash
            status.confirmations.append(
                Confirmation(
                    c.confirmation_id,
                    c.amount,
                    c.statement,
                    evidence,
                    c.account,
                    blocks.get(c.block_number),
                    c.block_number,
                    c.tx_hash,
                    c.log_index,
                )
            )
    return out


def block_info_for(connection: Connection, deployment_id: int, numbers: set[int]) -> dict[int, int]:
    """The Unix time of each block (the indexer keeps every block with events)."""
    if not numbers:
        return {}
    rows = connection.execute(
        select(im.Block.number, im.Block.timestamp).where(
            im.Block.deployment_id == deployment_id, im.Block.number.in_(sorted(numbers))
        )
    )
    return {number: timestamp for number, timestamp in rows}


__all__ = ["Confirmation", "ReceiptStatus", "receipts_of"]
