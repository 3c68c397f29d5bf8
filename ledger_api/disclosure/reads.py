"""The facts the calendar needs, from the mirror: campaigns in scope with their start,
end date, closing, remaining funds, reports, disposals and corrections, seen as of the end
of a date (records in later blocks are left out)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from ledger_api.core import ids
from ledger_api.disclosure import calendar
from ledger_api.disclosure.rules import RuleSet
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror

REPORT_KINDS = ("periodic", "final")
DISPOSITIONS = ("returned_to_donors", "moved_to_campaign", "kept_under_rule")


def today(mirror: Mirror, ruleset: RuleSet) -> date:
    """Today in the rule set's zone: the wall clock's day, or the chain's when its latest
    mirrored block is later (a test chain moved forward; no record is from the future)."""
    B = im.Block
    with mirror.engine.connect() as connection:
        latest = connection.execute(
            select(B.timestamp)
            .where(B.deployment_id == mirror.deployment_id)
            .order_by(B.number.desc())
            .limit(1)
        ).scalar_one_or_none()
    now = int(datetime.now(UTC).timestamp())
    return calendar.local_date(max(now, latest or 0), ruleset.zone)


def _timed(connection: Connection, mirror: Mirror, model: Any, cutoff: int, *where: Any) -> Any:
    """Rows of `model` (with their block time) made no later than `cutoff`."""
    B = im.Block
    return connection.execute(
        select(model, B.timestamp.label("at"))
        .join(B, and_(B.deployment_id == model.deployment_id, B.number == model.block_number))
        .where(model.deployment_id == mirror.deployment_id, B.timestamp <= cutoff, *where)
    ).all()


def _money_until(connection: Connection, mirror: Mirror, campaign_hex: str, cutoff: int) -> int:
    """Received - refunded - disbursed of a campaign from its records up to `cutoff`."""
    B = im.Block
    total = 0
    for model, sign in ((im.Donation, 1), (im.Refund, -1), (im.Disbursement, -1)):
        value = connection.execute(
            select(func.coalesce(func.sum(model.amount), 0))
            .join(B, and_(B.deployment_id == model.deployment_id, B.number == model.block_number))
            .where(
                model.deployment_id == mirror.deployment_id,
                model.campaign_id == campaign_hex,
                B.timestamp <= cutoff,
            )
        ).scalar_one()
        total += sign * int(value)
    return total


def campaigns(
    mirror: Mirror,
    connection: Connection,
    ruleset: RuleSet,
    as_of: date,
    charity_hex: str | None = None,
    campaign_hex: str | None = None,
) -> list[tuple[calendar.Campaign, dict[str, Any]]]:
    """The campaigns in scope that existed at the end of `as_of`, each with what the
    answer shows beside its obligations (end-date history, corrections' reasons)."""
    cutoff = calendar.end_of(as_of, ruleset.zone)
    where: list[Any] = []
    if charity_hex is not None:
        where.append(im.Campaign.charity_id == charity_hex)
    if campaign_hex is not None:
        where.append(im.Campaign.campaign_id == campaign_hex)
    rows = _timed(connection, mirror, im.Campaign, cutoff, *where)
    rows.sort(key=lambda row: (row.block_number, row.log_index))
    keys = [row.campaign_id for row in rows]
    if not keys:
        return []
    ends: dict[str, list[Any]] = defaultdict(list)
    for row in _timed(connection, mirror, im.CampaignEnd, cutoff, im.CampaignEnd.campaign_id.in_(keys)):
        ends[row.campaign_id].append(row)
    records: dict[str, list[calendar.Record]] = defaultdict(list)
    reports: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in _timed(connection, mirror, im.Report, cutoff, im.Report.campaign_id.in_(keys)):
        r = row
        readable = ids.from_bytes32(r.report_id)
        records[r.campaign_id].append(
            calendar.Record(f"report:{REPORT_KINDS[r.kind]}", readable, row.at, r.tx_hash)
        )
        reports[r.campaign_id].append(
            {
                "id": readable,
                "kind": REPORT_KINDS[r.kind],
                "period_start": r.period_start,
                "period_end": r.period_end,
                "document_sha256": r.document_hash[2:],
                "at": row.at,
            }
        )
    disposals: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in _timed(connection, mirror, im.Disposal, cutoff, im.Disposal.campaign_id.in_(keys)):
        d = row
        readable = ids.from_bytes32(d.disposal_id)
        records[d.campaign_id].append(calendar.Record("disposal", readable, row.at, d.tx_hash))
        disposals[d.campaign_id].append(
            {
                "id": readable,
                "disposition": DISPOSITIONS[d.disposition],
                "amount": d.amount,
                "available": d.available,
                "rule": d.rule,
                "target_campaign_id": ids.from_bytes32(d.target_campaign_id)
                if d.target_campaign_id
                else None,
                "at": row.at,
            }
        )
    corrections = _corrections(connection, mirror, cutoff, keys, {row.charity_id for row in rows})
    for campaign_key, items in corrections.items():
        records[campaign_key] += [
            calendar.Record("correction", c["id"], c["at"], c["tx_hash"]) for c in items
        ]
    closed = _closings(connection, mirror, cutoff, keys)
    found = []
    for row in rows:
        c = row
        history = sorted(ends.get(c.campaign_id, []), key=lambda e: (e.block_number, e.log_index))
        ends_at = history[-1].ends_at if history else None
        closed_at = closed.get(c.campaign_id)
        end_time = ends_at if ends_at is not None else closed_at
        money_cutoff = (
            min(cutoff, calendar.end_of(calendar.local_date(end_time, ruleset.zone), ruleset.zone))
            if end_time
            else cutoff
        )
        facts = calendar.Campaign(
            id=ids.from_bytes32(c.campaign_id),
            charity_id=ids.from_bytes32(c.charity_id),
            name=c.name,
            currency=c.currency,
            created_at=row.at,
            ends_at=ends_at,
            closed_at=closed_at,
            remaining=_money_until(connection, mirror, c.campaign_id, money_cutoff),
            records=tuple(records.get(c.campaign_id, [])),
        )
        extra = {
            "end_changes": [
                {
                    "ends_at": e.ends_at,
                    "previous_ends_at": e.previous_ends_at or None,
                    "reason": e.reason,
                    "at": e.at,
                    "tx_hash": e.tx_hash,
                }
                for e in history
            ],
            "reports": sorted(reports.get(c.campaign_id, []), key=lambda r: (r["at"], r["id"])),
            "disposals": sorted(disposals.get(c.campaign_id, []), key=lambda d: (d["at"], d["id"])),
            "corrections": corrections.get(c.campaign_id, []),
        }
        found.append((facts, extra))
    return found


def _closings(connection: Connection, mirror: Mirror, cutoff: int, keys: Sequence[str]) -> dict[str, int]:
    """When each campaign was closed (its CampaignClosed block's time), if by `cutoff`."""
    C, B = im.Campaign, im.Block
    rows = connection.execute(
        select(C.campaign_id, B.timestamp)
        .join(B, and_(B.deployment_id == C.deployment_id, B.number == C.closed_block))
        .where(C.deployment_id == mirror.deployment_id, C.campaign_id.in_(keys), B.timestamp <= cutoff)
    )
    return {key: at for key, at in rows}


def _corrections(
    connection: Connection, mirror: Mirror, cutoff: int, keys: Sequence[str], charities: set[str]
) -> dict[str, list[dict[str, Any]]]:
    """The corrections of records of these campaigns, each under its campaign."""
    rows = _timed(connection, mirror, im.Correction, cutoff, im.Correction.charity_id.in_(sorted(charities)))
    if not rows:
        return {}
    owners: dict[str, str] = {key: key for key in keys}
    wanted = sorted({row.original_id for row in rows})
    for model, column in (
        (im.Donation, im.Donation.donation_id),
        (im.Refund, im.Refund.refund_id),
        (im.Disbursement, im.Disbursement.disbursement_id),
        (im.Report, im.Report.report_id),
        (im.Disposal, im.Disposal.disposal_id),
    ):
        owners.update(
            (record, campaign)
            for record, campaign in connection.execute(
                select(column, model.campaign_id).where(
                    model.deployment_id == mirror.deployment_id,
                    column.in_(wanted),
                    model.campaign_id.in_(keys),
                )
            )
        )
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r.block_number, r.log_index)):
        c = row
        campaign = owners.get(c.original_id)
        if campaign is None:
            continue
        found[campaign].append(
            {
                "id": ids.from_bytes32(c.correction_id),
                "original_kind": ids.RECORD_KINDS[c.original_kind],
                "original_id": ids.from_bytes32(c.original_id),
                "replacement_id": ids.from_bytes32(c.replacement_id) if c.replacement_id else None,
                "reason": c.reason,
                "at": row.at,
                "tx_hash": c.tx_hash,
            }
        )
    return found
