"""Campaigns as the public sees them: totals, donations (amounts and times only),
disbursements with their evidence coverage, and the flow from donations to
disbursements. Read from the mirror; every record carries its chain reference."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, select, tuple_

from ledger_api.campaigns.schemas import Campaign, EvidenceCoverage, Flows
from ledger_api.core import ids
from ledger_api.core.answers import Proof
from ledger_api.core.errors import NotFound
from ledger_api.core.pages import Page, RecordFilters, decode_cursor, page, timestamp
from ledger_api.disbursements.schemas import DisbursementSummary
from ledger_api.donations.schemas import DonationSummary
from ledger_api.donations.trace import channel_name
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror
from ledger_api.mirror.proofs import block_info, chain_view, proof

C, D, B, A = im.Campaign, im.Donation, im.Disbursement, im.Allocation


def _filtered(statement: Select[Any], model: Any, mirror: Mirror, filters: RecordFilters) -> Select[Any]:
    after = decode_cursor(mirror.settings.signing_key("cursor"), filters.cursor)
    newest = filters.newest
    position = tuple_(model.block_number, model.log_index)
    if after is not None:
        statement = statement.where(position < tuple_(*after) if newest else position > tuple_(*after))
    start, end = timestamp(filters.since), timestamp(filters.until)
    if start is not None or end is not None:
        statement = statement.join(
            im.Block,
            and_(im.Block.deployment_id == model.deployment_id, im.Block.number == model.block_number),
        )
        if start is not None:
            statement = statement.where(im.Block.timestamp >= start)
        if end is not None:
            statement = statement.where(im.Block.timestamp < end)
    if filters.min_amount is not None:
        statement = statement.where(model.amount >= filters.min_amount)
    if filters.max_amount is not None:
        statement = statement.where(model.amount <= filters.max_amount)
    if newest:
        return statement.order_by(model.block_number.desc(), model.log_index.desc())
    return statement.order_by(model.block_number, model.log_index)


def summary(row: Any, reference: Proof) -> Campaign:
    available = row.received - row.refunded - row.disbursed
    # The indexer keeps the evidenced disbursements' number and sum on the campaign, so
    # this read does not count them (a campaign may have many thousands).
    count, amount = row.evidenced_count, row.evidenced
    return Campaign(
        id=ids.from_bytes32(row.campaign_id),
        charity_id=ids.from_bytes32(row.charity_id),
        name=row.name,
        currency=row.currency,
        goal=int(row.goal),
        closed=row.closed_block is not None,
        received=row.received,
        refunded=row.refunded,
        disbursed=row.disbursed,
        available=available,
        # Each donation has its own commitment salt, so donors cannot be told apart (by
        # design): the honest count is of donations.
        donation_count=row.donation_count,
        disbursement_count=row.disbursement_count,
        evidence_coverage=EvidenceCoverage(
            disbursements_with_evidence=count,
            share_of_disbursements=round(count / row.disbursement_count, 4)
            if row.disbursement_count
            else None,
            share_of_amount=round(amount / row.disbursed, 4) if row.disbursed else None,
        ),
        proof=reference,
    )


def list_campaigns(
    mirror: Mirror,
    limit: int,
    cursor: str | None,
    charity_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Page[Campaign]:
    statement = select(C).where(C.deployment_id == mirror.deployment_id)
    if charity_id is not None:
        statement = statement.where(C.charity_id == ids.to_hex(charity_id, "charity"))
    statement = _filtered(statement, C, mirror, RecordFilters(limit, cursor, since, until)).limit(limit + 1)
    with mirror.engine.connect() as connection:
        rows = connection.execute(statement).all()
        view = chain_view(mirror, connection)
        blocks = block_info(mirror, connection, {r.block_number for r in rows[:limit]})
    items = [summary(r, proof(view, blocks, r)) for r in rows[:limit]]
    return page(mirror.settings.signing_key("cursor"), items, rows, limit)


def _campaign(connection: Any, mirror: Mirror, campaign_id: str) -> Any:
    row = connection.execute(
        select(C).where(
            C.deployment_id == mirror.deployment_id, C.campaign_id == ids.to_hex(campaign_id, "campaign")
        )
    ).one_or_none()
    if row is None:
        raise NotFound("campaign not found (or not mirrored yet)")
    return row


def get_campaign(mirror: Mirror, campaign_id: str) -> Campaign:
    with mirror.engine.connect() as connection:
        row = _campaign(connection, mirror, campaign_id)
        view = chain_view(mirror, connection)
        blocks = block_info(mirror, connection, {row.block_number})
    return summary(row, proof(view, blocks, row))


def list_donations(mirror: Mirror, campaign_id: str, filters: RecordFilters) -> Page[DonationSummary]:
    """Amounts and times only: nothing that could point at a donor."""
    with mirror.engine.connect() as connection:
        campaign = _campaign(connection, mirror, campaign_id)
        statement = select(D).where(
            D.deployment_id == mirror.deployment_id, D.campaign_id == campaign.campaign_id
        )
        statement = _filtered(statement, D, mirror, filters)
        rows = connection.execute(statement.limit(filters.limit + 1)).all()
        view = chain_view(mirror, connection)
        blocks = block_info(mirror, connection, {r.block_number for r in rows[: filters.limit]})
    items = [
        DonationSummary(
            id=ids.from_bytes32(r.donation_id),
            amount=r.amount,
            currency=campaign.currency,
            channel=channel_name(r.channel),
            allocated=r.allocated,
            refunded=r.refunded,
            remaining=r.amount - r.allocated - r.refunded,
            proof=proof(view, blocks, r),
        )
        for r in rows[: filters.limit]
    ]
    return page(mirror.settings.signing_key("cursor"), items, rows, filters.limit)


def list_disbursements(mirror: Mirror, campaign_id: str, filters: RecordFilters) -> Page[DisbursementSummary]:
    with mirror.engine.connect() as connection:
        campaign = _campaign(connection, mirror, campaign_id)
        statement = select(B).where(
            B.deployment_id == mirror.deployment_id, B.campaign_id == campaign.campaign_id
        )
        statement = _filtered(statement, B, mirror, filters)
        rows = connection.execute(statement.limit(filters.limit + 1)).all()
        view = chain_view(mirror, connection)
        blocks = block_info(mirror, connection, {r.block_number for r in rows[: filters.limit]})
    items = [
        DisbursementSummary(
            id=ids.from_bytes32(r.disbursement_id),
            amount=r.amount,
            currency=campaign.currency,
            recipient=r.recipient,
            purpose=r.purpose,
            allocation_count=r.allocation_count,
            evidence_count=r.evidence_count,
            proof=proof(view, blocks, r),
        )
        for r in rows[: filters.limit]
    ]
    return page(mirror.settings.signing_key("cursor"), items, rows, filters.limit)


def flows(mirror: Mirror, campaign_id: str, top: int = 20) -> Flows:
    """The campaign as a graph, aggregated so it stays small however big the campaign:
    donations grouped by month and channel on one side; the `top` largest disbursements
    (the rest as one "other" node), "refunded" and "not yet spent" on the other; edges
    carry amounts. Every amount adds up to the campaign's totals."""
    dep = mirror.deployment_id
    with mirror.engine.connect() as connection:
        campaign = _campaign(connection, mirror, campaign_id)
        donation_groups = connection.execute(
            select(D.donation_id, D.amount, D.refunded, D.allocated, D.channel, im.Block.timestamp)
            .join(
                im.Block, and_(im.Block.deployment_id == D.deployment_id, im.Block.number == D.block_number)
            )
            .where(D.deployment_id == dep, D.campaign_id == campaign.campaign_id)
            .execution_options(yield_per=2000)
        )
        source_of: dict[str, str] = {}
        sources: dict[str, dict[str, Any]] = {}
        refunded: dict[str, int] = defaultdict(int)
        unspent: dict[str, int] = defaultdict(int)
        with donation_groups:  # closed whatever happens (a server-side cursor on PostgreSQL)
            for donation_id, amount, refund, allocated, channel, ts in donation_groups:
                label = f"{datetime.fromtimestamp(ts, UTC):%Y-%m} · {channel_name(channel)}"
                source_of[donation_id] = label
                node = sources.setdefault(
                    label, {"id": f"donations:{label}", "label": label, "amount": 0, "count": 0}
                )
                node["amount"] += amount
                node["count"] += 1
                refunded[label] += refund
                unspent[label] += amount - allocated - refund
        biggest = connection.execute(
            select(B.disbursement_id, B.amount, B.recipient, B.purpose)
            .where(B.deployment_id == dep, B.campaign_id == campaign.campaign_id)
            .order_by(B.amount.desc(), B.block_number, B.log_index)
            .limit(top)
        ).all()
        shown = {b.disbursement_id for b in biggest}
        edges: dict[tuple[str, str], int] = defaultdict(int)
        allocations = connection.execute(
            select(A.donation_id, A.disbursement_id, A.amount)
            .join(B, and_(B.deployment_id == A.deployment_id, B.disbursement_id == A.disbursement_id))
            .where(A.deployment_id == dep, B.campaign_id == campaign.campaign_id)
            .execution_options(yield_per=2000)
        )
        other = 0
        with allocations:
            for donation_id, disbursement_id, amount in allocations:
                shown_on_its_own = disbursement_id in shown
                target = f"disbursement:{ids.from_bytes32(disbursement_id)}" if shown_on_its_own else "other"
                if target == "other":
                    other += amount
                edges[(f"donations:{source_of[donation_id]}", target)] += amount
    targets = [
        {
            "id": f"disbursement:{ids.from_bytes32(b.disbursement_id)}",
            "label": b.purpose,
            "recipient": b.recipient,
            "amount": b.amount,
        }
        for b in biggest
    ]
    if other:
        targets.append({"id": "other", "label": "other disbursements", "amount": other})
    for label in sources:
        if refunded[label]:
            edges[(f"donations:{label}", "refunded")] += refunded[label]
        if unspent[label]:
            edges[(f"donations:{label}", "unspent")] += unspent[label]
    totals = {"refunded": sum(refunded.values()), "unspent": sum(unspent.values())}
    for sink, label in (("refunded", "refunded"), ("unspent", "not yet spent")):
        if totals[sink]:
            targets.append({"id": sink, "label": label, "amount": totals[sink]})
    return Flows.model_validate(
        {
            "campaign": {
                "id": ids.from_bytes32(campaign.campaign_id),
                "name": campaign.name,
                "currency": campaign.currency,
            },
            "sources": sorted(sources.values(), key=lambda n: n["label"]),
            "targets": targets,
            "edges": [{"from": s, "to": t, "amount": amount} for (s, t), amount in sorted(edges.items())],
        }
    )
