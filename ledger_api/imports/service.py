"""Imports from bank statements: preview every row, then commit through the batch path.

1. `preview`: the file is read (`reading.read`), each row mapped (`schemas.Mapping`) and
   given a verdict before anything is sent:
   - `record`: a credit (a donation) or a debit naming a donation (`kind` "refund") that
     would be recorded;
   - `duplicate`: its bank transaction reference was imported before for this charity
     (`already-imported`, with the donation it became) or repeats inside the file
     (`duplicate-in-file`, with the first line);
   - `invalid`: the line, the column, a code and a message (`amount-too-precise`...);
   - `would_revert`: the contract's error and its arguments, from simulation. The credits
     are simulated as the batch path sends them (500 a call, `eth_call` as the charity's
     operator); a batch that reverts is halved until each offending row is found, so k
     bad rows in n cost O(k log n) calls, not n;
   - `outgoing`: a debit that is no refund: not imported, kept for the statement check.
   The donation's ID, receipt secret (a fresh salt) and commitment are fixed here; the
   payer reference is hashed into the commitment and then forgotten, never stored.
   The rows are kept sealed (AES-GCM, key derived from LEDGER_SECRET_KEY) for
   RETENTION, or until the charity deletes the import.
2. `start_commit` moves the import from `previewed` to `queued` with a conditional
   UPDATE (a second commit gets 409), and `run_commit` (a background task) claims every
   bank reference in `imported_references` (its primary key makes two racing commits
   record each bank transaction once), then sends the donations COMMIT_GROUP at a time
   through `donations.service.steps_for` and `Writes.write` (500 a transaction: 1,000 rows
   are 2 transactions, with the outbox, nonces and crash recovery of every write).
   `Writes.write` simulates every transaction again before any is sent (the preview may be
   stale); when it refuses, the offending rows are found by halving and the rest sent.
   Refunds go through `donations.service.refund`. The progress (rows sent, transactions
   mined, state) and a heartbeat (every HEARTBEAT seconds, from a thread) are kept in the
   import's row.
   A process that dies mid-commit leaves the import `queued` or `running` with a heartbeat
   that stops. The next GET of the import (`take_over`, from the route) finds it older
   than STALE, takes the import over with a conditional UPDATE on that old heartbeat (of
   two processes looking, one wins) and runs the commit again as the viewer, who is a
   writer for the charity (a sweep at start-up would have nobody to write as). Resuming
   is safe because each row's donation ID and commitment were fixed at preview: the
   references this import claimed are kept (`_claim` skips its own); a row whose donation
   is on the chain is `recorded` without sending; the outbox was finished at start-up
   (`ChainWriter.recover`), and a donation it lands while the rows are sent again makes
   that transaction revert, which `_settle_rows` tells apart by asking the chain for each
   donation. A row finally refused has its reference released. A refund is not keyed by
   a fixed ID: the one refund being sent when the process died (marked before it is sent)
   is reported `invalid` (`refund-interrupted`) with its reference kept claimed, to be
   checked by hand rather than refunded twice.
3. `report_csv`: line, bank reference, verdict, code, donation ID, campaign, amount and
   receipt secret; every text cell that a spreadsheet would run is neutralised.
4. `statement_check`: the statement's credits against the ledger's donations (below).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import secrets
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ledger_api.audit.exports import spreadsheet_safe
from ledger_api.chain.abi import encode
from ledger_api.core import amounts, ids, reference
from ledger_api.core.config import Settings
from ledger_api.core.errors import Conflict, ContractRejected, Forbidden, InvalidRequest, NotFound, Problem
from ledger_api.core.formats import minor_unit_exponent
from ledger_api.core.hexes import hex0x, pad32
from ledger_api.core.models import ImportedReference, StatementImport
from ledger_api.core.schemas import plain_text
from ledger_api.core.security import Principal
from ledger_api.donations import service as donations
from ledger_api.imports import reading
from ledger_api.imports.schemas import (
    CampaignTotal,
    ImportPreview,
    ImportSummary,
    LedgerDonation,
    Mapping,
    Progress,
    RowVerdict,
    StatementCheck,
    StatementRow,
)
from ledger_api.mirror import tables as im
from ledger_api.transactions.service import Writes

log = logging.getLogger("ledger_api.imports")

RETENTION = timedelta(days=30)  # how long the sealed rows (receipt secrets) are kept
PREVIEW_ITEMS = 200  # rows in an answer: the problems first
REFUND_REASON = "refund (bank statement)"
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日")
_TIME_SUFFIXES = ("", " %H:%M:%S", " %H:%M", "T%H:%M:%S")
_ZERO32 = bytes(32)


class ImportRefused(InvalidRequest):
    """The file or its mapping cannot be imported (422): `code` says why."""

    kind, title = "import-refused", "This file cannot be imported"


class ImportConflict(Conflict):
    kind, title = "import-state", "The import is not in a state that allows this"


# ------------------------------------------------------------------ sealing


def _key(settings: Settings) -> bytes:
    """The rows' AES-GCM key: derived from LEDGER_SECRET_KEY (`Settings.signing_key`)."""
    return settings.signing_key("import rows")


