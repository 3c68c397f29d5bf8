"""Cursor pagination for public lists: a stable order (chain order: block, then log
index), a bounded page size, and an opaque cursor that names the last row seen, so pages
neither skip nor repeat rows while new records arrive."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query

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
MinAmount = Annotated[
    int | None, Query(ge=0, le=10**24, description="Only amounts at least this (minor units).")
]
MaxAmount = Annotated[
    int | None, Query(ge=0, le=10**24, description="Only amounts at most this (minor units).")
]


def encode_cursor(block_number: int, log_index: int) -> str:
    raw = json.dumps([block_number, log_index], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[int, int] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        block_number, log_index = json.loads(raw)
        if (
            not (isinstance(block_number, int) and isinstance(log_index, int))
            or min(block_number, log_index) < 0
        ):
            raise ValueError
    except (ValueError, TypeError, json.JSONDecodeError):
        raise InvalidRequest("not a cursor from a previous page") from None
    return block_number, log_index


def timestamp(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidRequest("give times with a time zone, e.g. 2026-11-26T10:00:00Z")
    return int(value.timestamp())


def page(items: list[dict[str, Any]], rows: Sequence[Any], limit: int) -> dict[str, Any]:
    """`rows` were fetched with limit + 1: the extra row says there is a next page."""
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return {
        "items": items[:limit],
        "next": encode_cursor(last.block_number, last.log_index) if last is not None else None,
    }
