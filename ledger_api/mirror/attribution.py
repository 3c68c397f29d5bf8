"""Who signed a record, as the public may say it: "signed by the charity's own key" or
"signed by the platform on the charity's behalf".

Derived from the mirror's `operators.held_by_charity`, which mirrors the `heldByCharity`
flag the registrar put on chain in OperatorAdded (true for every operator of a
self-custody charity): a fact anyone can read from the chain, not a private flag of ours.
A record's `operator` (its event's) is looked up among its charity's operators."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, tuple_

from ledger_api.core.answers import SignedBy
from ledger_api.mirror import tables as im


def signed_by(
    connection: Any, deployment_id: int | None, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], SignedBy]:
    """For (charity 0x hex, operator account) pairs: who signed (an operator the mirror does
    not know, which cannot happen for a mirrored record, is left out)."""
    wanted = set(pairs)
    if not wanted:
        return {}
    OP = im.Operator
    rows = connection.execute(
        select(OP.charity_id, OP.account, OP.held_by_charity).where(
            OP.deployment_id == deployment_id, tuple_(OP.charity_id, OP.account).in_(sorted(wanted))
        )
    )
    return {(charity, account): held_by(held) for charity, account, held in rows}


def held_by(held: bool) -> SignedBy:
    """Who signed, from the operator's `held_by_charity` flag."""
    return SignedBy(by="charity" if held else "platform", held_by_charity=bool(held))


def operator_of(record: Any, charity_id: Any) -> Any:
    """The join of a record (a mirror table with `operator`) to its charity's operator row,
    for a query that reads `held_by_charity` along with the record (one round trip)."""
    OP = im.Operator
    return (
        (OP.deployment_id == record.deployment_id)
        & (OP.charity_id == charity_id)
        & (OP.account == record.operator)
    )


def one(connection: Any, deployment_id: int | None, charity_hex: str, account: str) -> SignedBy | None:
    return signed_by(connection, deployment_id, [(charity_hex, account)]).get((charity_hex, account))