def seal(settings: Settings, rows: list[dict[str, Any]]) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_key(settings)).encrypt(nonce, json.dumps(rows).encode(), b"import rows")


def unseal(settings: Settings, sealed: bytes) -> list[dict[str, Any]]:
    plain = AESGCM(_key(settings)).decrypt(sealed[:12], sealed[12:], b"import rows")
    rows: list[dict[str, Any]] = json.loads(plain)
    return rows


# ------------------------------------------------------------------ preview


def charity_of(principal: Principal) -> str:
    """The charity whose import this is: imports are made with a charity's key."""
    if principal.role != "charity" or principal.charity_id is None:
        raise Forbidden("imports are made with a charity key (they record that charity's donations)")
    return principal.charity_id


class _Campaigns:
    """Campaign facts from the chain, once each: its charity and currency exponent, or
    None when it does not exist or belongs to another charity (the same to the caller)."""

    def __init__(self, writes: Writes, charity_hex: str) -> None:
        self.writes, self.charity_hex = writes, charity_hex
        self._known: dict[str, tuple[str, int] | None] = {}

    def get(self, campaign_id: str) -> tuple[str, int] | None:
        if campaign_id not in self._known:
            try:
                view = self.writes.view(
                    "campaignOf", ids.to_bytes32(campaign_id, "campaign"), missing="campaign"
                )
            except NotFound:
                self._known[campaign_id] = None
            else:
                currency = bytes(view[1]).decode("ascii", "replace")
                mine = hex0x(view[0]).lower() == self.charity_hex.lower()
                self._known[campaign_id] = (currency, minor_unit_exponent(currency)) if mine else None
        return self._known[campaign_id]


def _parse_date(text: str, fmt: str | None) -> date:
    text = " ".join(text.split())
    formats = [fmt] if fmt else [d + t for d in _DATE_FORMATS for t in _TIME_SUFFIXES]
    for candidate in formats:
        try:
            return datetime.strptime(text, candidate).date()
        except ValueError:
            continue
    raise ValueError(text)


def _invalid(row: dict[str, Any], code: str, message: str, column: str | None, **params: Any) -> None:
    row.update(verdict="invalid", code=code, column=column, message=message, params=params)


def _evaluate(
    line: int, cells: list[str], index: dict[str, int], mapping: Mapping, campaigns: _Campaigns
) -> dict[str, Any]:
    def cell(name: str | None) -> str:
        if name is None:
            return ""
        i = index[name]
        return cells[i] if i < len(cells) else ""

    bank_ref = cell(mapping.bank_reference)
    row: dict[str, Any] = {
        "line": line,
        "bank_reference": bank_ref[:200],
        "verdict": "record",
        "code": None,
        "column": None,
        "params": {},
        "message": None,
        "kind": None,
        "campaign_id": None,
        "amount": None,
        "date": None,
        "balance": None,
        "donation_id": None,
    }
    campaign = mapping.campaign_id or cell(mapping.campaign_column).strip()
    known = None
    if campaign:
        try:
            campaign = ids.from_bytes32(ids.to_bytes32(campaign, "campaign"))
        except ValueError:
            _invalid(
                row, "campaign-id-invalid", f"{campaign[:40]!r} is not a campaign ID", mapping.campaign_column
            )
            return row
        row["campaign_id"] = campaign
        known = campaigns.get(campaign)
    exponent = known[1] if known else 2
    try:
        amount = _amount(cell, mapping, exponent)
    except amounts.AmountError as exc:
        column = mapping.amount or (mapping.credit if cell(mapping.credit).strip() else mapping.debit)
        _invalid(row, exc.code, f"line {line}, column {column!r}: {exc.message}", column, **exc.params)
        return row
    row["amount"] = amount
    if mapping.balance is not None and cell(mapping.balance).strip():
        try:
            row["balance"] = amounts.signed(cell(mapping.balance), exponent, minor=mapping.units == "minor")
        except amounts.AmountError as exc:
            _invalid(
                row, exc.code, f"line {line}, column {mapping.balance!r}: {exc.message}", mapping.balance
            )
            return row
    if mapping.date is not None:
        text = cell(mapping.date) + (" " + cell(mapping.time) if mapping.time else "")
        try:
            row["date"] = _parse_date(text, mapping.date_format).isoformat()
        except ValueError:
            _invalid(
                row, "date-invalid", f"line {line}: {text[:40]!r} is not a date", mapping.date, text=text[:40]
            )
            return row
    if not bank_ref.strip():
        _invalid(
            row,
            "bank-reference-missing",
            f"line {line}: no bank transaction reference",
            mapping.bank_reference,
        )
        return row
    try:
        plain_text(bank_ref)
        if len(bank_ref) > 200:
            raise ValueError("over 200 characters")
    except ValueError as exc:
        _invalid(row, "bank-reference-invalid", f"line {line}: {exc}", mapping.bank_reference)
        return row
    if amount == 0:
        _invalid(row, "amount-zero", f"line {line}: the amount is zero", mapping.amount or mapping.credit)
        return row
    if amount < 0:
        refund_of = cell(mapping.refund_of).strip()
        if not refund_of:
            row.update(
                verdict="outgoing", kind="debit", code="outgoing", message="a payment out: not imported"
            )
            return row
        try:
            row["refund_of"] = ids.from_bytes32(ids.to_bytes32(refund_of, "donation"))
        except ValueError:
            _invalid(
                row,
                "donation-id-invalid",
                f"line {line}: {refund_of[:40]!r} is not a donation ID",
                mapping.refund_of,
            )
            return row
        row["kind"] = "refund"
        return row
    row["kind"] = "donation"
    if not campaign:
        _invalid(row, "campaign-missing", f"line {line}: no campaign", mapping.campaign_column)
        return row
    channel = cell(mapping.channel_column).strip().lower() if mapping.channel_column else mapping.channel
    if (
        not channel
        or not all(c.isascii() and (c.isalnum() or c in "_-") for c in channel)
        or len(channel) > 32
    ):
        _invalid(
            row,
            "channel-invalid",
            f"line {line}: {channel[:40]!r} is not a channel name",
            mapping.channel_column,
        )
        return row
    try:
        payer = reference.parse(plain_text(cell(mapping.payer_reference)))
    except (ValueError, reference.BadReference) as exc:
        _invalid(row, "payer-reference-invalid", f"line {line}: {exc}", mapping.payer_reference)
        return row
    row["channel"] = channel
    row["payer"] = payer  # dropped once hashed (_fix_donations); never stored
    return row


