"""Writes decoded events and the projections the API reads, and rolls them back.

Rows are inserted in bulk with conflict-ignoring inserts keyed on the record IDs, so
replaying a range changes nothing. Aggregates (campaign totals, a donation's allocated and
refunded, a disbursement's evidence count, operator status) are never incremented: they
are recomputed from the rows they summarise, for the keys a range or a rollback touched,
by the same code on both paths, so they cannot drift.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Table, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from indexer import models as m
from indexer.decoder import DecodedLog
from ledger_api.core.hexes import hex0x, unhex

CHUNK = 900  # keys per IN (...) list, below SQLite's bound-parameter limits


def _json(args: dict[str, Any]) -> str:
    """Compact JSON; orjson, or json for integers past 64 bits (uint256 amounts)."""
    try:
        return orjson.dumps(args).decode()
    except TypeError:
        return json.dumps(args, separators=(",", ":"), ensure_ascii=False)


def _json_value(value: Any) -> Any:
    return hex0x(value) if isinstance(value, bytes) else value


def insert_ignore(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk insert that skips rows whose key is already there.

    Large batches go straight to the driver: SQLite gets one prepared
    `INSERT ... ON CONFLICT DO NOTHING` run over tuples; PostgreSQL gets the rows by COPY
    into a temporary table, then one `INSERT ... SELECT ... ON CONFLICT DO NOTHING`.
    SQLAlchemy's per-row parameter processing and psycopg's pipelined executemany were
    most of a backfill's write time. Small batches take the ordinary path."""
    if not rows:
        return
    dialect = connection.dialect.name
    if len(rows) >= BULK_ROWS and dialect in ("sqlite", "postgresql"):
        columns = list(rows[0])
        values = [tuple(row[c] for c in columns) for row in rows]
        if dialect == "sqlite":
            _sqlite_bulk(connection, table.name, columns, values)
        else:
            _postgres_bulk(connection, table.name, columns, values)
        return
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(dialect)
    connection.execute(statement, list(rows))


BULK_ROWS = 200


def _sqlite_bulk(
    connection: Connection, name: str, columns: list[str], values: list[tuple[Any, ...]]
) -> None:
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    sql = f'INSERT INTO "{name}" ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING'
    connection.exec_driver_sql(sql, values)


def _postgres_bulk(
    connection: Connection, name: str, columns: list[str], values: list[tuple[Any, ...]]
) -> None:
    names = ", ".join(f'"{c}"' for c in columns)
    stage = f'"stage_{name}"'
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        # A temporary table per session, emptied at every commit.
        like = f'(LIKE "{name}" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS'
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} {like}")
        with cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
        cursor.execute(f'INSERT INTO "{name}" ({names}) SELECT {names} FROM {stage} ON CONFLICT DO NOTHING')
        cursor.execute(f"TRUNCATE {stage}")


@dataclass
class Touched:
    """Keys whose aggregates must be recomputed."""

    campaigns: set[str] = field(default_factory=set)
    donations: set[str] = field(default_factory=set)
    disbursements: set[str] = field(default_factory=set)
    operators: set[tuple[str, str]] = field(default_factory=set)

    def add(self, name: str, args: dict[str, Any]) -> None:
        """Only the aggregates an event can change: a new donation starts with nothing
        allocated or refunded, so recording one touches its campaign, not itself (which
        keeps a backfill of many donations from recomputing each of them)."""
        if name in ("DonationRecorded", "DisbursementRecorded", "DonationRefunded", "CampaignCreated"):
            self.campaigns.add(args["campaignId"])
        if name in ("DonationAllocated", "DonationRefunded"):
            self.donations.add(args["donationId"])
        if name == "EvidenceAnchored":
            self.disbursements.add(args["disbursementId"])
        if name in ("OperatorAdded", "OperatorRemoved"):
            self.operators.add((args["charityId"], args["account"]))


