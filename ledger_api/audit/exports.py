"""Exports of a charity's or a campaign's ledger (or the whole deployment's): CSV and
JSON of the full audit trail, and IATI 2.03 activity XML (one activity per campaign).

Every export streams: rows are read from the database in slices and written out as
they come, so an export of millions of records never holds the ledger in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import and_, select

from ledger_api.audit import iati, trail
from ledger_api.audit.scope import Scope
from ledger_api.core import ids
from ledger_api.core.errors import NotFound
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror
from ledger_api.mirror.proofs import chain_view

FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "json": ("application/json", "json"),
    "iati": ("application/xml", "xml"),
}
CSV_COLUMNS = (
    "block_number",
    "log_index",
    "kind",
    "charity_id",
    "campaign_id",
    "record_id",
    "related_id",
    "amount",
    "currency",
    "recipient",
    "purpose",
    "reason",
    "document_hash",
    "sender",
    "signed_by",
    "tx_hash",
    "block_hash",
    "recorded_at",
    "final",
    "data",
)
# The record an event is about, and the one it refers to, by event.
_RECORD = {
    "charity_registered": ("charity_id", None),
    "operator_added": ("charity_id", "account"),
    "operator_removed": ("charity_id", "account"),
    "campaign_created": ("campaign_id", None),
    "campaign_closed": ("campaign_id", None),
    "donation_recorded": ("donation_id", None),
    "donation_refunded": ("refund_id", "donation_id"),
    "disbursement_recorded": ("disbursement_id", None),
    "donation_allocated": ("disbursement_id", "donation_id"),
    "evidence_anchored": ("disbursement_id", "document_hash"),
    "correction_recorded": ("correction_id", "original_id"),
    "campaign_end_set": ("campaign_id", None),
    "report_published": ("report_id", "campaign_id"),
    "remaining_funds_disposed": ("disposal_id", "target_campaign_id"),
    # A relayed call: its nonce, and the charity operator whose signature the contract checked.
    "signed_call_executed": ("nonce", "operator"),
    # The deployment's own access-control and pause events (no charity's).
    "role_granted": ("account", "role"),
    "role_revoked": ("account", "role"),
    "role_admin_changed": ("role", "new_admin_role"),
    "paused": ("account", None),
    "unpaused": ("account", None),
}
SLICE = 500  # entries per chunk written out
# A cell a spreadsheet would run as a formula (or that starts with a control character that
# hides what follows) starts with one of these; OWASP's "CSV injection" advice.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def spreadsheet_safe(value: object) -> object:
    """A text cell a spreadsheet shows as text: one starting like a formula gets a leading
    apostrophe (Excel, LibreOffice and Google Sheets show the rest verbatim). Numbers and
    booleans written by the service itself are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def filename(scope: Scope, fmt: str) -> str:
    described = scope.describe()
    name = described["campaign_id"] or described["charity_id"] or "ledger"
    return f"{name}.{FORMATS[fmt][1]}"


def _currencies(mirror: Mirror) -> dict[str, str]:
    with mirror.engine.connect() as connection:
        return {
            ids.from_bytes32(campaign): currency
            for campaign, currency in connection.execute(
                select(im.Campaign.campaign_id, im.Campaign.currency).where(
                    im.Campaign.deployment_id == mirror.deployment_id
                )
            )
        }


def _entries(mirror: Mirror, scope: Scope) -> Iterator[dict[str, Any]]:
    with mirror.engine.connect() as connection:
        view = chain_view(mirror, connection)
        yield from trail.stream(connection, view, trail.statement(mirror, scope))


