"""The access log (使用痕迹): one row per authenticated read of non-public data.

It lives in the kernel because every domain that serves such data appends to it.

1. A row holds: `seq` (1, 2, 3, ... with no gaps), `at` (UTC, microseconds), `day` (UTC
   days since 1970-01-01), the key's id and role, the method and the route template (never
   the raw URL: a query string may carry anything), the scope asked for (charity and
   campaign IDs as on receipts; no charity means every charity), the outcome (`served` or
   `refused`) and HTTP status, the record count (None when not known cheaply, as for a
   streamed export) and which records: up to `MAX_IDS` IDs as a JSON list, beyond that
   only the count and `records_digest`, the SHA-256 of the IDs joined by "\\n".
2. `row_hash` = SHA-256 of the row's canonical encoding (`canonical`): the UTF-8 of the
   JSON array `[VERSION, seq, at, day, key_id, role, method, route, charity_id,
   campaign_id, outcome, status, record_count, record_ids, records_digest, prev_hash]`,
   `at` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, `record_ids` a list or null, no whitespace
   (separators "," and ":"), non-ASCII escaped as \\uXXXX. `prev_hash` is the previous
   row's `row_hash` (`GENESIS`, 64 zeros, for the first row): deleting, editing or
   reordering a row breaks the chain.
3. Appends are serialised, so the chain never forks, across threads and processes
   (`ledger serve --workers N`): PostgreSQL takes a transaction-level advisory lock;
   SQLite an immediate write transaction (BEGIN IMMEDIATE). The previous row is read and
   the new one written inside it, `at` taken inside too, so `at` never goes backwards.
4. Nothing updates or deletes a row: no code path does, and triggers (migration 0011)
   refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL).
5. Each UTC day is sealed by a Merkle root over its rows' hashes in `seq` order
   (`merkle_root`): a leaf is SHA-256(0x00 ‖ row_hash), an inner node SHA-256(0x01 ‖ left
   ‖ right); at each level an odd last node is carried up unchanged. A day without rows
   has no root and no seal. The verifier (`ledger_verify.access_log`) carries its own
   copy of all of this.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine, insert, select, text

from ledger_api.core.models import AccessLogRow
from ledger_api.core.security import CurrentPrincipal, Principal

VERSION = "ledger-access-log/1"
GENESIS = "0" * 64
MAX_IDS = 100
EPOCH = date(1970, 1, 1)
# pg_advisory_xact_lock's key for appends: any fixed 64-bit number no other lock uses.
_LOCK = 0x1ED6E7AC_CE55_0001 & (2**63 - 1)
FIELDS = (
    "seq",
    "at",
    "day",
    "key_id",
    "role",
    "method",
    "route",
    "charity_id",
    "campaign_id",
    "outcome",
    "status",
    "record_count",
    "record_ids",
    "records_digest",
    "prev_hash",
)


@dataclass(frozen=True)
class Read:
    """What one request read (or was refused), before it has a place in the chain."""

    key_id: str
    role: str
    method: str
    route: str
    charity_id: str | None = None
    campaign_id: str | None = None
    outcome: str = "served"
    status: int = 200
    record_ids: Sequence[str] | None = None
    record_count: int | None = None


def day_number(moment: datetime) -> int:
    return (moment.astimezone(UTC).date() - EPOCH).days


def day_date(day: int) -> date:
    return date.fromordinal(EPOCH.toordinal() + day)


def format_at(moment: datetime) -> str:
    if moment.tzinfo is None:  # SQLite gives back naive datetimes: they were stored in UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def records_digest(record_ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(record_ids).encode()).hexdigest()


def canonical(row: dict[str, Any]) -> bytes:
    """The bytes `row_hash` is the SHA-256 of (module docstring, point 2). `row` holds
    FIELDS with `at` already formatted and `record_ids` a list or None."""
    return json.dumps(
        [VERSION, *(row[name] for name in FIELDS)], separators=(",", ":"), ensure_ascii=True
    ).encode()


def row_hash(row: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


def public_row(row: Any) -> dict[str, Any]:
    """A stored row as the API shows it and the hash covers it."""
    found = {name: getattr(row, name) for name in FIELDS}
    found["at"] = format_at(row.at)
    found["record_ids"] = json.loads(row.record_ids) if row.record_ids is not None else None
    found["row_hash"] = row.row_hash
    return found


def _fields(read: Read) -> dict[str, Any]:
    ids = list(read.record_ids) if read.record_ids is not None else None
    count = len(ids) if ids is not None else read.record_count
    return {
        "key_id": read.key_id,
        "role": read.role,
        "method": read.method,
        "route": read.route,
        "charity_id": read.charity_id,
        "campaign_id": read.campaign_id,
        "outcome": read.outcome,
        "status": read.status,
        "record_count": count,
        "record_ids": ids if ids is not None and len(ids) <= MAX_IDS else None,
        "records_digest": records_digest(ids) if ids is not None and len(ids) > MAX_IDS else None,
    }


def _append_locked(connection: Connection, read: Read, now: datetime | None) -> int:
    last = connection.execute(
        select(AccessLogRow.seq, AccessLogRow.row_hash).order_by(AccessLogRow.seq.desc()).limit(1)
    ).one_or_none()
    moment = now or datetime.now(UTC)
    row = {
        **_fields(read),
        "seq": 1 if last is None else last.seq + 1,
        "at": format_at(moment),
        "day": day_number(moment),
        "prev_hash": GENESIS if last is None else last.row_hash,
    }
    digest = row_hash(row)
    stored = {
        **row,
        "at": moment,
        "record_ids": json.dumps(row["record_ids"]) if row["record_ids"] is not None else None,
        "row_hash": digest,
    }
    connection.execute(insert(AccessLogRow).values(**stored))
    return int(row["seq"])


def append(engine: Engine, read: Read, now: datetime | None = None) -> int:
    """Append one row, serialised against every other appender (point 3); its seq.
    `now` is the clock (tests give one, to make a finished day)."""
    if engine.dialect.name == "sqlite":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                seq = _append_locked(connection, read, now)
            except BaseException:
                connection.exec_driver_sql("ROLLBACK")
                raise
            connection.exec_driver_sql("COMMIT")
            return seq
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
        return _append_locked(connection, read, now)


# ------------------------------------------------------------------ the daily Merkle tree


def _leaf(row_hash_hex: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(row_hash_hex)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _levels(row_hashes: Sequence[str]) -> list[list[bytes]]:
    level = [_leaf(h) for h in row_hashes]
    levels = [level]
    while len(level) > 1:
        level = [
            _node(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)
        ]
        levels.append(level)
    return levels


def merkle_root(row_hashes: Sequence[str]) -> str | None:
    """The day's root (point 5), hex; None for a day without rows."""
    if not row_hashes:
        return None
    return "0x" + _levels(row_hashes)[-1][0].hex()


