"""What a campaign (or every campaign of a charity) did on the ledger, newest first, final
records only: the public's view of its payouts, the evidence anchored for them, its
refunds, its closure and the corrections of its records. The Atom feeds
(`pages/feeds.py`) are built from it.

A record is final when its block is at or below the mirror's finalized block
(`mirror.proofs.ChainView`): it can no longer be taken back by a reorganisation, so a
follower never sees an entry appear and then vanish. Each kind is read newest first and
cut at `limit`, so the newest `limit` of all of them are among what was read. Read from
the mirror only; nothing here is personal (a private recipient is its commitment, which
the feed shows as the pages do)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, or_, select

from ledger_api.core import ids
from ledger_api.core.answers import Named, Proof
from ledger_api.core.errors import NotFound
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror
from ledger_api.mirror.proofs import ChainView, block_info, chain_view, proof

# The contract's RecordKind, in its order (ICharityLedger.sol), as the IDs name them.


@dataclass(frozen=True)
class Activity:
    """One final record. `kind` is "disbursement", "evidence" (a document anchored to
    `disbursement_id`), "refund", "closure" or "correction"; the fields a kind has not
    are None. IDs are canonical (`DB-...`); `document` is the SHA-256 in hex."""

    kind: str
    proof: Proof
    campaign: Named | None  # None for a correction of a charity-wide record
    currency: str | None
    amount: int | None = None
    disbursement_id: str | None = None
    recipient: str | None = None
    purpose: str | None = None
    document: str | None = None
    refund_id: str | None = None
    donation_id: str | None = None
    reason: str | None = None
    correction_id: str | None = None
    original_kind: str | None = None
    original_id: str | None = None
    replacement_id: str | None = None


@dataclass(frozen=True)
class Subject:
    """Whose activity it is: a campaign's (with its charity) or a charity's."""

    id: str
    name: str
    charity: Named
    proof: Proof  # its own record's


@dataclass(frozen=True)
class Activities:
    subject: Subject
    items: list[Activity]  # newest first, at most `limit`
    view: ChainView


def _scope(mirror: Mirror, campaign_hex: str | None, charity_hex: str | None) -> Select[Any]:
    """The campaign IDs in scope, as a subquery."""
    C = im.Campaign
    statement = select(C.campaign_id).where(C.deployment_id == mirror.deployment_id)
    if campaign_hex is not None:
        return statement.where(C.campaign_id == campaign_hex)
    return statement.where(C.charity_id == charity_hex)


def _newest(statement: Any, model: Any, view: ChainView, limit: int) -> Any:
    """`statement` (a select of any columns) cut to its newest `limit` final rows."""
    return (
        statement.where(model.block_number <= view.finalized_block)
        .order_by(model.block_number.desc(), model.log_index.desc())
        .limit(limit)
    )


def _read(
    mirror: Mirror,
    connection: Connection,
    view: ChainView,
    campaign_hex: str | None,
    charity_hex: str,
    limit: int,
) -> list[Activity]:
    dep = mirror.deployment_id
    C, B, E, R, K, EV = im.Campaign, im.Disbursement, im.Evidence, im.Refund, im.Correction, im.Event
    scope = _scope(mirror, campaign_hex, charity_hex)
    campaigns = {
        row.campaign_id: row
        for row in connection.execute(
            select(C.campaign_id, C.name, C.currency).where(C.deployment_id == dep, C.campaign_id.in_(scope))
        )
    }
    paid = connection.execute(
        _newest(select(B).where(B.deployment_id == dep, B.campaign_id.in_(scope)), B, view, limit)
    ).all()
    anchored = connection.execute(
        _newest(
            select(E, B.campaign_id, B.amount, B.recipient, B.purpose)
            .join(B, (B.deployment_id == E.deployment_id) & (B.disbursement_id == E.disbursement_id))
            .where(E.deployment_id == dep, B.campaign_id.in_(scope)),
            E,
            view,
            limit,
        )
    ).all()
    refunded = connection.execute(
        _newest(select(R).where(R.deployment_id == dep, R.campaign_id.in_(scope)), R, view, limit)
    ).all()
    closed = connection.execute(
        _newest(
            select(EV.block_number, EV.tx_hash, EV.log_index, EV.campaign_id).where(
                EV.deployment_id == dep, EV.name == "CampaignClosed", EV.campaign_id.in_(scope)
            ),
            EV,
            view,
            limit,
        )
    ).all()
    # A correction names its charity and its original record; a campaign's are those of the
    # campaign itself and of its donations, refunds and disbursements.
    if campaign_hex is None:
        about = K.charity_id == charity_hex
    else:
        D = im.Donation
        about = or_(
            K.original_id == campaign_hex,
            K.original_id.in_(
                select(D.donation_id).where(D.deployment_id == dep, D.campaign_id == campaign_hex)
            ),
            K.original_id.in_(
                select(R.refund_id).where(R.deployment_id == dep, R.campaign_id == campaign_hex)
            ),
            K.original_id.in_(
                select(B.disbursement_id).where(B.deployment_id == dep, B.campaign_id == campaign_hex)
            ),
        )
    corrected = connection.execute(
        _newest(select(K).where(K.deployment_id == dep, K.charity_id == charity_hex, about), K, view, limit)
    ).all()
    rows = [*paid, *anchored, *refunded, *closed, *corrected]
    blocks = block_info(mirror, connection, {row.block_number for row in rows})

    def campaign(campaign_hex: str | None) -> tuple[Named | None, str | None]:
        row = campaigns.get(campaign_hex) if campaign_hex else None
        return (
            (Named(id=ids.from_bytes32(row.campaign_id), name=row.name), row.currency)
            if row
            else (None, None)
        )

    def disbursement(kind: str, row: Any) -> Activity:
        named, currency = campaign(row.campaign_id)
        return Activity(
            kind=kind,
            proof=proof(view, blocks, row),
            campaign=named,
            currency=currency,
            amount=row.amount,
            disbursement_id=ids.from_bytes32(row.disbursement_id),
            recipient=row.recipient,
            purpose=row.purpose,
            document=row.document_hash[2:] if kind == "evidence" else None,
        )

    items = [disbursement("disbursement", row) for row in paid]
    items += [disbursement("evidence", row) for row in anchored]
    for row in refunded:
        named, currency = campaign(row.campaign_id)
        items.append(
            Activity(
                kind="refund",
                proof=proof(view, blocks, row),
                campaign=named,
                currency=currency,
                amount=row.amount,
                refund_id=ids.from_bytes32(row.refund_id),
                donation_id=ids.from_bytes32(row.donation_id),
                reason=row.reason,
            )
        )
    for row in closed:
        named, currency = campaign(row.campaign_id)
        items.append(
            Activity(kind="closure", proof=proof(view, blocks, row), campaign=named, currency=currency)
        )
    for row in corrected:
        kinds = ids.RECORD_KINDS
        kind = kinds[row.original_kind] if 0 <= row.original_kind < len(kinds) else "record"
        named, currency = campaign(campaign_hex)
        items.append(
            Activity(
                kind="correction",
                proof=proof(view, blocks, row),
                campaign=named,
                currency=currency,
                correction_id=ids.from_bytes32(row.correction_id),
                original_kind=kind,
                original_id=ids.from_bytes32(row.original_id),
                replacement_id=ids.from_bytes32(row.replacement_id) if row.replacement_id else None,
                reason=row.reason,
            )
        )
    items.sort(key=lambda a: (a.proof.block_number, a.proof.log_index), reverse=True)
    return items[:limit]


def of_campaign(mirror: Mirror, campaign_id: str, limit: int) -> Activities:
    """The newest `limit` final records of a campaign; NotFound if it is not mirrored."""
    campaign_hex = ids.to_hex(campaign_id, "campaign")
    C, CH = im.Campaign, im.Charity
    with mirror.engine.connect() as connection:
        row = connection.execute(
            select(
                C.name, C.charity_id, CH.name.label("charity_name"), C.block_number, C.tx_hash, C.log_index
            )
            .join(CH, (CH.deployment_id == C.deployment_id) & (CH.charity_id == C.charity_id))
            .where(C.deployment_id == mirror.deployment_id, C.campaign_id == campaign_hex)
        ).one_or_none()
        if row is None:
            raise NotFound("campaign not found (or not mirrored yet)")
        view = chain_view(mirror, connection)
        items = _read(mirror, connection, view, campaign_hex, row.charity_id, limit)
        own = proof(view, block_info(mirror, connection, {row.block_number}), row)
    charity = Named(id=ids.from_bytes32(row.charity_id), name=row.charity_name)
    return Activities(Subject(ids.from_bytes32(campaign_hex), row.name, charity, own), items, view)


def of_charity(mirror: Mirror, charity_id: str, limit: int) -> Activities:
    """The newest `limit` final records across a charity's campaigns; NotFound if it is
    not mirrored."""
    charity_hex = ids.to_hex(charity_id, "charity")
    CH = im.Charity
    with mirror.engine.connect() as connection:
        row = connection.execute(
            select(CH.name, CH.block_number, CH.tx_hash, CH.log_index).where(
                CH.deployment_id == mirror.deployment_id, CH.charity_id == charity_hex
            )
        ).one_or_none()
        if row is None:
            raise NotFound("charity not found (or not mirrored yet)")
        view = chain_view(mirror, connection)
        items = _read(mirror, connection, view, None, charity_hex, limit)
        own = proof(view, block_info(mirror, connection, {row.block_number}), row)
    charity = Named(id=ids.from_bytes32(charity_hex), name=row.name)
    return Activities(Subject(charity.id, row.name, charity, own), items, view)