def csv_export(mirror: Mirror, scope: Scope) -> Iterator[bytes]:
    currencies = _currencies(mirror)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # so spreadsheet programs read the UTF-8 (Chinese names) right
    writer.writerow(CSV_COLUMNS)
    for n, entry in enumerate(_entries(mirror, scope), start=1):
        data, proof = entry["data"], entry["proof"]
        record, related = _RECORD.get(entry["kind"], (None, None))
        writer.writerow(
            spreadsheet_safe(cell)
            for cell in (
                proof["block_number"],
                proof["log_index"],
                entry["kind"],
                entry["charity_id"] or "",
                entry["campaign_id"] or "",
                (data.get(record) or "") if record else "",
                data.get(related) if related else "",
                data.get("amount", ""),
                currencies.get(entry["campaign_id"] or "", "") if "amount" in data else "",
                data.get("recipient", ""),
                data.get("purpose", ""),
                data.get("reason", ""),
                data.get("document_hash", ""),
                entry["sender"] or "",
                entry.get("signed_by") or "",
                proof["tx_hash"],
                proof["block_hash"],
                proof["recorded_at"] or "",
                "true" if proof["final"] else "false",
                orjson.dumps(data).decode(),
            )
        )
        if n % SLICE == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def json_export(mirror: Mirror, scope: Scope) -> Iterator[bytes]:
    with mirror.engine.connect() as connection:
        view = chain_view(mirror, connection)
    head = {
        "scope": scope.describe(),
        "generated_at": datetime.now(UTC).isoformat(),
        "chain": {
            "chain_id": view.chain_id,
            "contract": view.contract,
            "indexed_block": view.indexed_block,
            "finalized_block": view.finalized_block,
        },
    }
    yield orjson.dumps(head)[:-1] + b',"entries":['
    chunk: list[bytes] = []
    count = 0
    for entry in _entries(mirror, scope):
        chunk.append(orjson.dumps(entry))
        count += 1
        if len(chunk) == SLICE:
            yield (b"," if count > SLICE else b"") + b",".join(chunk)
            chunk = []
    if chunk:
        yield (b"," if count > len(chunk) else b"") + b",".join(chunk)
    yield b'],"count":' + str(count).encode() + b"}"


def _grant_sides(mirror: Mirror, campaign_hex: str) -> dict[str, tuple[iati.Organisation, str]]:
    """For the campaign's grants out and grant donations in, the other side's organisation
    and activity identifier, by disbursement or donation ID (0x hex)."""
    G, GD, B, C, CH = im.Grant, im.GrantDonation, im.Disbursement, im.Campaign, im.Charity
    chain_id = mirror.deployment.chain_id
    dep = mirror.deployment_id
    out: dict[str, tuple[iati.Organisation, str]] = {}

    def side(charity_hex: str, name: str, campaign: str) -> tuple[iati.Organisation, str]:
        ref = iati.organisation_ref(chain_id, ids.from_bytes32(charity_hex))
        return iati.Organisation(ref, name), f"{ref}-{ids.from_bytes32(campaign)}"

    with mirror.engine.connect() as connection:
        for key, charity_hex, name, campaign in connection.execute(
            select(G.disbursement_id, G.recipient_charity_id, CH.name, G.recipient_campaign_id)
            .join(B, and_(B.deployment_id == G.deployment_id, B.disbursement_id == G.disbursement_id))
            .join(CH, and_(CH.deployment_id == G.deployment_id, CH.charity_id == G.recipient_charity_id))
            .where(G.deployment_id == dep, B.campaign_id == campaign_hex)
        ):
            out[key] = side(charity_hex, name, campaign)
        for key, charity_hex, name, campaign in connection.execute(
            select(GD.donation_id, C.charity_id, CH.name, C.campaign_id)
            .join(
                B, and_(B.deployment_id == GD.deployment_id, B.disbursement_id == GD.source_disbursement_id)
            )
            .join(C, and_(C.deployment_id == B.deployment_id, C.campaign_id == B.campaign_id))
            .join(CH, and_(CH.deployment_id == C.deployment_id, CH.charity_id == C.charity_id))
            .where(GD.deployment_id == dep, GD.campaign_id == campaign_hex)
        ):
            out[key] = side(charity_hex, name, campaign)
    return out