def _amount(cell: Any, mapping: Mapping, exponent: int) -> int:
    minor = mapping.units == "minor"
    if mapping.amount is not None:
        return amounts.signed(cell(mapping.amount), exponent, minor=minor)
    credit, debit = cell(mapping.credit).strip(), cell(mapping.debit).strip()
    if credit and amounts.signed(credit, exponent, minor=minor) != 0:
        return abs(amounts.signed(credit, exponent, minor=minor))
    if debit:
        return -abs(amounts.signed(debit, exponent, minor=minor))
    raise amounts.AmountError("empty", exponent)


def _fix_donations(rows: list[dict[str, Any]]) -> None:
    """Give each donation to record its ID, receipt secret and commitment; forget the payer."""
    for row in rows:
        payer = row.pop("payer", None)
        if row["verdict"] == "record" and row["kind"] == "donation":
            salt = secrets.token_bytes(32)
            row["donation_id"] = ids.new("donation")
            row["secret"] = hex0x(salt)
            row["commitment"] = hex0x(reference.commitment(salt, payer))
        elif row["verdict"] == "record" and row["kind"] == "refund":
            row["donation_id"] = ids.new("refund")


def _onchain(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        pad32(row["donation_id"]),
        ids.to_bytes32(row["campaign_id"], "campaign"),
        row["amount"],
        bytes.fromhex(row["commitment"][2:]),
        pad32(row["channel"]),
        _ZERO32,
    )


