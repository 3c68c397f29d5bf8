"""Cursor pagination for public lists: a stable order (chain order: block, then log
index), a bounded page size, and an opaque cursor that names the last row seen, so pages
neither skip nor repeat rows while new records arrive.

A cursor is the last row's position and an HMAC of it under the deployment's cursor key
(Settings.signing_key("cursor")): only cursors this service issued are taken back, so
nothing a client makes up (a position past 2**63, which overflowed SQLite's integers into
a 500) reaches SQL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from ledger_api.core.errors import InvalidRequest

MAX_PAGE = 200

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Rows per page (1 to {MAX_PAGE}).")]
CursorParam = Annotated[
    str | None, Query(max_length=200, description="The `next` cursor of the previous page.")
]
Since = Annotated[datetime | None, Query(description="Only records at or after this time (ISO 8601).")]
Until = Annotated[datetime | None, Query(description="Only records before this time (ISO 8601).")]
Order = Annotated[
    Literal["oldest", "newest"],
    Query(description="Chain order (oldest first, the default) or newest first; cursors follow it."),
]
# A single record's amount is at most the contract's MAX_AMOUNT (10**18), and that is what
# the mirror's integer columns hold: a bound above it reached SQL as an integer SQLite could
# not bind (a 500).
MAX_AMOUNT_FILTER = 10**18
MinAmount = Annotated[
    int | None,
    Query(ge=0, le=MAX_AMOUNT_FILTER, description="Only amounts at least this (minor units, at most 10^18)."),
]
MaxAmount = Annotated[
    int | None,
    Query(ge=0, le=MAX_AMOUNT_FILTER, description="Only amounts at most this (minor units, at most 10^18)."),
]


@dataclass(frozen=True)
class RecordFilters:
    """What a list of a campaign's records (donations, disbursements) is filtered by."""

    limit: int = 50
    cursor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_amount: int | None = None
    max_amount: int | None = None
    order: Literal["oldest", "newest"] = "oldest"

    @property
    def newest(self) -> bool:
        return self.order == "newest"


def record_filters(
    limit: Limit = 50,
    cursor: CursorParam = None,
    since: Since = None,
    until: Until = None,
    min_amount: MinAmount = None,
    max_amount: MaxAmount = None,
    order: Order = "oldest",
) -> RecordFilters:
    return RecordFilters(limit, cursor, since, until, min_amount, max_amount, order)


RecordFiltersDep = Annotated[RecordFilters, Depends(record_filters)]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list, in chain order."""

    items: list[T]
    next: str | None = Field(description="The cursor of the next page; null on the last page.")


_POSITION_MAX = 2**63 - 1  # what the mirror's BIGINT columns hold
_TAG = 12  # bytes of HMAC-SHA256 kept in a cursor


def _tag(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_TAG]


def encode_cursor(key: bytes, block_number: int, log_index: int) -> str:
    payload = json.dumps([block_number, log_index], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload + _tag(key, payload)).decode().rstrip("=")


def decode_cursor(key: bytes, cursor: str | None) -> tuple[int, int] | None:
    """The position a cursor this service issued names; 422 for anything else."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload, tag = raw[:-_TAG], raw[-_TAG:]
        if len(raw) <= _TAG or not hmac.compare_digest(tag, _tag(key, payload)):
            raise ValueError
        block_number, log_index = json.loads(payload)
        if not all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= _POSITION_MAX
            for n in (block_number, log_index)
        ):
            raise ValueError
    except (ValueError, TypeError):
        raise InvalidRequest("not a cursor from a previous page") from None
    return block_number, log_index


def timestamp(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidRequest("give times with a time zone, e.g. 2026-11-26T10:00:00Z")
    return int(value.timestamp())


def page(key: bytes, items: list[T], rows: Sequence[Any], limit: int) -> Page[T]:
    """`rows` were fetched with limit + 1: the extra row says there is a next page."""
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return Page[T](
        items=items[:limit],
        next=encode_cursor(key, last.block_number, last.log_index) if last is not None else None,
    )