class Scopes:
    """The charity, campaign and sender of each event of a range.

    Most events name their campaign or charity; an allocation or an evidence anchor names
    only its disbursement, and a donation or refund only its campaign. Those are resolved
    from the range itself (a campaign created or a disbursement recorded earlier in it) and
    otherwise from the projections of earlier ranges, with one query per kind per range."""

    def __init__(
        self,
        connection: Connection,
        deployment_id: int,
        logs: Sequence[DecodedLog],
        parsed: list[dict[str, Any]],
    ) -> None:
        self.charity_of: dict[str, str] = {}
        self.campaign_of: dict[str, str] = {}  # disbursement -> campaign
        self.sender_of: dict[str, str] = {}  # transaction -> the disbursement's operator
        for log, args in zip(logs, parsed, strict=True):
            if log.name == "CampaignCreated":
                self.charity_of[args["campaignId"]] = args["charityId"]
            elif log.name == "DisbursementRecorded":
                self.campaign_of[args["disbursementId"]] = args["campaignId"]
                self.sender_of[hex0x(log.tx_hash)] = args["operator"]
        disbursements = {
            args["disbursementId"]
            for args in parsed
            if "disbursementId" in args and args["disbursementId"] not in self.campaign_of
        }
        B, C = m.table(m.Disbursement), m.table(m.Campaign)
        for keys in _chunks(disbursements):
            result = connection.execute(
                select(B.c.disbursement_id, B.c.campaign_id).where(
                    B.c.deployment_id == deployment_id, B.c.disbursement_id.in_(keys)
                )
            )
            self.campaign_of.update((key, value) for key, value in result)
        campaigns = {args["campaignId"] for args in parsed if "campaignId" in args}
        campaigns |= set(self.campaign_of.values())
        campaigns -= set(self.charity_of)
        for keys in _chunks(campaigns):
            result = connection.execute(
                select(C.c.campaign_id, C.c.charity_id).where(
                    C.c.deployment_id == deployment_id, C.c.campaign_id.in_(keys)
                )
            )
            self.charity_of.update((key, value) for key, value in result)

    def of(self, log: DecodedLog, args: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
        campaign = args.get("campaignId")
        if campaign is None and "disbursementId" in args:
            campaign = self.campaign_of.get(args["disbursementId"])
        charity = args.get("charityId") or (self.charity_of.get(campaign) if campaign else None)
        sender = (
            args.get("operator")
            or args.get("registrar")
            or args.get("sender")  # RoleGranted, RoleRevoked
            or (args.get("account") if log.name in ("Paused", "Unpaused") else None)
            or self.sender_of.get(hex0x(log.tx_hash))  # an allocation: its disbursement's
        )
        return charity, campaign, sender


def _origin(log: DecodedLog) -> dict[str, Any]:
    return {"block_number": log.block_number, "tx_hash": hex0x(log.tx_hash), "log_index": log.log_index}


def apply_logs(connection: Connection, deployment_id: int, logs: Sequence[DecodedLog]) -> Touched:
    """Insert the events of a range and their projection rows; recompute aggregates."""
    rows: dict[Table, list[dict[str, Any]]] = {}
    events = []
    closed: list[dict[str, Any]] = []
    touched = Touched()

    def add(model: type[m.Base], row: dict[str, Any]) -> None:
        rows.setdefault(m.table(model), []).append({"deployment_id": deployment_id, **row})

    parsed = [{k: _json_value(v) for k, v in log.args.items()} for log in logs]
    scopes = Scopes(connection, deployment_id, logs, parsed)
    for log, args in zip(logs, parsed, strict=True):
        touched.add(log.name, args)
        charity_id, campaign_id, sender = scopes.of(log, args)
        events.append(
            {
                "deployment_id": deployment_id,
                "block_number": log.block_number,
                "block_hash": hex0x(log.block_hash),
                "tx_hash": hex0x(log.tx_hash),
                "tx_index": log.tx_index,
                "log_index": log.log_index,
                "name": log.name,
                "args": _json(args),
                "sender": sender,
                "charity_id": charity_id,
                "campaign_id": campaign_id,
            }
        )
        origin = _origin(log)
        name = log.name
        if name == "DonationRecorded":
            add(
                m.Donation,
                {
                    "donation_id": args["donationId"],
                    "campaign_id": args["campaignId"],
                    "amount": args["amount"],
                    "donor_commitment": args["donorCommitment"],
                    "channel": args["channel"],
                    "metadata_hash": args["metadataHash"],
                    "operator": args["operator"],
                    "allocated": 0,
                    "refunded": 0,
                    **origin,
                },
            )
        elif name == "DonationAllocated":
            add(
                m.Allocation,
                {
                    "disbursement_id": args["disbursementId"],
                    "donation_id": args["donationId"],
                    "amount": args["amount"],
                    **origin,
                },
            )
        elif name == "DisbursementRecorded":
            add(
                m.Disbursement,
                {
                    "disbursement_id": args["disbursementId"],
                    "campaign_id": args["campaignId"],
                    "amount": args["amount"],
                    "recipient": args["recipient"],
                    "purpose": args["purpose"],
                    "allocation_count": args["allocationCount"],
                    "operator": args["operator"],
                    "evidence_count": 0,
                    **origin,
                },
            )
        elif name == "DonationRefunded":
            add(
                m.Refund,
                {
                    "refund_id": args["refundId"],
                    "donation_id": args["donationId"],
                    "campaign_id": args["campaignId"],
                    "amount": args["amount"],
                    "reason": args["reason"],
                    "operator": args["operator"],
                    **origin,
                },
            )
        elif name == "EvidenceAnchored":
            add(
                m.Evidence,
                {
                    "disbursement_id": args["disbursementId"],
                    "document_hash": args["documentHash"],
                    "operator": args["operator"],
                    **origin,
                },
            )
        elif name == "CampaignCreated":
            add(
                m.Campaign,
                {
                    "campaign_id": args["campaignId"],
                    "charity_id": args["charityId"],
                    "name": args["name"],
                    "currency": unhex(args["currency"]).decode("ascii"),
                    "goal": str(args["goal"]),
                    "metadata_hash": args["metadataHash"],
                    "operator": args["operator"],
                    "closed_block": None,
                    "received": 0,
                    "refunded": 0,
                    "disbursed": 0,
                    "donation_count": 0,
                    "disbursement_count": 0,
                    **origin,
                },
            )
        elif name == "CampaignClosed":
            closed.append({"c": args["campaignId"], "b": log.block_number})
        elif name == "CharityRegistered":
            add(
                m.Charity,
                {
                    "charity_id": args["charityId"],
                    "name": args["name"],
                    "metadata_hash": args["metadataHash"],
                    "registrar": args["registrar"],
                    **origin,
                },
            )
        elif name == "CorrectionRecorded":
            replacement = args["replacementId"]
            add(
                m.Correction,
                {
                    "correction_id": args["correctionId"],
                    "charity_id": args["charityId"],
                    "original_kind": args["originalKind"],
                    "original_id": args["originalId"],
                    "replacement_id": None if int(replacement, 16) == 0 else replacement,
                    "reason": args["reason"],
                    "operator": args["operator"],
                    **origin,
                },
            )

    insert_ignore(connection, m.table(m.Event), events)
    # Parents before children, so the projection order never depends on the range.
    for model in (
        m.Charity,
        m.Campaign,
        m.Donation,
        m.Disbursement,
        m.Allocation,
        m.Refund,
        m.Evidence,
        m.Correction,
    ):
        insert_ignore(connection, m.table(model), rows.get(m.table(model), []))
    if closed:
        campaigns = m.table(m.Campaign)
        connection.execute(
            update(campaigns)
            .where(
                and_(campaigns.c.deployment_id == deployment_id, campaigns.c.campaign_id == bindparam("c"))
            )
            .values(closed_block=bindparam("b")),
            closed,
        )
    refresh(connection, deployment_id, touched)
    return touched


def _chunks(keys: Iterable[Any]) -> Iterable[list[Any]]:
    keys = sorted(keys)
    for i in range(0, len(keys), CHUNK):
        yield keys[i : i + CHUNK]


def refresh(connection: Connection, deployment_id: int, touched: Touched) -> None:
    """Recompute the aggregates of the touched keys from the rows they summarise."""
    D, A, R, B, C, E = (
        m.table(m.Donation),
        m.table(m.Allocation),
        m.table(m.Refund),
        m.table(m.Disbursement),
        m.table(m.Campaign),
        m.table(m.Evidence),
    )

    def total(table: Table, column: str, key: str, outer: Table, outer_key: str) -> Any:
        return (
            select(func.coalesce(func.sum(table.c[column]), 0))
            .where(table.c.deployment_id == outer.c.deployment_id, table.c[key] == outer.c[outer_key])
            .scalar_subquery()
        )

    def count(table: Table, key: str, outer: Table, outer_key: str) -> Any:
        return (
            select(func.count())
            .where(table.c.deployment_id == outer.c.deployment_id, table.c[key] == outer.c[outer_key])
            .scalar_subquery()
        )

    for keys in _chunks(touched.donations):
        connection.execute(
            update(D)
            .where(D.c.deployment_id == deployment_id, D.c.donation_id.in_(keys))
            .values(
                allocated=total(A, "amount", "donation_id", D, "donation_id"),
                refunded=total(R, "amount", "donation_id", D, "donation_id"),
            )
        )
    for keys in _chunks(touched.disbursements):
        connection.execute(
            update(B)
            .where(B.c.deployment_id == deployment_id, B.c.disbursement_id.in_(keys))
            .values(evidence_count=count(E, "disbursement_id", B, "disbursement_id"))
        )
    for keys in _chunks(touched.campaigns):
        connection.execute(
            update(C)
            .where(C.c.deployment_id == deployment_id, C.c.campaign_id.in_(keys))
            .values(
                received=total(D, "amount", "campaign_id", C, "campaign_id"),
                donation_count=count(D, "campaign_id", C, "campaign_id"),
                refunded=total(R, "amount", "campaign_id", C, "campaign_id"),
                disbursed=total(B, "amount", "campaign_id", C, "campaign_id"),
                disbursement_count=count(B, "campaign_id", C, "campaign_id"),
            )
        )
    _refresh_operators(connection, deployment_id, touched.operators)


def _refresh_operators(connection: Connection, deployment_id: int, keys: set[tuple[str, str]]) -> None:
    """An operator's status is that of its latest OperatorAdded/OperatorRemoved event."""
    if not keys:
        return
    events, operators = m.table(m.Event), m.table(m.Operator)
    latest: dict[tuple[str, str], tuple[int, int, bool]] = {}
    result = connection.execute(
        select(events.c.block_number, events.c.log_index, events.c.name, events.c.args).where(
            events.c.deployment_id == deployment_id,
            events.c.name.in_(["OperatorAdded", "OperatorRemoved"]),
        )
    )
    for block_number, log_index, name, raw in result:
        args = json.loads(raw)
        key = (args["charityId"], args["account"])
        if key in keys and (block_number, log_index) > latest.get(key, (-1, -1, False))[:2]:
            latest[key] = (block_number, log_index, name == "OperatorAdded")
    for charity_id, account in keys:
        connection.execute(
            delete(operators).where(
                operators.c.deployment_id == deployment_id,
                operators.c.charity_id == charity_id,
                operators.c.account == account,
            )
        )
        if (charity_id, account) in latest:
            block_number, _, active = latest[(charity_id, account)]
            connection.execute(
                insert(operators).values(
                    deployment_id=deployment_id,
                    charity_id=charity_id,
                    account=account,
                    active=active,
                    block_number=block_number,
                )
            )


def rollback_above(connection: Connection, deployment_id: int, ancestor: int) -> int:
    """Delete everything derived from blocks above `ancestor`; recompute what it touched.
    Returns the number of events removed."""
    events = m.table(m.Event)
    touched = Touched()
    removed = 0
    for name, raw in connection.execute(
        select(events.c.name, events.c.args).where(
            events.c.deployment_id == deployment_id, events.c.block_number > ancestor
        )
    ):
        touched.add(name, json.loads(raw))
        removed += 1
    for model in (*m.APPEND_ONLY, m.Event):
        table = m.table(model)
        connection.execute(
            delete(table).where(table.c.deployment_id == deployment_id, table.c.block_number > ancestor)
        )
    blocks = m.table(m.Block)
    connection.execute(
        delete(blocks).where(blocks.c.deployment_id == deployment_id, blocks.c.number > ancestor)
    )
    campaigns = m.table(m.Campaign)
    connection.execute(
        update(campaigns)
        .where(campaigns.c.deployment_id == deployment_id, campaigns.c.closed_block > ancestor)
        .values(closed_block=None)
    )
    refresh(connection, deployment_id, touched)
    return removed