def _reverting(
    writes: Writes, signer: str, rows: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The rows whose donations would revert, each with the contract's error: every batch
    as the batch path sends it, halved while it reverts (no recursion: a work list)."""
    found: list[tuple[dict[str, Any], dict[str, Any]]] = []
    pending = [rows[i : i + donations.CHAIN_BATCH] for i in range(0, len(rows), donations.CHAIN_BATCH)]
    while pending:
        chunk = pending.pop()
        try:
            writes.writer.check(signer, donations.batch_call([_onchain(r) for r in chunk]))
        except ContractRejected as exc:
            if len(chunk) == 1:
                found.append((chunk[0], exc.extra.get("error") or {"name": "Reverted", "args": {}}))
            else:
                pending += [chunk[: len(chunk) // 2], chunk[len(chunk) // 2 :]]
    return found


def _refund_call(row: dict[str, Any]) -> Any:
    return encode(
        "refundDonation",
        pad32(row["donation_id"]),
        ids.to_bytes32(row["refund_of"], "donation"),
        -row["amount"],
        REFUND_REASON,
    )


def _simulate(writes: Writes, signer: str, rows: list[dict[str, Any]]) -> None:
    """Mark every row to record that the contract would refuse `would_revert`."""
    credits = [r for r in rows if r["verdict"] == "record" and r["kind"] == "donation"]
    for row, error in _reverting(writes, signer, credits):
        _reverts(row, error)
    for row in rows:
        if row["verdict"] == "record" and row["kind"] == "refund":
            try:
                writes.writer.check(signer, _refund_call(row))
            except ContractRejected as exc:
                _reverts(row, exc.extra.get("error") or {"name": "Reverted", "args": {}})


def _reverts(row: dict[str, Any], error: dict[str, Any]) -> None:
    args = ", ".join(f"{k}={v}" for k, v in error.get("args", {}).items())
    row.update(
        verdict="would_revert",
        code=error["name"],
        params=dict(error.get("args", {})),
        message=f"line {row['line']}: the ledger contract would refuse it: {error['name']}({args})",
        donation_id=None,
        secret=None,
    )


def _imported(engine: Engine, deployment_id: int, charity_hex: str, refs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    with engine.connect() as connection:
        for i in range(0, len(refs), 500):
            found.update(
                connection.execute(
                    select(ImportedReference.bank_reference, ImportedReference.donation_id).where(
                        ImportedReference.deployment_id == deployment_id,
                        ImportedReference.charity_id == charity_hex,
                        ImportedReference.bank_reference.in_(refs[i : i + 500]),
                    )
                ).all()
            )
    return found


def _mark_duplicates(rows: list[dict[str, Any]], imported: dict[str, str]) -> None:
    first: dict[str, int] = {}
    for row in rows:
        if row["verdict"] in ("invalid",):
            continue
        ref = row["bank_reference"]
        if ref in imported:
            row.update(
                verdict="duplicate",
                code="already-imported",
                params={"donation_id": imported[ref]},
                message=f"line {row['line']}: bank reference {ref!r} was imported before ({imported[ref]})",
                donation_id=imported[ref],
                secret=None,
            )
        elif ref in first and row["verdict"] != "outgoing":
            row.update(
                verdict="duplicate",
                code="duplicate-in-file",
                params={"first_line": first[ref]},
                message=f"line {row['line']}: bank reference {ref!r} repeats line {first[ref]}",
            )
        else:
            first.setdefault(ref, row["line"])


def preview(
    writes: Writes, principal: Principal, filename: str, data: bytes, mapping: Mapping
) -> ImportPreview:
    """Read, map, check and simulate every row; store the import (sealed); nothing is sent."""
    charity_hex = charity_of(principal)
    signer = writes.operator_for(principal, charity_hex)
    try:
        table = reading.read(data, filename)
    except reading.UnreadableFile as exc:
        raise ImportRefused(exc.message, code=exc.code, params=exc.params) from None
    index: dict[str, int] = {}
    for i, name in enumerate(table.header):
        index.setdefault(name, i)
    missing = [c for c in mapping.columns() if c not in index]
    if missing:
        raise ImportRefused(
            f"the header (line {table.header_line}) has no column {missing[0]!r}",
            code="column-missing",
            params={"column": missing[0], "header": table.header[:50]},
        )
    campaigns = _Campaigns(writes, charity_hex)
    rows = [_evaluate(line, cells, index, mapping, campaigns) for line, cells in table.rows]
    for row in rows:
        if (
            row["kind"] == "donation"
            and row["verdict"] == "record"
            and campaigns.get(row["campaign_id"]) is None
        ):
            _reverts(row, {"name": "CampaignNotFound", "args": {"campaignId": row["campaign_id"]}})
    refs = sorted({r["bank_reference"] for r in rows if r["verdict"] != "invalid"})
    _mark_duplicates(rows, _imported(writes.engine, writes.deployment_id, charity_hex, refs))
    _fix_donations(rows)
    _simulate(writes, signer, rows)
    now = datetime.now(UTC)
    summary = {
        "encoding": table.encoding,
        "delimiter": table.delimiter,
        "header_line": table.header_line,
        "columns": table.header,
        "currencies": {c: v[0] for c, v in campaigns._known.items() if v},
        "rows": len(rows),
    }
    import_id = str(uuid.uuid4())
    forget_expired(writes.engine)
    with writes.engine.begin() as connection:
        connection.execute(
            insert(StatementImport).values(
                id=import_id,
                deployment_id=writes.deployment_id,
                charity_id=charity_hex,
                filename=filename[:200],
                state="previewed",
                summary=json.dumps(summary),
                sealed_rows=seal(writes.settings, rows),
                rows_sent=0,
                transactions=0,
                created_at=now,
                expires_at=now + RETENTION,
            )
        )
    return show(writes, principal, import_id)


def forget_expired(engine: Engine) -> int:
    """Delete imports past their RETENTION (their sealed rows hold receipt secrets); the
    claims of committed rows stay, so a statement is never imported twice. Run at each
    preview and by the retention job (`ledger retention`)."""
    with engine.begin() as connection:
        return int(
            connection.execute(
                delete(StatementImport).where(StatementImport.expires_at < datetime.now(UTC))
            ).rowcount
        )


# ------------------------------------------------------------------ reading an import


def _load(writes: Writes, principal: Principal, import_id: str) -> StatementImport:
    """The import, if it is the caller's charity's and not expired; else 404."""
    charity_hex = charity_of(principal)
    with writes.engine.connect() as connection:
        found = connection.execute(
            select(StatementImport).where(
                StatementImport.id == import_id,
                StatementImport.deployment_id == writes.deployment_id,
                StatementImport.charity_id == charity_hex,
                StatementImport.expires_at >= datetime.now(UTC),
            )
        ).first()
    if found is None:
        raise NotFound("import not found")
    return found[0] if isinstance(found[0], StatementImport) else _row_object(found)


def _row_object(found: Any) -> StatementImport:
    return StatementImport(**dict(found._mapping))


def _verdict(row: dict[str, Any]) -> RowVerdict:
    return RowVerdict(
        line=row["line"],
        bank_reference=row["bank_reference"],
        verdict=row["verdict"],
        code=row["code"],
        column=row["column"],
        params=row["params"],
        message=row["message"],
        campaign_id=row["campaign_id"],
        amount=row["amount"],
        donation_id=row["donation_id"] if row["verdict"] in ("recorded", "duplicate") else None,
    )


def show(
    writes: Writes, principal: Principal, import_id: str, offset: int = 0, limit: int = PREVIEW_ITEMS
) -> ImportPreview:
    """The import's preview and progress: counts, totals, and rows (problems first)."""
    record = _load(writes, principal, import_id)
    rows = unseal(writes.settings, record.sealed_rows)
    summary = json.loads(record.summary)
    verdicts: dict[str, int] = {}
    totals: dict[str, list[int]] = {}
    for row in rows:
        verdicts[row["verdict"]] = verdicts.get(row["verdict"], 0) + 1
        if row["verdict"] in ("record", "recorded") and row["kind"] == "donation":
            total = totals.setdefault(row["campaign_id"], [0, 0])
            total[0] += 1
            total[1] += row["amount"]
    order = {"invalid": 0, "would_revert": 1, "duplicate": 2, "outgoing": 3, "record": 4, "recorded": 4}
    ordered = sorted(rows, key=lambda r: (order.get(r["verdict"], 5), r["line"]))
    to_send = sum(1 for r in rows if r["verdict"] in ("record", "recorded"))
    return ImportPreview(
        id=record.id,
        filename=record.filename,
        encoding=summary["encoding"],
        delimiter=summary["delimiter"],
        header_line=summary["header_line"],
        columns=summary["columns"],
        rows=len(rows),
        verdicts=verdicts,
        totals=[
            CampaignTotal(campaign_id=c, currency=summary["currencies"].get(c), rows=n, amount=a)
            for c, (n, a) in sorted(totals.items())
        ],
        progress=Progress(
            state=record.state,  # type: ignore[arg-type]
            rows_to_send=to_send,
            rows_sent=record.rows_sent,
            transactions=record.transactions,
            error=record.error,
        ),
        items=[_verdict(r) for r in ordered[offset : offset + limit]],
        expires_at=record.expires_at.isoformat() if record.expires_at else "",
    )


def list_imports(writes: Writes, principal: Principal, limit: int = 100) -> list[ImportSummary]:
    """The charity's imports still kept, newest first."""
    charity_hex = charity_of(principal)
    with writes.engine.connect() as connection:
        found = connection.execute(
            select(
                StatementImport.id,
                StatementImport.filename,
                StatementImport.state,
                StatementImport.summary,
                StatementImport.rows_sent,
                StatementImport.transactions,
                StatementImport.created_at,
                StatementImport.expires_at,
            )
            .where(
                StatementImport.deployment_id == writes.deployment_id,
                StatementImport.charity_id == charity_hex,
                StatementImport.expires_at >= datetime.now(UTC),
            )
            .order_by(StatementImport.created_at.desc())
            .limit(limit)
        ).all()
    return [
        ImportSummary(
            id=row.id,
            filename=row.filename,
            state=row.state,
            rows=json.loads(row.summary).get("rows", 0),
            rows_sent=row.rows_sent,
            transactions=row.transactions,
            created_at=row.created_at.isoformat(),
            expires_at=row.expires_at.isoformat(),
        )
        for row in found
    ]


def remove(writes: Writes, principal: Principal, import_id: str) -> None:
    """Delete an import and its sealed rows (the receipt secrets with them). One being
    committed is a 409 until it is done."""
    record = _load(writes, principal, import_id)
    with writes.engine.begin() as connection:
        deleted = connection.execute(
            delete(StatementImport).where(
                StatementImport.id == record.id, StatementImport.state.in_(("previewed", "done", "failed"))
            )
        ).rowcount
    if deleted != 1:
        raise ImportConflict(
            "this import is being committed; delete it once it is done", code="import-running"
        )


# ------------------------------------------------------------------ commit


def start_commit(writes: Writes, principal: Principal, import_id: str) -> None:
    record = _load(writes, principal, import_id)
    if writes.holds_own_key(record.charity_id):
        raise ImportConflict(
            (
                "this charity signs its own records, and an import cannot be signed yet: record"
                " its donations one by one (each signed with the charity's key)"
            ),
            code="self-custody",
        )
    with writes.engine.begin() as connection:
        moved = connection.execute(
            update(StatementImport)
            .where(StatementImport.id == record.id, StatementImport.state == "previewed")
            .values(state="queued", heartbeat_at=datetime.now(UTC))
        ).rowcount
    if moved != 1:
        raise ImportConflict(
            f"this import is {record.state}, not waiting to be committed", code="not-previewed"
        )


def _save(writes: Writes, import_id: str, rows: list[dict[str, Any]] | None = None, **values: Any) -> None:
    if rows is not None:
        values["sealed_rows"] = seal(writes.settings, rows)
    with writes.engine.begin() as connection:
        connection.execute(update(StatementImport).where(StatementImport.id == import_id).values(**values))


def _claim(writes: Writes, charity_hex: str, import_id: str, rows: list[dict[str, Any]]) -> None:
    """Claim each row's bank reference; a reference claimed already (another import, or a
    commit racing this one) makes its row a duplicate. The references this import claimed
    before (a resumed commit) stay its own."""
    with writes.engine.connect() as connection:
        own = set(
            connection.execute(
                select(ImportedReference.bank_reference).where(
                    ImportedReference.deployment_id == writes.deployment_id,
                    ImportedReference.charity_id == charity_hex,
                    ImportedReference.import_id == import_id,
                )
            ).scalars()
        )
    claimed = {r["line"] for r in rows if r["verdict"] == "record" and r["bank_reference"] in own}
    taken = _imported(writes.engine, writes.deployment_id, charity_hex, [r["bank_reference"] for r in rows])
    _mark_duplicates(rows, {ref: d for ref, d in taken.items() if ref not in own})
    now = datetime.now(UTC)

    def value(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "deployment_id": writes.deployment_id,
            "charity_id": charity_hex,
            "bank_reference": row["bank_reference"],
            "donation_id": row["donation_id"],
            "import_id": import_id,
            "created_at": now,
        }

    todo = [r for r in rows if r["verdict"] == "record" and r["line"] not in claimed]
    if not todo:
        return
    try:
        with writes.engine.begin() as connection:
            connection.execute(insert(ImportedReference), [value(r) for r in todo])
        return
    except IntegrityError:
        pass  # a race: claim them one by one
    for row in todo:
        try:
            with writes.engine.begin() as connection:
                connection.execute(insert(ImportedReference).values(**value(row)))
        except IntegrityError:
            taken = _imported(writes.engine, writes.deployment_id, charity_hex, [row["bank_reference"]])
            _mark_duplicates([row], taken)


def _release(writes: Writes, charity_hex: str, rows: list[dict[str, Any]]) -> None:
    refs = [r["bank_reference"] for r in rows]
    with writes.engine.begin() as connection:
        for i in range(0, len(refs), 500):
            connection.execute(
                delete(ImportedReference).where(
                    ImportedReference.deployment_id == writes.deployment_id,
                    ImportedReference.charity_id == charity_hex,
                    ImportedReference.bank_reference.in_(refs[i : i + 500]),
                )
            )


def run_commit(writes: Writes, principal: Principal, import_id: str) -> None:
    """The commit job (a background task): never raises; a failure is the import's state.
    A thread writes its heartbeat while it runs (see `take_over`)."""
    stop = threading.Event()
    beat = threading.Thread(
        target=_beat, args=(writes, import_id, stop), name="import-heartbeat", daemon=True
    )
    beat.start()
    try:
        _commit(writes, principal, import_id)
    except Problem as exc:
        _save(writes, import_id, state="failed", error=exc.detail[:500])
    except Exception:
        log.exception("import %s failed", import_id)
        _save(writes, import_id, state="failed", error="an unexpected error stopped the import (see the log)")
    finally:
        stop.set()


# Donations sent by one `Writes.write`: its transactions (500 donations each) are all
# simulated, then sent together, so they share blocks; the progress moves per group.
COMMIT_GROUP = 4 * donations.CHAIN_BATCH


def _send(
    writes: Writes, principal: Principal, signer: str, charity_hex: str, group: list[dict[str, Any]]
) -> int:
    """Send a group of donations; the number of transactions mined. `Writes.write`
    simulates every transaction first: if one would revert now (the preview is stale: a
    campaign closed since), the offending rows are found by halving, marked, their bank
    references released, and the rest sent. A transaction that reverted when mined (the
    chain changed between simulation and mining) is told apart from those that landed by
    asking the chain for each donation."""
    for attempt in range(2):
        try:
            states = writes.write(
                principal, charity_hex, "campaign", donations.steps_for([_onchain(r) for r in group]), True
            )
        except ContractRejected as exc:
            if "transaction" in exc.extra or attempt == 1:  # mined and reverted, or refused twice
                return _settle_rows(writes, charity_hex, group, exc.extra.get("error"))
            for row, error in _reverting(writes, signer, group):
                if _landed(writes, row):  # landed meanwhile (the outbox of a process that died)
                    row["verdict"] = "recorded"
                else:
                    _reverts(row, error)
            _release(writes, charity_hex, [r for r in group if r["verdict"] not in ("record", "recorded")])
            group = [r for r in group if r["verdict"] == "record"]
            if not group:
                return 0
        else:
            for row in group:
                row["verdict"] = "recorded"
            return len(states)
    return 0


def _settle_rows(
    writes: Writes, charity_hex: str, group: list[dict[str, Any]], error: dict[str, Any] | None
) -> int:
    """After a failed send: each row recorded if its donation is on chain, else reverted."""
    lost = []
    for row in group:
        if _landed(writes, row):
            row["verdict"] = "recorded"
        else:
            _reverts(row, error or {"name": "Reverted", "args": {}})
            lost.append(row)
    _release(writes, charity_hex, lost)
    landed = len(group) - len(lost)
    return -(-landed // donations.CHAIN_BATCH)


def _landed(writes: Writes, row: dict[str, Any]) -> bool:
    try:
        writes.view("donationOf", pad32(row["donation_id"]), missing="donation")
    except NotFound:
        return False
    return True


def _commit(writes: Writes, principal: Principal, import_id: str) -> None:
    record = _load(writes, principal, import_id)
    charity_hex = record.charity_id
    _save(writes, import_id, state="running", heartbeat_at=_now())
    rows = unseal(writes.settings, record.sealed_rows)
    signer = writes.operator_for(principal, charity_hex)
    _claim(writes, charity_hex, import_id, rows)
    _save(writes, import_id, rows)
    credits = [r for r in rows if r["verdict"] in ("record", "recorded") and r["kind"] == "donation"]
    if record.state == "running":  # resumed: what landed before the process died is done
        for row in credits:
            if row["verdict"] == "record" and _landed(writes, row):
                row["verdict"] = "recorded"
    done = [r for r in credits if r["verdict"] == "recorded"]
    todo = [r for r in credits if r["verdict"] == "record"]
    sent = len(done) if record.state == "running" else 0
    transactions = record.transactions if record.state == "running" else 0
    _save(writes, import_id, rows, rows_sent=sent, transactions=transactions)
    for i in range(0, len(todo), COMMIT_GROUP):
        group = todo[i : i + COMMIT_GROUP]
        transactions += _send(writes, principal, signer, charity_hex, group)
        sent += len(group)
        _save(writes, import_id, rows, rows_sent=sent, transactions=transactions)
    for row in [r for r in rows if r["verdict"] == "record" and r["kind"] == "refund"]:
        if row.get("sending"):  # the process died while this refund was sent
            row.update(
                verdict="invalid",
                code="refund-interrupted",
                params={"donation_id": row["refund_of"]},
                message=(
                    f"line {row['line']}: the service stopped while this refund was sent; check the "
                    f"refunds of donation {row['refund_of']} (its bank reference stays claimed)"
                ),
            )
            sent += 1
            _save(writes, import_id, rows, rows_sent=sent)
            continue
        row["sending"] = True
        _save(writes, import_id, rows)
        try:
            refunded, _ = donations.refund(
                writes, principal, row["refund_of"], -row["amount"], REFUND_REASON, True
            )
        except (ContractRejected, NotFound) as exc:
            _reverts(row, exc.extra.get("error") or {"name": "DonationNotFound", "args": {}})
            _release(writes, charity_hex, [row])
        else:
            row.update(verdict="recorded", donation_id=refunded["id"])
            transactions += 1
        sent += 1
        _save(writes, import_id, rows, rows_sent=sent, transactions=transactions)
    _save(writes, import_id, rows, state="done")


# ------------------------------------------------------------------ crash recovery

HEARTBEAT = 10.0  # seconds between a running commit's heartbeats


def _stale(settings: Settings) -> timedelta:
    """How old a commit's heartbeat is before another process takes the import over
    (LEDGER_IMPORT_STALE_SECONDS, default 60: several heartbeats)."""
    return timedelta(seconds=settings.import_stale_seconds)


def _now() -> datetime:
    return datetime.now(UTC)


def _beat(writes: Writes, import_id: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT):
        try:
            _save(writes, import_id, heartbeat_at=_now())
        except Exception:
            log.exception("the heartbeat of import %s failed; retrying", import_id)


def take_over(writes: Writes, principal: Principal, import_id: str) -> bool:
    """Take over a commit whose process died (its heartbeat older than `_stale`), with
    a conditional UPDATE on the heartbeat read, so one process of those that look wins.
    True when the caller must run the commit again (`run_commit`)."""
    record = _load(writes, principal, import_id)
    if record.state not in ("queued", "running"):
        return False
    beat = record.heartbeat_at
    if beat is not None and beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    if beat is not None and beat > _now() - _stale(writes.settings):
        return False
    if writes.holds_own_key(record.charity_id):
        return False
    with writes.engine.begin() as connection:
        moved = connection.execute(
            update(StatementImport)
            .where(
                StatementImport.id == record.id,
                StatementImport.state == record.state,
                StatementImport.heartbeat_at.is_(None)
                if record.heartbeat_at is None
                else StatementImport.heartbeat_at == record.heartbeat_at,
            )
            .values(heartbeat_at=_now())
        ).rowcount
    if moved == 1:
        log.warning("import %s: its commit stopped (heartbeat %s); resuming it", import_id, beat)
    return bool(moved == 1)


# ------------------------------------------------------------------ report


REPORT_COLUMNS = (
    "line",
    "bank_reference",
    "verdict",
    "code",
    "record_id",
    "campaign_id",
    "amount",
    "receipt_secret",
    "message",
)


def report_csv(writes: Writes, principal: Principal, import_id: str) -> Iterator[bytes]:
    """What became which donation: one line per row, every text cell spreadsheet-safe.
    The import is found (or NotFound raised) before the first byte is streamed."""
    record = _load(writes, principal, import_id)
    rows = unseal(writes.settings, record.sealed_rows)
    return _report_lines(rows, json.loads(record.summary)["currencies"])


def _report_lines(rows: list[dict[str, Any]], currencies: dict[str, str]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(REPORT_COLUMNS)
    for row in rows:
        exponent = minor_unit_exponent(currencies.get(row["campaign_id"] or "", "CNY"))
        recorded = row["verdict"] in ("recorded", "duplicate")
        writer.writerow(
            spreadsheet_safe(cell)
            for cell in (
                row["line"],
                row["bank_reference"],
                row["verdict"],
                row["code"] or "",
                row["donation_id"] if recorded else "",
                row["campaign_id"] or "",
                "" if row["amount"] is None else amounts.format_major(row["amount"], exponent),
                row.get("secret") or "" if row["verdict"] == "recorded" else "",
                row["message"] or "",
            )
        )
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


# ------------------------------------------------------------------ statement check


def statement_check(
    writes: Writes,
    principal: Principal,
    import_id: str,
    campaign_id: str | None,
    period_from: date | None,
    period_to: date | None,
) -> StatementCheck:
    """The statement's credits against the ledger. The period is the statement's dates
    (first to last, unless given). On the ledger side: the donations the statement's rows
    became, and every other donation of the charity (or campaign) whose block was mined in
    the period (UTC). A statement credit whose donation is not on the ledger is `missing`;
    a ledger donation in the period that no statement row became is `extra`."""
    record = _load(writes, principal, import_id)
    rows = unseal(writes.settings, record.sealed_rows)
    credits = [
        r
        for r in rows
        if r["kind"] == "donation"
        and r["verdict"] != "invalid"
        and (campaign_id is None or r["campaign_id"] == campaign_id)
    ]
    dates = sorted(r["date"] for r in rows if r["date"])
    start = period_from or (date.fromisoformat(dates[0]) if dates else None)
    end = period_to or (date.fromisoformat(dates[-1]) if dates else None)
    credits = [
        r
        for r in credits
        if r["date"] is None
        or (
            (start is None or r["date"] >= start.isoformat())
            and (end is None or r["date"] <= end.isoformat())
        )
    ]
    balances = [r["balance"] for r in rows if r["balance"] is not None]
    statement_ids = {
        r["donation_id"] for r in credits if r["donation_id"] and r["verdict"] in ("recorded", "duplicate")
    }
    statement = (
        select(
            im.Donation.donation_id,
            im.Donation.campaign_id,
            im.Donation.amount,
            im.Donation.block_number,
            im.Block.timestamp,
        )
        .join(
            im.Campaign,
            (im.Campaign.deployment_id == im.Donation.deployment_id)
            & (im.Campaign.campaign_id == im.Donation.campaign_id),
        )
        .join(
            im.Block,
            (im.Block.deployment_id == im.Donation.deployment_id)
            & (im.Block.number == im.Donation.block_number),
        )
        .where(im.Donation.deployment_id == writes.deployment_id, im.Campaign.charity_id == record.charity_id)
    )
    if campaign_id is not None:
        statement = statement.where(im.Campaign.campaign_id == hex0x(ids.to_bytes32(campaign_id, "campaign")))
    ledger: dict[str, LedgerDonation] = {}
    with writes.engine.connect() as connection:
        for donation, campaign, amount, block, timestamp in connection.execute(statement):
            readable = ids.from_bytes32(donation)
            mined = datetime.fromtimestamp(timestamp, UTC).date()
            in_period = (start is None or mined >= start) and (end is None or mined <= end)
            if in_period or readable in statement_ids:
                ledger[readable] = LedgerDonation(
                    donation_id=readable,
                    campaign_id=ids.from_bytes32(campaign),
                    amount=int(amount),
                    block_number=block,
                    timestamp=timestamp,
                )
    missing = [
        r for r in credits if r["donation_id"] not in ledger or r["verdict"] not in ("recorded", "duplicate")
    ]
    return StatementCheck(
        campaign_id=campaign_id,
        period_from=start.isoformat() if start else None,
        period_to=end.isoformat() if end else None,
        ledger_received=sum(d.amount for d in ledger.values()),
        statement_credits=sum(r["amount"] for r in credits),
        closing_balance=balances[-1] if balances else None,
        matched=len(statement_ids & set(ledger)),
        missing=[
            StatementRow(
                line=r["line"],
                bank_reference=r["bank_reference"],
                date=r["date"],
                amount=r["amount"],
                donation_id=None,
            )
            for r in missing
        ],
        extra=[d for i, d in ledger.items() if i not in statement_ids],
    )