def _transactions(mirror: Mirror, campaign_hex: str) -> Iterator[iati.Transaction]:
    E = im.Event
    sides = _grant_sides(mirror, campaign_hex)
    query = (
        select(E.name, E.args, E.tx_hash, E.block_number, im.Block.timestamp)
        .join(im.Block, and_(im.Block.deployment_id == E.deployment_id, im.Block.number == E.block_number))
        .where(
            E.deployment_id == mirror.deployment_id,
            E.campaign_id == campaign_hex,
            E.name.in_(["DonationRecorded", "DonationRefunded", "DisbursementRecorded"]),
        )
        .order_by(E.block_number, E.log_index)
        .execution_options(yield_per=2000)
    )
    with mirror.engine.connect() as connection:
        finalized = chain_view(mirror, connection).finalized_block
        with connection.execute(query) as rows:  # closed if the export is abandoned
            for name, raw, tx_hash, block_number, ts in rows:
                args = orjson.loads(raw)
                date = datetime.fromtimestamp(ts, UTC)
                final = block_number <= finalized
                if name == "DonationRecorded":
                    other, activity = sides.get(args["donationId"], (None, None))
                    yield iati.Transaction(
                        "donation",
                        ids.from_bytes32(args["donationId"]),
                        args["amount"],
                        date,
                        tx_hash,
                        final=final,
                        counterpart=other,
                        counterpart_activity=activity,
                    )
                elif name == "DonationRefunded":
                    yield iati.Transaction(
                        "refund",
                        ids.from_bytes32(args["refundId"]),
                        args["amount"],
                        date,
                        tx_hash,
                        final=final,
                    )
                else:
                    other, activity = sides.get(args["disbursementId"], (None, None))
                    yield iati.Transaction(
                        "disbursement",
                        ids.from_bytes32(args["disbursementId"]),
                        args["amount"],
                        date,
                        tx_hash,
                        receiver=args["recipient"],
                        purpose=args["purpose"],
                        final=final,
                        counterpart=other,
                        counterpart_activity=activity,
                    )


def iati_export(mirror: Mirror, scope: Scope) -> Iterator[bytes]:
    """Campaigns are read before the first byte (an IATI document needs at least one
    activity: a scope without campaigns is a 404, not a broken stream)."""
    C, CH = im.Campaign, im.Charity
    query = (
        select(C, CH.name.label("charity_name"), im.Block.timestamp)
        .join(CH, and_(CH.deployment_id == C.deployment_id, CH.charity_id == C.charity_id))
        .join(im.Block, and_(im.Block.deployment_id == C.deployment_id, im.Block.number == C.block_number))
        .where(C.deployment_id == mirror.deployment_id)
        .order_by(C.block_number, C.log_index)
    )
    if scope.campaign_id is not None:
        query = query.where(C.campaign_id == scope.campaign_id)
    elif scope.charity_id is not None:
        query = query.where(C.charity_id == scope.charity_id)
    with mirror.engine.connect() as connection:
        campaigns = connection.execute(query).all()  # one row per campaign: small
        closing = {
            number: ts
            for number, ts in connection.execute(
                select(im.Block.number, im.Block.timestamp).where(
                    im.Block.deployment_id == mirror.deployment_id,
                    im.Block.number.in_([c.closed_block for c in campaigns if c.closed_block is not None]),
                )
            )
        }
    if not campaigns:
        raise NotFound("no campaigns in this scope: an IATI export holds one activity per campaign")
    chain_id, contract = mirror.deployment.chain_id, mirror.deployment.address

    def activities() -> Iterator[tuple[iati.Activity, Iterator[iati.Transaction]]]:
        for c in campaigns:
            charity = ids.from_bytes32(c.charity_id)
            closed = closing.get(c.closed_block) if c.closed_block is not None else None
            activity = iati.Activity(
                identifier=ids.from_bytes32(c.campaign_id),
                title=c.name,
                currency=c.currency,
                reporting_org=iati.Organisation(iati.organisation_ref(chain_id, charity), c.charity_name),
                created=datetime.fromtimestamp(c.timestamp, UTC),
                closed=datetime.fromtimestamp(closed, UTC) if closed is not None else None,
                goal=int(c.goal),
                chain_id=chain_id,
                contract=contract,
                tx_hash=c.tx_hash,
            )
            yield activity, _transactions(mirror, c.campaign_id)

    return iati.activities_xml(activities(), datetime.now(UTC))


def export(mirror: Mirror, scope: Scope, fmt: str) -> Iterator[bytes]:
    if fmt == "csv":
        return csv_export(mirror, scope)
    if fmt == "json":
        return json_export(mirror, scope)
    return iati_export(mirror, scope)