def merkle_path(row_hashes: Sequence[str], index: int) -> list[dict[str, str]]:
    """The siblings from the leaf at `index` up to the root: each says on which side of
    the running hash it goes (an odd last node carried up has no sibling at that level)."""
    path: list[dict[str, str]] = []
    for level in _levels(row_hashes)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append({"side": "left" if sibling < index else "right", "hash": "0x" + level[sibling].hex()})
        index //= 2
    return path


def day_rows(connection: Connection, day: int) -> list[Any]:
    query = select(AccessLogRow).where(AccessLogRow.day == day).order_by(AccessLogRow.seq)
    return list(connection.execute(query).all())


# ------------------------------------------------------------------ the routes' side


@dataclass(frozen=True)
class Trace:
    """The caller and route of a request that reads non-public data: the route says what
    it served (or the scope dependency what it refused), and one row is appended."""

    engine: Engine
    principal: Principal
    method: str
    route: str

    def served(
        self,
        charity_id: str | None = None,
        campaign_id: str | None = None,
        record_ids: Sequence[str] | None = None,
        record_count: int | None = None,
        status: int = 200,
    ) -> int:
        return self._append("served", status, charity_id, campaign_id, record_ids, record_count)

    def refused(self, charity_id: str | None, campaign_id: str | None, status: int) -> int:
        return self._append("refused", status, charity_id, campaign_id, None, None)

    def _append(
        self,
        outcome: str,
        status: int,
        charity_id: str | None,
        campaign_id: str | None,
        record_ids: Sequence[str] | None,
        record_count: int | None,
    ) -> int:
        read = Read(
            self.principal.key_id,
            self.principal.role,
            self.method,
            self.route,
            charity_id,
            campaign_id,
            outcome,
            status,
            record_ids,
            record_count,
        )
        return append(self.engine, read)


def _trace(request: Request, principal: CurrentPrincipal) -> Trace:
    route = request.scope.get("route")
    template = str(getattr(route, "path_format", None) or getattr(route, "path", "") or "?")
    return Trace(request.app.state.mirror.engine, principal, request.method, template[:200])


# A route that serves non-public data takes this and calls `served` (or `refused`).
TraceDep = Annotated[Trace, Depends(_trace)]
