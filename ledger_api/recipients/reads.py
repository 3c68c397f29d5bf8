"""Recipient organisations as anyone reads them, from the mirror."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Select, func, select, tuple_

from ledger_api.core import ids
from ledger_api.core.answers import Proof
from ledger_api.core.errors import NotFound
from ledger_api.core.pages import Page, decode_cursor, page
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror
from ledger_api.mirror.proofs import ChainView, block_info, chain_view, proof
from ledger_api.mirror.receipts import ReceiptStatus, receipts_of
from ledger_api.recipients.schemas import ConfirmationView, ReceiptView, Recipient, RecipientNamed

R, NR, RC = im.Recipient, im.DisbursementRecipient, im.ReceiptConfirmation


def _statement(mirror: Mirror) -> Select[Any]:
    """Recipients with how many disbursements name them and how many confirmations they made."""
    named = (
        select(func.count())
        .where(NR.deployment_id == R.deployment_id, NR.recipient_id == R.recipient_id)
        .scalar_subquery()
    )
    confirmed = (
        select(func.count())
        .where(RC.deployment_id == R.deployment_id, RC.recipient_id == R.recipient_id)
        .scalar_subquery()
    )
    return select(R, named.label("disbursements"), confirmed.label("confirmations")).where(
        R.deployment_id == mirror.deployment_id
    )


def list_recipients(mirror: Mirror, limit: int, cursor: str | None) -> Page[Recipient]:
    """In the order they were registered (public)."""
    statement = _statement(mirror)
    after = decode_cursor(mirror.settings.signing_key("cursor"), cursor)
    if after is not None:
        statement = statement.where(tuple_(R.block_number, R.log_index) > tuple_(*after))
    statement = statement.order_by(R.block_number, R.log_index).limit(limit + 1)
    with mirror.engine.connect() as connection:
        rows = connection.execute(statement).all()
        view = chain_view(mirror, connection)
        blocks = block_info(mirror, connection, {r.block_number for r in rows[:limit]})
    items = [_view(r, proof(view, blocks, r)) for r in rows[:limit]]
    return page(mirror.settings.signing_key("cursor"), items, rows, limit)


def get_recipient(mirror: Mirror, recipient_id: str) -> Recipient:
    recipient_hex = ids.to_hex(recipient_id, "recipient")
    with mirror.engine.connect() as connection:
        row = connection.execute(_statement(mirror).where(R.recipient_id == recipient_hex)).one_or_none()
        if row is None:
            raise NotFound("recipient not found (or not mirrored yet)")
        view = chain_view(mirror, connection)
        blocks = block_info(mirror, connection, {row.block_number})
    return _view(row, proof(view, blocks, row))


def _view(row: Any, row_proof: Proof) -> Recipient:
    return Recipient(
        id=ids.from_bytes32(row.recipient_id),
        identifier=row.identifier,
        name=row.name,
        account=row.account,
        registrar=row.registrar,
        disbursements=row.disbursements,
        confirmations=row.confirmations,
        proof=row_proof,
    )


def receipt_views(
    mirror: Mirror, connection: Connection, disbursements: Iterable[str], view: ChainView | None = None
) -> dict[str, ReceiptView]:
    """The receipt status of each disbursement (0x hex) that names a registered recipient
    organisation, as answers carry it; the others are absent. `view`: the mirror's
    position if the caller has read it already."""
    statuses = receipts_of(connection, mirror.deployment_id or 0, disbursements)
    numbers = {c.block_number for s in statuses.values() for c in s.confirmations}
    view = view or chain_view(mirror, connection)
    blocks = block_info(mirror, connection, numbers)
    return {key: receipt_view(status, view, blocks) for key, status in statuses.items()}


def receipt_view(status: ReceiptStatus, view: ChainView, blocks: dict[int, tuple[str, int]]) -> ReceiptView:
    confirmations = []
    for c in status.confirmations:
        row_proof = proof(view, blocks, c)
        confirmations.append(
            ConfirmationView(
                id=ids.from_bytes32(c.confirmation_id),
                amount=c.amount,
                statement=c.statement,
                evidence_sha256=c.evidence_hash[2:] if c.evidence_hash else None,
                account=c.account,
                confirmed_at=row_proof.recorded_at,
                proof=row_proof,
            )
        )
    return ReceiptView(
        recipient=RecipientNamed(
            id=ids.from_bytes32(status.recipient_id), identifier=status.identifier, name=status.name
        ),
        state=status.state,
        amount=status.amount,
        confirmed=status.confirmed,
        confirmations=confirmations,
    )
