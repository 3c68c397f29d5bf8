"""Charities as the public sees them: name, registration, operators, and the totals of
their campaigns (per currency: amounts in different currencies are never added)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select, tuple_

from ledger_api.charities.schemas import (
    Charity,
    CharityCampaign,
    CharitySummary,
    CurrencyTotals,
    OperatorChangeView,
)
from ledger_api.core import ids
from ledger_api.core.answers import Proof
from ledger_api.core.errors import NotFound
from ledger_api.core.pages import Page, decode_cursor, page
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror
from ledger_api.mirror.proofs import block_info, chain_view, proof

CH, C, OP, E = im.Charity, im.Campaign, im.Operator, im.Event


def _change(row: Any, registrar: str, reference: Proof) -> OperatorChangeView:
    args = json.loads(row.args)
    added = row.name == "OperatorAdded"
    by = args["addedBy"] if added else args["removedBy"]
    return OperatorChangeView(
        change="added" if added else "removed",
        account=args["account"],
        by=by,
        by_role="registrar" if by.lower() == registrar.lower() else "operator",
        held_by_charity=bool(args["heldByCharity"]) if added else None,
        proof=reference,
    )


def _totals(
    connection: Any, mirror: Mirror, charity_hexes: list[str]
) -> dict[str, dict[str, CurrencyTotals]]:
    rows = connection.execute(
        select(
            C.charity_id,
            C.currency,
            func.count(),
            func.sum(C.received),
            func.sum(C.refunded),
            func.sum(C.disbursed),
            func.sum(C.donation_count),
        )
        .where(C.deployment_id == mirror.deployment_id, C.charity_id.in_(charity_hexes))
        .group_by(C.charity_id, C.currency)
    )
    out: dict[str, dict[str, CurrencyTotals]] = defaultdict(dict)
    for charity, currency, campaigns, received, refunded, disbursed, donations in rows:
        received, refunded, disbursed = int(received), int(refunded), int(disbursed)
        out[charity][currency] = CurrencyTotals(
            campaigns=int(campaigns),
            received=received,
            refunded=refunded,
            disbursed=disbursed,
            available=received - refunded - disbursed,
            donation_count=int(donations),
        )
    return out


def _view(row: Any, totals: dict[str, CurrencyTotals], reference: Proof) -> CharitySummary:
    return CharitySummary(
        id=ids.from_bytes32(row.charity_id), name=row.name, totals_by_currency=totals, proof=reference
    )


def list_charities(mirror: Mirror, limit: int, cursor: str | None) -> Page[CharitySummary]:
    statement = select(CH).where(CH.deployment_id == mirror.deployment_id)
    after = decode_cursor(mirror.settings.signing_key("cursor"), cursor)
    if after is not None:
        statement = statement.where(tuple_(CH.block_number, CH.log_index) > tuple_(*after))
    statement = statement.order_by(CH.block_number, CH.log_index).limit(limit + 1)
    with mirror.engine.connect() as connection:
        rows = connection.execute(statement).all()
        totals = _totals(connection, mirror, [r.charity_id for r in rows[:limit]])
        view = chain_view(mirror, connection)
        blocks = block_info(mirror, connection, {r.block_number for r in rows[:limit]})
    items = [_view(r, totals.get(r.charity_id, {}), proof(view, blocks, r)) for r in rows[:limit]]
    return page(mirror.settings.signing_key("cursor"), items, rows, limit)


def get_charity(mirror: Mirror, charity_id: str) -> Charity:
    charity_hex = ids.to_hex(charity_id, "charity")
    with mirror.engine.connect() as connection:
        row = connection.execute(
            select(CH).where(CH.deployment_id == mirror.deployment_id, CH.charity_id == charity_hex)
        ).one_or_none()
        if row is None:
            raise NotFound("charity not found (or not mirrored yet)")
        totals = _totals(connection, mirror, [charity_hex])
        operators = connection.execute(
            select(OP.account).where(
                OP.deployment_id == mirror.deployment_id, OP.charity_id == charity_hex, OP.active
            )
        ).scalars()
        changes = connection.execute(
            select(E.name, E.args, E.block_number, E.tx_hash, E.log_index)
            .where(
                E.deployment_id == mirror.deployment_id,
                E.charity_id == charity_hex,
                E.name.in_(["OperatorAdded", "OperatorRemoved"]),
            )
            .order_by(E.block_number, E.log_index)
            .limit(1000)
        ).all()
        campaigns = connection.execute(
            select(C.campaign_id, C.name, C.currency, C.closed_block)
            .where(C.deployment_id == mirror.deployment_id, C.charity_id == charity_hex)
            .order_by(C.block_number, C.log_index)
            .limit(200)
        ).all()
        view = chain_view(mirror, connection)
        blocks = block_info(mirror, connection, {row.block_number, *(c.block_number for c in changes)})
        operator_list = sorted(operators)
    return Charity(
        **dict(_view(row, totals.get(charity_hex, {}), proof(view, blocks, row))),
        # Operator accounts are public on chain: they sign the charity's records.
        operators=operator_list,
        custody="self" if row.self_custody else "platform",
        operator_changes=[_change(c, row.registrar, proof(view, blocks, c)) for c in changes],
        campaigns=[
            CharityCampaign(
                id=ids.from_bytes32(c.campaign_id),
                name=c.name,
                currency=c.currency,
                closed=c.closed_block is not None,
                href=f"/v1/campaigns/{ids.from_bytes32(c.campaign_id)}",
            )
            for c in campaigns
        ],
    )
