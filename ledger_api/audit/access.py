"""Reading the access log (ledger_api/core/access_log.py): the regulator's filtered
list, a charity's data-sharing report, and a row's inclusion proof against its day's root.

A row's scope "includes" a charity when it names that charity, or when it names none and
was served (a read of every charity covers this one too)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import Select, and_, case, func, or_, select

from ledger_api.audit.schemas import (
    AccessLogEntry,
    AccessLogPage,
    AccessLogProof,
    AccessReport,
    AccessSeal,
    AccessSummary,
    MerkleStep,
)
from ledger_api.core import access_log, ids
from ledger_api.core.errors import InvalidRequest, NotFound
from ledger_api.core.models import AccessLogRow as Row
from ledger_api.core.pages import decode_cursor, encode_cursor
from ledger_api.core.security import Principal
from ledger_api.mirror.gateway import Mirror

# The summary covers at most this many (day, key) groups; a longer period is asked in parts.
SUMMARY_MAX = 1000
Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class AccessFilters:
    key_id: str | None = None
    charity_id: str | None = None  # CH-...
    since: date | None = None  # the first UTC day included
    until: date | None = None  # the last UTC day included
    endpoint: str | None = None
    limit: int = 100
    cursor: str | None = None

    def days(self) -> tuple[int | None, int | None]:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise InvalidRequest("`from` is after `to`")
        first = (self.since - access_log.EPOCH).days if self.since is not None else None
        last = (self.until - access_log.EPOCH).days if self.until is not None else None
        return first, last


def entry(row: Any) -> AccessLogEntry:
    return AccessLogEntry.model_validate(access_log.public_row(row))


def _filtered(query: Q, filters: AccessFilters) -> Q:
    first, last = filters.days()
    if first is not None:
        query = query.where(Row.day >= first)
    if last is not None:
        query = query.where(Row.day <= last)
    if filters.key_id is not None:
        query = query.where(Row.key_id == filters.key_id)
    if filters.endpoint is not None:
        query = query.where(or_(Row.route == filters.endpoint, Row.route.startswith(filters.endpoint + "?")))
    return query


def _page(
    mirror: Mirror, query: Select[Any], filters: AccessFilters
) -> tuple[list[AccessLogEntry], str | None]:
    key = mirror.settings.signing_key("cursor")
    after = decode_cursor(key, filters.cursor)
    if after is not None:
        query = query.where(Row.seq > after[0])
    with mirror.engine.connect() as connection:
        rows = list(connection.execute(query.order_by(Row.seq).limit(filters.limit + 1)).all())
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    return [entry(row) for row in rows], encode_cursor(key, rows[-1].seq, 0) if more else None


def limited_to(principal: Principal) -> list[str] | None:
    """The charities (CH-...) whose rows an auditor key limited to them may read; None:
    every row. A limited key sees neither other charities' rows nor reads of every charity
    (those tell what other keys did across the ledger)."""
    if principal.role == "auditor" and principal.charities is not None:
        return [ids.from_bytes32(charity) for charity in principal.charities]
    return None


def log_page(mirror: Mirror, filters: AccessFilters, principal: Principal) -> AccessLogPage:
    query = _filtered(select(Row), filters)
    if filters.charity_id is not None:
        query = query.where(Row.charity_id == filters.charity_id)
    allowed = limited_to(principal)
    if allowed is not None:
        query = query.where(Row.charity_id.in_(allowed))
    items, following = _page(mirror, query, filters)
    return AccessLogPage(items=items, next=following)


def _covers(charity_id: str) -> Any:
    return or_(Row.charity_id == charity_id, and_(Row.charity_id.is_(None), Row.outcome == "served"))


def report(mirror: Mirror, charity_id: str, filters: AccessFilters) -> AccessReport:
    """The charity's data-sharing report: rows whose scope includes it, and per key and
    UTC day how many reads, refusals and records."""
    items, following = _page(mirror, _filtered(select(Row), filters).where(_covers(charity_id)), filters)
    served = func.sum(func.coalesce(Row.record_count, 0)).label("records")
    refused = func.sum(case((Row.outcome == "refused", 1), else_=0)).label("refused")
    grouped = (
        _filtered(
            select(Row.day, Row.key_id, Row.role, func.count().label("reads"), refused, served), filters
        )
        .where(_covers(charity_id))
        .group_by(Row.day, Row.key_id, Row.role)
        .order_by(Row.day, Row.key_id)
        .limit(SUMMARY_MAX)
    )
    with mirror.engine.connect() as connection:
        groups = connection.execute(grouped).all()
    summary = [
        AccessSummary(
            date=access_log.day_date(group.day).isoformat(),
            key_id=group.key_id,
            role=group.role,
            reads=group.reads,
            refused=int(group.refused or 0),
            records=int(group.records or 0),
        )
        for group in groups
    ]
    return AccessReport(charity_id=charity_id, summary=summary, items=items, next=following)


def proof(mirror: Mirror, seq: int, seal: AccessSeal | None, principal: Principal) -> AccessLogProof:
    """The row `seq`, its Merkle path and its day's root (from the rows themselves)."""
    allowed = limited_to(principal)
    with mirror.engine.connect() as connection:
        row = connection.execute(select(Row).where(Row.seq == seq)).one_or_none()
        if row is None or (allowed is not None and row.charity_id not in allowed):
            raise NotFound("access log row not found")
        rows = access_log.day_rows(connection, row.day)
    hashes = [r.row_hash for r in rows]
    index = next(i for i, r in enumerate(rows) if r.seq == seq)
    root = access_log.merkle_root(hashes)
    assert root is not None  # the day holds this row
    return AccessLogProof(
        row=entry(row),
        day=row.day,
        date=access_log.day_date(row.day).isoformat(),
        index=index,
        row_count=len(rows),
        path=[MerkleStep.model_validate(step) for step in access_log.merkle_path(hashes, index)],
        root=root,
        sealed=seal,
    )
