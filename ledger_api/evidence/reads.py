"""What the ledger and this service know of a document: its anchors, copies and
withdrawals (from the mirror) and its stored description (evidence_files); the one place
a restricted original is opened, and its read recorded in the access log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from cryptography.exceptions import InvalidTag
from fastapi import Request
from sqlalchemy import Connection, String, bindparam, cast, literal_column, null, select, union_all

from ledger_api.core import documents, ids
from ledger_api.core.access_log import Trace
from ledger_api.core.errors import Problem
from ledger_api.core.models import EvidenceFile
from ledger_api.core.security import Principal
from ledger_api.evidence.schemas import Anchor, CopyLink, EvidenceAnchors, Withdrawal
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror
from ledger_api.mirror.proofs import ChainView, block_info, chain_view, proof

ROUTE = "/v1/evidence/{sha256}"


@dataclass
class Found:
    sha256: str
    anchors: EvidenceAnchors
    file: Any | None  # the EvidenceFile row, if this service describes the document
    charity_hex: str | None
    withdrawals: list[Withdrawal] = field(default_factory=list)


@dataclass
class Related:
    """Copies, originals and withdrawals of a set of documents, by document hash (0x)."""

    copies: dict[str, list[Any]] = field(default_factory=dict)  # original -> link rows
    original: dict[str, Any] = field(default_factory=dict)  # copy -> its link row
    withdrawn: dict[str, list[Any]] = field(default_factory=dict)  # document -> withdrawal rows
    files: dict[str, Any] = field(default_factory=dict)  # sha256 (bare) -> EvidenceFile row

    def blocks(self) -> set[int]:
        rows = [*self.original.values(), *(r for rs in self.withdrawn.values() for r in rs)]
        rows += [r for rs in self.copies.values() for r in rs]
        return {r.block_number for r in rows}


def _links_and_withdrawals() -> Any:
    """Links and withdrawals of some documents in one query (built once, see
    `donations.trace`): rows with every column of both, `kind` saying which."""
    L, W = im.EvidenceLink, im.EvidenceWithdrawal
    hashes: Any = bindparam("hashes", expanding=True)
    nothing = cast(null(), String)
    links = select(
        literal_column("'link'", String).label("kind"),
        L.disbursement_id,
        L.original_hash,
        L.copy_hash,
        nothing.label("document_hash"),
        nothing.label("reason"),
        L.block_number,
        L.tx_hash,
        L.log_index,
    ).where(L.deployment_id == bindparam("deployment"), L.original_hash.in_(hashes) | L.copy_hash.in_(hashes))
    withdrawals = select(
        literal_column("'withdrawal'", String),
        W.disbursement_id,
        nothing,
        nothing,
        W.document_hash,
        W.reason,
        W.block_number,
        W.tx_hash,
        W.log_index,
    ).where(W.deployment_id == bindparam("deployment"), W.document_hash.in_(hashes))
    both = union_all(links, withdrawals).subquery()
    return select(both).order_by(both.c.block_number, both.c.log_index)


_LINKS_AND_WITHDRAWALS = _links_and_withdrawals()


def related(
    mirror: Mirror, connection: Connection, hashes: set[str], described: dict[str, Any] | None = None
) -> Related:
    """Links, withdrawals and descriptions of these documents (0x hashes): links and
    withdrawals in one query, descriptions in another unless the caller read them with the
    anchors (`described`, by bare SHA-256: see `donations.trace.evidence_of`)."""
    out = Related()
    if not hashes:
        return out
    wanted = sorted(hashes)
    for row in connection.execute(
        _LINKS_AND_WITHDRAWALS, {"deployment": mirror.deployment_id, "hashes": wanted}
    ):
        if row.kind == "link":
            out.copies.setdefault(row.original_hash, []).append(row)
            out.original[row.copy_hash] = row
        else:
            out.withdrawn.setdefault(row.document_hash, []).append(row)
    if described is not None:
        out.files = described
        return out
    files = EvidenceFile.__table__
    for row in connection.execute(
        select(files).where(
            files.c.deployment_id == mirror.deployment_id, files.c.sha256.in_([h[2:] for h in wanted])
        )
    ):
        out.files[row.sha256] = row
    return out


def copy_link(view: ChainView, blocks: dict[int, tuple[str, int]], row: Any) -> CopyLink:
    return CopyLink(
        original_sha256=row.original_hash[2:], copy_sha256=row.copy_hash[2:], proof=proof(view, blocks, row)
    )


def withdrawal(view: ChainView, blocks: dict[int, tuple[str, int]], row: Any) -> Withdrawal:
    return Withdrawal(
        disbursement_id=ids.from_bytes32(row.disbursement_id),
        reason=row.reason,
        proof=proof(view, blocks, row),
    )


def document(mirror: Mirror, sha256: str) -> Found:
    """Everything known of one document, by its (bare, lower-case) SHA-256."""
    E = im.Evidence
    key = "0x" + sha256
    with mirror.engine.connect() as connection:
        anchors = connection.execute(
            select(E.disbursement_id, E.block_number, E.tx_hash, E.log_index).where(
                E.deployment_id == mirror.deployment_id, E.document_hash == key
            )
        ).all()
        R = im.Report  # a campaign's report is anchored the same way (contract 2.3.0)
        reports = connection.execute(
            select(R.report_id, R.campaign_id, R.block_number, R.tx_hash, R.log_index).where(
                R.deployment_id == mirror.deployment_id, R.document_hash == key
            )
        ).all()
        links = related(mirror, connection, {key})
        view = chain_view(mirror, connection)
        numbers = {a.block_number for a in anchors} | {r.block_number for r in reports}
        blocks = block_info(mirror, connection, numbers | links.blocks())
        described = links.files.get(sha256)
        charity_hex = described.charity_id if described is not None else None
    withdrawals = [withdrawal(view, blocks, row) for row in links.withdrawn.get(key, [])]
    original = links.original.get(key)
    restricted = described is not None and described.visibility == documents.RESTRICTED
    stored = not withdrawals and (
        documents.sealed_path(mirror.settings.evidence_path, sha256).is_file()
        if restricted
        else documents.public_path(mirror.settings.evidence_path, sha256).is_file()
    )
    facts = EvidenceAnchors(
        sha256=sha256,
        stored=stored,
        visibility=described.visibility if described is not None else None,
        anchored=[
            Anchor(disbursement_id=ids.from_bytes32(a.disbursement_id), proof=proof(view, blocks, a))
            for a in anchors
        ]
        + [
            Anchor(
                report_id=ids.from_bytes32(r.report_id),
                campaign_id=ids.from_bytes32(r.campaign_id),
                proof=proof(view, blocks, r),
            )
            for r in reports
        ],
        redacted_copies=[copy_link(view, blocks, row) for row in links.copies.get(key, [])],
        redacted_copy_of=copy_link(view, blocks, original) if original is not None else None,
        withdrawn=withdrawals,
    )
    return Found(sha256, facts, described, charity_hex, withdrawals)


def read_restricted(
    mirror: Mirror, request: Request, principal: Principal | None, found: Found
) -> bytes | None:
    """A restricted original's bytes for a caller who may read them (the owning charity,
    admin, an auditor whose key covers the charity), else None. Every authenticated
    attempt, served or refused, leaves its row in the access log; the anonymous public
    leaves none (it reads nothing)."""
    if principal is None or found.charity_hex is None or found.file is None:
        return None
    trace = Trace(mirror.engine, principal, request.method, ROUTE)
    charity = ids.from_bytes32(found.charity_hex)
    if not principal.can_read(found.charity_hex):
        trace.refused(charity, None, 404)
        return None
    path = documents.sealed_path(mirror.settings.evidence_path, found.sha256)
    if not path.is_file():
        return None
    try:
        plain = documents.KeyRing.of(mirror.settings).open(
            found.file.key_id or "", found.sha256, path.read_bytes()
        )
    except (documents.KeyRingError, InvalidTag):
        trace.refused(charity, None, KeyMissing.status)
        raise KeyMissing(
            "this document is sealed under a key this service does not hold: LEDGER_EVIDENCE_KEYS"
            " must keep every key until `ledger evidence rotate-keys` has re-sealed under the new one"
        ) from None
    trace.served(charity, None, [found.sha256], 1)
    return plain


class KeyMissing(Problem):
    status, kind, title = 503, "evidence-key-missing", "The document's key is not configured"


def disposition(kind: str, filename: str) -> str:
    """Content-Disposition with the original name: an ASCII fallback and the UTF-8 name
    (RFC 6266, RFC 8187), so a phone saves the invoice as 发票.pdf, not as its hash."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename)
    return f"{kind}; filename=\"{fallback or 'document'}\"; filename*=UTF-8''{quote(filename, safe='')}"
