"""Reconciliation: re-read the chain and prove the SQL mirror has dropped, added or
altered nothing.

At the height the mirror is indexed to (its cursor), the service
1. checks the node still has the mirror's block there (the same hash);
2. re-reads every ledger event from the node and derives the records from them afresh,
   in a private in-memory database, then compares every table of the mirror with that
   derivation, row by row and field by field, for the scope asked (a campaign, a
   charity or the whole deployment), and a SHA-256 digest over each side's records;
3. asks the contract's view functions, at the same block, for every campaign, donation
   and disbursement in scope, and compares the totals (received, refunded, disbursed,
   counts; a donation's allocated and refunded; a disbursement's allocation and evidence
   counts) with the mirror's.
Step 2 catches a dropped, inserted or edited row; step 3 does not trust our own
projection code at all.

Incremental (`full=False`, the whole deployment only): each reconciliation of the
deployment stores the block range it read from the node (reconciled_ranges: the SHA-256
of its events as the node gave them, the hash of its last block). The next one checks the
last range's block hash (a block's hash covers its parents: one call vouches for every
earlier range; ranges a reorg left behind are dropped), checks that the mirror's events of
each range still hash to its digest (an edit there is a difference, without asking the
node for those blocks again), and re-derives the records from those events plus the new
blocks' events, the only ones read from the node. Step 2 then compares every table as
usual, so an edited record anywhere is still found; step 3 asks only about the records
the new events name. Node reads and view calls grow with the new events; the derivation
and the comparison (SQL and CPU) still with the ledger.

The answer lists every difference found, or is a clean bill with the block it was
checked at. A view call that reverts (or fails) for a record the mirror holds is one of
those differences.

The cursor and every mirror table are read in one snapshot (db.snapshot), so the mirror
compared is exactly the mirror at the checked height, however much the indexer writes
meanwhile.

Memory does not grow with the ledger: the derived records go to a private SQLite file in
the temporary directory (about the size of the mirror's tables, deleted at the end), and
both sides are read table by table in key order and merged a row at a time (the
comparison, the digests, the range checks); the view calls take a chunk of records at a
time. What is held whole is bounded by the differences listed (MAX_LISTED), a chunk, and
for an incremental check the values the new events name.

It runs as a background job (jobs.py), never inside a request; on the embedded chain
every chain read takes the chain in short slices that give way to requests waiting for
it (SerializedTesterProvider.background_slice). The snapshot stays open for the whole
run (a long read transaction: PostgreSQL keeps old row versions, SQLite's WAL grows until
it ends).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from eth_abi.exceptions import DecodingError
from eth_utils import to_checksum_address
from sqlalchemy import Connection, Engine, Row, String, create_engine, delete, event, insert, select
from sqlalchemy.pool import StaticPool
from web3 import Web3

from indexer.decoder import DecodedLog
from indexer.indexer import Indexer
from indexer.projections import apply_logs
from ledger_api.audit.context import Auditing
from ledger_api.audit.scope import Scope
from ledger_api.chain.abi import Call, contract_error_of, decode_contract_error, decode_result, encode
from ledger_api.chain.contract import SerializedTesterProvider
from ledger_api.chain.rpc import Rpc, RpcError
from ledger_api.core import db, ids
from ledger_api.core.hexes import hex0x, unhex
from ledger_api.core.models import Base, Deployment, ReconciledRange
from ledger_api.mirror import tables as im

MAX_LISTED = 1000  # differences listed in one answer (all are counted)
# eth_calls per JSON-RPC batch: anvil answers 200 donationOf calls in about 40 ms, so a
# batch never holds a connection (or the node) long.
VIEW_BATCH = 200
# Records whose view calls are made (and whose rows are held) at a time.
VIEW_CHUNK = 10 * VIEW_BATCH
# On the embedded chain, how long one slice of background work holds the chain: a view
# call takes ~35 ms there, so a slice is one or two calls; a request that arrives waits
# for at most that long (the slices then wait until no request is waiting).
SLICE_SECONDS = 0.05
# Events of the checked ranges replayed into the private database per transaction.
REPLAY_BATCH = 5000
# The private database's page cache (KiB): enough for its indexes' hot pages.
PRIVATE_CACHE_KIB = 32 * 1024

# The records compared, with their keys; every other column is compared as a field.
TABLES: tuple[tuple[str, type[Base], tuple[str, ...]], ...] = (
    ("events", im.Event, ("block_number", "log_index")),
    ("charities", im.Charity, ("charity_id",)),
    ("operators", im.Operator, ("charity_id", "account")),
    ("campaigns", im.Campaign, ("campaign_id",)),
    ("donations", im.Donation, ("donation_id",)),
    ("refunds", im.Refund, ("refund_id",)),
    ("disbursements", im.Disbursement, ("disbursement_id",)),
    ("allocations", im.Allocation, ("disbursement_id", "donation_id")),
    ("evidence", im.Evidence, ("disbursement_id", "document_hash")),
    ("corrections", im.Correction, ("correction_id",)),
    ("evidence_links", im.EvidenceLink, ("disbursement_id", "copy_hash")),
    ("evidence_withdrawals", im.EvidenceWithdrawal, ("disbursement_id", "document_hash")),
    ("access_log_seals", im.AccessLogSeal, ("day",)),
    ("grants", im.Grant, ("disbursement_id",)),
    ("grant_donations", im.GrantDonation, ("donation_id",)),
    ("approval_rules", im.ApprovalRule, ("campaign_id", "version")),
    ("approval_rule_approvers", im.ApprovalRuleApprover, ("campaign_id", "version", "approver")),
    ("proposals", im.Proposal, ("disbursement_id",)),
    ("proposal_votes", im.ProposalVote, ("disbursement_id", "voter", "vote")),
    ("recipients", im.Recipient, ("recipient_id",)),
    ("disbursement_recipients", im.DisbursementRecipient, ("disbursement_id",)),
    ("receipt_confirmations", im.ReceiptConfirmation, ("confirmation_id",)),
    ("campaign_ends", im.CampaignEnd, ("tx_hash", "log_index")),
    ("reports", im.Report, ("report_id",)),
    ("disposals", im.Disposal, ("disposal_id",)),
)
SKIP = {"id", "deployment_id"}


@dataclass
class Findings:
    differences: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0

    def add(self, **difference: Any) -> None:
        self.count += 1
        if len(self.differences) < MAX_LISTED:
            self.differences.append(difference)


class Cancelled(Exception):
    """The process is stopping: the reconciliation stops at its next slice."""


@dataclass
class Progress:
    """Where a running reconciliation is, for its job's status (read by the worker's
    heartbeat from another thread), and whether to stop (set by the worker's stop)."""

    stage: str = "starting"
    block_number: int | None = None
    cancelled: bool = False

    def check(self) -> None:
        if self.cancelled:
            raise Cancelled(self.stage)


def _readable(value: Any) -> Any:
    """Record IDs in keys read as people write them (hashes and addresses stay hex)."""
    if isinstance(value, str) and len(value) == 66:
        return ids.from_bytes32(value)
    return value


def _query(
    deployment_id: int, model: type[Base], scope: Scope, blocks: tuple[int | None, int | None] = (None, None)
) -> Any:
    """The rows of a mirror table in scope (None: the scope holds none of them), in key order."""
    table = im.table(model)
    c = table.c
    key_columns = next(keys for _, m, keys in TABLES if m is model)
    columns = [col for col in table.columns if col.name not in SKIP]
    query = select(*columns).where(c.deployment_id == deployment_id)
    if blocks[0] is not None:
        query = query.where(c.block_number >= blocks[0])
    if blocks[1] is not None:
        query = query.where(c.block_number <= blocks[1])
    C, B = im.table(im.Campaign).c, im.table(im.Disbursement).c
    campaigns = select(C.campaign_id).where(C.deployment_id == deployment_id)
    if scope.campaign_id is not None:
        campaigns = campaigns.where(C.campaign_id == scope.campaign_id)
    elif scope.charity_id is not None:
        campaigns = campaigns.where(C.charity_id == scope.charity_id)
    if scope.charity_id is not None or scope.campaign_id is not None:
        if model is im.Event:
            query = query.where(
                c.campaign_id == scope.campaign_id
                if scope.campaign_id is not None
                else c.charity_id == scope.charity_id
            )
        elif model in (im.AccessLogSeal, im.Recipient):
            return None  # the platform's seals and the recipient organisations belong to no charity
        elif model in (im.Charity, im.Operator, im.Correction):
            if scope.campaign_id is not None:
                return None  # charity-level records are outside a campaign's scope
            query = query.where(c.charity_id == scope.charity_id)
        elif model is im.Campaign or model in (
            im.Donation,
            im.Refund,
            im.Disbursement,
            im.GrantDonation,
            im.ApprovalRule,
            im.ApprovalRuleApprover,
            im.Proposal,
            im.CampaignEnd,
            im.Report,
            im.Disposal,
        ):
            query = query.where(c.campaign_id.in_(campaigns))
        elif model is im.ProposalVote:  # a vote belongs to its proposal
            P = im.table(im.Proposal).c
            proposals = select(P.disbursement_id).where(
                P.deployment_id == deployment_id, P.campaign_id.in_(campaigns)
            )
            query = query.where(c.disbursement_id.in_(proposals))
        else:  # allocations, evidence, its links and withdrawals, grants, a disbursement's
            # recipient and its confirmations belong to a disbursement
            disbursements = select(B.disbursement_id).where(
                B.deployment_id == deployment_id, B.campaign_id.in_(campaigns)
            )
            query = query.where(c.disbursement_id.in_(disbursements))
    return query, [c[k] for k in key_columns], [col.name for col in columns]


class _Records:
    """One side's records, each table read in key order as it is needed: the mirror (on
    the snapshot's connection) or the derivation (the private database). Both sides come
    in Python's order of the keys (hex text and integers; on PostgreSQL text is ordered
    by its bytes, COLLATE "C", whatever the database's collation), so the two can be
    merged a row at a time and a table is never held whole in memory."""

    def __init__(self, connection: Connection, deployment_id: int, scope: Scope) -> None:
        self.connection, self.deployment_id, self.scope = connection, deployment_id, scope

    def rows(
        self, name: str, blocks: tuple[int | None, int | None] = (None, None)
    ) -> Iterator[tuple[tuple, tuple]]:
        model = next(m for n, m, _ in TABLES if n == name)
        built = _query(self.deployment_id, model, self.scope, blocks)
        if built is None:
            return
        query, key_columns, names = built
        bytewise = self.connection.dialect.name == "postgresql"
        order = [k.collate("C") if bytewise and isinstance(k.type, String) else k for k in key_columns]
        positions = [names.index(k.name) for k in key_columns]
        previous: tuple | None = None
        # PostgreSQL streams through a server-side cursor: closed here however the
        # reading ends (a generator left unfinished closes it too).
        with self.connection.execute(query.order_by(*order).execution_options(yield_per=5000)) as result:
            for row in result:
                values = tuple(row)
                key = tuple(values[i] for i in positions)
                if previous is not None and not previous < key:
                    raise RuntimeError(f"{name}: rows not in key order ({previous!r}, then {key!r})")
                previous = key
                yield key, values


def _mirror_records(connection: Connection, deployment_id: int, scope: Scope) -> _Records:
    """The mirror's records in scope, read in the snapshot the cursor was read in."""
    return _Records(connection, deployment_id, scope)


def _sha256_row(digest: Any, values: tuple) -> None:
    digest.update(orjson.dumps(list(values), option=orjson.OPT_PASSTHROUGH_DATACLASS))


@contextlib.contextmanager
def _private_database(auditing: Auditing) -> Iterator[tuple[Engine, int]]:
    """A private SQLite file, in the system's temporary directory, for the records the
    chain's events imply (and the deployment's first block). Written once and read once,
    so it keeps no journal and never syncs; it is deleted when the reconciliation ends.
    On disk rather than in memory, so a ledger of millions of records costs disk, not RAM."""
    assert auditing.deployment_id is not None
    with tempfile.TemporaryDirectory(prefix="ledger-reconcile-") as directory:
        engine = create_engine(f"sqlite:///{Path(directory) / 'derived.db'}", poolclass=StaticPool)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=OFF")
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute(f"PRAGMA cache_size=-{PRIVATE_CACHE_KIB}")
            cursor.close()

        try:
            Base.metadata.create_all(engine)
            table = im.table(Deployment)
            with auditing.engine.connect() as source:
                row = source.execute(select(table).where(table.c.id == auditing.deployment_id)).one()
            with engine.begin() as connection:
                connection.execute(insert(table).values(**row._asdict()))
            yield engine, row.deployment_block
        finally:
            engine.dispose()


def _derive(
    auditing: Auditing,
    derived: Engine,
    start: int,
    mirror: _Records,
    height: int,
    progress: Progress,
    checked: Checked,
    findings: Findings,
) -> tuple[int, set[Any]]:
    """Fill `derived` with the records the chain's events up to `height` imply: the
    checked ranges' events replayed from the mirror (their digests vouch for them), then
    every later block's events from the node. Returns the number of events read from the
    node and every value those events name (the records they touched)."""
    assert auditing.deployment_id is not None
    if checked.kept:
        _replay(auditing.deployment_id, derived, mirror, checked, findings, progress)
    count, touched = 0, set[Any]()
    if checked.next_block is not None:
        start = checked.next_block
    for logs in _chain_logs(auditing, start, height):
        progress.check()
        with derived.begin() as connection:
            apply_logs(connection, auditing.deployment_id, logs)
        count += len(logs)
        if checked.next_block is not None:  # only an incremental check asks about them
            for log in logs:
                _named(log.args, touched)
        if logs:
            progress.stage = f"re-reading the chain: block {logs[-1].block_number} of {height}"
    return count, touched


def _named(value: Any, into: set[Any]) -> None:
    """Every scalar in an event's arguments, as the mirror keys records (0x hex)."""
    if isinstance(value, dict):
        for item in value.values():
            _named(item, into)
    elif isinstance(value, list | tuple):
        for item in value:
            _named(item, into)
    elif isinstance(value, bytes):
        into.add(hex0x(value))
    elif isinstance(value, str):
        into.add(value.lower())
    else:
        into.add(value)


def _chain_logs(auditing: Auditing, start: int, end: int) -> Iterator[list[DecodedLog]]:
    """Every ledger log of blocks start..end, from the node: over JSON-RPC in the
    indexer's adaptive ranges; on the embedded chain from its receipts, in slices of
    blocks that each hold the chain for about SLICE_SECONDS."""
    assert auditing.deployment_id is not None
    reader = Indexer(auditing.w3, auditing.engine, auditing.deployment_id)
    provider = auditing.w3.provider
    if not isinstance(provider, SerializedTesterProvider):
        yield from reader.read_logs(start, end)
        return
    span, block = 8, start
    while block <= end:
        upper = min(end, block + span - 1)
        with provider.background_slice():
            began = time.perf_counter()
            raw = provider.ledger_logs(reader.address, block, upper)
            elapsed = time.perf_counter() - began
        span = max(1, span // 2) if elapsed > SLICE_SECONDS else min(1024, span * 2)
        decoded = (reader.decoder.decode(entry) for entry in raw)
        yield [d for d in decoded if d is not None]
        block = upper + 1


@dataclass(frozen=True)
class ViewResult:
    """A view call's decoded answer, or why there is none (it reverted or failed)."""

    value: tuple[Any, ...] | None = None
    problem: str | None = None


def _reverted(revert: bytes | str | None) -> str:
    """`reverts with DonationNotFound`, or as much as is known."""
    error = decode_contract_error(revert) if revert else None
    return f"reverts with {error.name}" if error else "reverts"


def _view_results(
    w3: Web3, address: str, calls: list[Call], block: int, progress: Progress, done: int = 0
) -> list[ViewResult]:
    """Each call's decoded result at `block`, or why it has none. Over HTTP, calls go in
    JSON-RPC batches (a node that does not answer fails the whole reconciliation: that
    is no difference); on the embedded chain one or two at a time between requests."""
    rpc = Rpc(w3)
    results: list[ViewResult] = []
    if rpc.http:
        for start in range(0, len(calls), VIEW_BATCH):
            chunk = calls[start : start + VIEW_BATCH]
            answers = rpc.eth_calls(address, [call.data for call in chunk], block)
            for call, answer in zip(chunk, answers, strict=True):
                if not isinstance(answer, RpcError):
                    results.append(_decode(call.fn_name, answer))
                    continue
                data = answer.data
                results.append(ViewResult(problem=_reverted(data if isinstance(data, str) else None)))
            progress.stage = f"view calls: {done + len(results)} made"
            progress.check()
        return results
    provider = w3.provider
    assert isinstance(provider, SerializedTesterProvider)
    while len(results) < len(calls):
        with provider.background_slice():
            began = time.perf_counter()
            while len(results) < len(calls) and time.perf_counter() - began < SLICE_SECONDS:
                call = calls[len(results)]
                try:
                    raw = rpc.eth_call(address, call.data, block)
                except Exception as exc:
                    # eth-tester raises TransactionFailed on a revert, and others still
                    # (BlockNotFound, ValidationError...): in process, none is a node going
                    # away; each means the chain does not vouch for the record.
                    error = contract_error_of(exc)
                    problem = f"reverts with {error.name}" if error else f"fails ({type(exc).__name__})"
                    results.append(ViewResult(problem=problem))
                    continue
                results.append(_decode(call.fn_name, raw))
        progress.stage = f"view calls: {done + len(results)} made"
        progress.check()
    return results


def _decode(fn_name: str, raw: Any) -> ViewResult:
    """A view's answer (hex text, as the node sent it) decoded, or why it is no record."""
    try:
        return ViewResult(value=decode_result(fn_name, unhex(raw)))
    except (DecodingError, ValueError, TypeError):
        return ViewResult(problem="answers something that is not a record")


def _view_checks(
    mirror: _Records, touched: set[Any] | None, counts: dict[str, int]
) -> Iterator[tuple[str, tuple, dict[str, Any], Call]]:
    """The view call that vouches for each mirror record the views check, with the
    record, one at a time in the mirror's order (`touched`: only the records these values
    name; None: all). Counts the records of each table in `counts`."""

    def rows(table: str) -> Iterator[tuple[tuple, dict[str, Any]]]:
        names = _columns(table)
        counts.setdefault(table, 0)
        for key, values in mirror.rows(table):
            if touched is None or key[0] in touched:
                counts[table] += 1
                yield key, dict(zip(names, values, strict=True))

    for table, fn_name in (
        ("campaigns", "campaignOf"),
        ("donations", "donationOf"),
        ("disbursements", "disbursementOf"),
    ):
        for key, row in rows(table):
            yield table, key, row, encode(fn_name, unhex(key[0]))
    # A redacted copy's link and a withdrawal, from evidenceStatus; a day's seal.
    for table in ("evidence_links", "evidence_withdrawals"):
        for key, row in rows(table):
            yield table, key, row, encode("evidenceStatus", unhex(key[0]), unhex(key[1]))
    for key, row in rows("access_log_seals"):
        yield "access_log_seals", key, row, encode("accessLogSeal", key[0])
    # A grant's recipient and received total, from grantOf; a linked donation's source,
    # from grantSourceOf (each answers zero, not a revert, for a record that is no grant).
    for table, fn_name in (("grants", "grantOf"), ("grant_donations", "grantSourceOf")):
        for key, row in rows(table):
            yield table, key, row, encode(fn_name, unhex(key[0]))
    # Approvals: every proposal (proposalOf); each campaign's current rule (approvalRuleOf
    # answers only the latest version); every approver of every version (isApprover).
    for key, row in rows("proposals"):
        yield "proposals", key, row, encode("proposalOf", unhex(key[0]))
    latest: dict[str, int] = {}
    for (campaign, version), _ in mirror.rows("approval_rules"):
        latest[campaign] = max(version, latest.get(campaign, 0))
    for key, row in rows("approval_rules"):
        if latest[key[0]] == key[1]:
            yield "approval_rules", key, row, encode("approvalRuleOf", unhex(key[0]))
    for key, row in rows("approval_rule_approvers"):
        yield "approval_rule_approvers", key, row, encode("isApprover", unhex(key[0]), key[1], key[2])
    # A recipient's account (recipientAccount); a disbursement's recipient and how much of
    # it the recipient confirmed (recipientOf), against the sum of the mirror's
    # confirmations of that disbursement.
    for key, row in rows("recipients"):
        yield "recipients", key, row, encode("recipientAccount", unhex(key[0]))
    confirmed: dict[str, int] = {}
    names = _columns("receipt_confirmations")
    for _, values in mirror.rows("receipt_confirmations"):
        confirmation = dict(zip(names, values, strict=True))
        disbursement = confirmation["disbursement_id"]
        confirmed[disbursement] = confirmed.get(disbursement, 0) + confirmation["amount"]
    for key, row in rows("disbursement_recipients"):
        row["confirmed"] = confirmed.get(key[0], 0)
        yield "disbursement_recipients", key, row, encode("recipientOf", unhex(key[0]))


def _check_views(
    auditing: Auditing, mirror: _Records, touched: set[Any] | None, block: int, progress: Progress
) -> tuple[Findings, dict[str, int]]:
    """Totals from the contract's view functions against the mirror's rows, asked a
    chunk of records at a time."""
    findings = Findings()
    counts: dict[str, int] = {}
    checks = _view_checks(mirror, touched, counts)
    done = 0
    while chunk := list(itertools.islice(checks, VIEW_CHUNK)):
        calls = [check[3] for check in chunk]
        results = _view_results(auditing.w3, auditing.deployment.address, calls, block, progress, done)
        done += len(chunk)
        for (table, key, row, call), result in zip(chunk, results, strict=True):
            record = _readable(key[0])
            if result.value is None:
                findings.add(
                    check="view",
                    table=table,
                    key=record,
                    problem=f"the contract's {call.fn_name} knows no such record (it {result.problem})",
                )
                continue
            view = result.value if table in _MANY_OUTPUTS else result.value[0]
            for name, chain_value in _expected(table, view).items():
                mirror_value = _mirror_value(row, name)
                if mirror_value != chain_value:
                    findings.add(
                        check="view",
                        table=table,
                        key=record,
                        field=name,
                        chain=chain_value,
                        mirror=mirror_value,
                        problem=f"{call.fn_name} disagrees with the mirror",
                    )
    viewed = {
        t: counts.get(t, 0)
        for t in _VIEW_COUNTED
        if counts.get(t) or t in ("campaigns", "donations", "disbursements")
    }
    return findings, viewed


_MANY_OUTPUTS = (
    "evidence_links",
    "evidence_withdrawals",
    "access_log_seals",
    "grants",
    "grant_donations",
    "approval_rules",
    "disbursement_recipients",
)
# The tables whose view checks an answer counts (the first three even when empty).
_VIEW_COUNTED = (
    "campaigns",
    "donations",
    "disbursements",
    *_MANY_OUTPUTS,
    "proposals",
    "approval_rule_approvers",
    "recipients",
)
# ProposalView.status: what the mirror's proposals.state says (expiry is no status).
_PROPOSAL_STATES = {1: "pending", 2: "rejected", 3: "executed"}


def _expected(table: str, view: tuple[Any, ...]) -> dict[str, Any]:
    """Mirror columns and the values the contract's view implies for them (for a link or
    a withdrawal, that evidenceStatus vouches for the row: anchored, the original, withdrawn)."""
    if table == "evidence_links":
        _, _, original = view  # a linked copy is anchored by the link itself
        return {"original_hash": hex0x(original)}
    if table == "evidence_withdrawals":
        anchored, withdrawn, _ = view
        return {"withdrawn": bool(anchored and withdrawn)}
    if table == "access_log_seals":
        root, row_count, last_row_hash = view
        return {"root": hex0x(root), "row_count": row_count, "last_row_hash": hex0x(last_row_hash)}
    if table == "grants":
        recipient_campaign, received = view
        return {"recipient_campaign_id": hex0x(recipient_campaign), "received": received}
    if table == "grant_donations":
        (source,) = view
        return {"source_disbursement_id": hex0x(source)}
    if table == "approval_rules":
        version, threshold, approver_count, validity = view
        return {
            "version": version,
            "threshold": threshold,
            "approver_count": approver_count,
            "validity": validity,
        }
    if table == "approval_rule_approvers":
        return {"named": bool(view)}
    if table == "proposals":
        campaign, proposer, input_hash, rule_version, threshold, approvals, expires_at, status = view
        return {
            "campaign_id": hex0x(campaign),
            "proposer": to_checksum_address(proposer),
            "input_hash": hex0x(input_hash),
            "rule_version": rule_version,
            "threshold": threshold,
            "approvals": approvals,
            "expires_at": expires_at,
            "state": _PROPOSAL_STATES.get(status, f"status {status}"),
        }
    if table == "recipients":
        account: Any = view  # one output: the address itself, not a tuple
        return {"account": Web3.to_checksum_address(account)}
    if table == "disbursement_recipients":
        recipient, confirmed = view
        return {"recipient_id": hex0x(recipient), "confirmed": confirmed}
    if table == "campaigns":
        charity, currency, closed, goal, received, refunded, disbursed, _, donations, disbursements = view
        return {
            "charity_id": hex0x(charity),
            "currency": bytes(currency).decode("ascii", errors="replace"),
            "goal": str(goal),
            "closed": closed,
            "received": received,
            "refunded": refunded,
            "disbursed": disbursed,
            "donation_count": donations,
            "disbursement_count": disbursements,
        }
    if table == "donations":
        campaign, amount, allocated, refunded, _ = view
        return {
            "campaign_id": hex0x(campaign),
            "amount": amount,
            "allocated": allocated,
            "refunded": refunded,
        }
    campaign, amount, allocation_count, evidence_count = view
    return {
        "campaign_id": hex0x(campaign),
        "amount": amount,
        "allocation_count": allocation_count,
        "evidence_count": evidence_count,
    }


def _mirror_value(row: dict[str, Any], name: str) -> Any:
    """A mirror row's value for what a view vouches for."""
    if name == "closed":
        return row["closed_block"] is not None
    if name == "withdrawn":
        return True  # the mirror holds the row: it says the document was withdrawn
    if name == "named":
        return True  # the mirror holds the row: it says the rule names the approver
    return row[name]


def _merged(
    chain: Iterator[tuple[tuple, tuple]], mirror: Iterator[tuple[tuple, tuple]]
) -> Iterator[tuple[tuple, tuple | None, tuple | None]]:
    """Two key-ordered streams of rows joined on their keys: (key, chain row, mirror row),
    None on the side that lacks the key."""
    theirs, ours = next(chain, None), next(mirror, None)
    while theirs is not None or ours is not None:
        if ours is None or (theirs is not None and theirs[0] < ours[0]):
            assert theirs is not None
            yield theirs[0], theirs[1], None
            theirs = next(chain, None)
        elif theirs is None or ours[0] < theirs[0]:
            yield ours[0], None, ours[1]
            ours = next(mirror, None)
        else:
            yield theirs[0], theirs[1], ours[1]
            theirs, ours = next(chain, None), next(mirror, None)


@dataclass
class _Compared:
    """One table's comparison: how many rows each side has, and its differences in the
    order an answer lists them (missing from the mirror, then not on chain, then altered;
    each by key), at most MAX_LISTED of each kept."""

    chain: int = 0
    mirror: int = 0
    count: int = 0
    lists: tuple[list[dict[str, Any]], ...] = field(default_factory=lambda: ([], [], []))

    def add(self, kind: int, **difference: Any) -> None:
        self.count += 1
        if len(self.lists[kind]) < MAX_LISTED:
            self.lists[kind].append(difference)


def _compare(
    table: str, keys: tuple[str, ...], chain: _Records, mirror: _Records, digests: tuple[Any, Any]
) -> _Compared:
    """The table's rows on both sides, a row at a time, each added to its side's digest."""
    names = _columns(table)
    compared = _Compared()

    def key_of(key: tuple) -> Any:
        readable = [_readable(k) for k in key]
        return dict(zip(keys, readable, strict=True)) if len(keys) > 1 else readable[0]

    for key, theirs, ours in _merged(chain.rows(table), mirror.rows(table)):
        if theirs is not None:
            compared.chain += 1
            _sha256_row(digests[0], theirs)
        if ours is not None:
            compared.mirror += 1
            _sha256_row(digests[1], ours)
        if ours is None:
            compared.add(
                0, check="records", table=table, key=key_of(key), problem="on chain, missing from the mirror"
            )
        elif theirs is None:
            compared.add(
                1, check="records", table=table, key=key_of(key), problem="in the mirror, not on chain"
            )
        elif ours != theirs:
            for name, chain_value, mirror_value in zip(names, theirs, ours, strict=True):
                if chain_value != mirror_value:
                    compared.add(
                        2,
                        check="records",
                        table=table,
                        key=key_of(key),
                        field=name,
                        chain=chain_value,
                        mirror=mirror_value,
                        problem="altered in the mirror",
                    )
    return compared


def _compare_all(
    findings: Findings, chain: _Records, mirror: _Records, progress: Progress
) -> tuple[dict[str, dict[str, int]], dict[str, str]]:
    """Every table of both sides compared, a row at a time. Returns each table's row
    counts and each side's SHA-256 digest (over the tables in the order of their names,
    each table's rows in key order)."""
    digests = (hashlib.sha256(), hashlib.sha256())
    compared: dict[str, _Compared] = {}
    for name, _, keys in sorted(TABLES, key=lambda entry: entry[0]):
        progress.check()
        progress.stage = f"comparing the records: {name}"
        for digest in digests:
            digest.update(name.encode())
        compared[name] = _compare(name, keys, chain, mirror, digests)
    for name, _, _ in TABLES:
        listed = [difference for kind in compared[name].lists for difference in kind]
        for difference in listed:
            findings.add(**difference)
        findings.count += compared[name].count - len(listed)
    counts = {name: {"chain": compared[name].chain, "mirror": compared[name].mirror} for name, _, _ in TABLES}
    return counts, {"algorithm": "sha256", "chain": digests[0].hexdigest(), "mirror": digests[1].hexdigest()}


def _columns(table: str) -> list[str]:
    model = next(m for n, m, _ in TABLES if n == table)
    return [c.name for c in im.table(model).columns if c.name not in SKIP]


# ------------------------------------------------------------ checked ranges


@dataclass
class Checked:
    """What the stored ranges give a reconciliation: those still canonical (their mirror
    events are replayed instead of asking the node again), the first block to read from
    the node (None: the deployment's first), and the first block of the ranges a reorg
    (or a lower height) left behind, to forget."""

    kept: list[Any] = field(default_factory=list)
    next_block: int | None = None
    drop_from: int | None = None
    replayed: int = 0

    @property
    def ranges(self) -> int:
        return len(self.kept)


def _checked(auditing: Auditing, height: int) -> Checked:
    """The stored ranges up to `height` that are still canonical. Ranges no longer
    canonical (a reorg) or above the height are left out, so their blocks are read from
    the node again."""
    R = ReconciledRange
    with auditing.engine.connect() as connection:
        ranges = list(
            connection.execute(
                select(R).where(R.deployment_id == auditing.deployment_id).order_by(R.first_block)
            )
        )
    kept = [r for r in ranges if r.last_block <= height]
    # A block's hash covers its parents': the last range still canonical vouches for all before it.
    while kept and hex0x(_block_hash(auditing.w3, kept[-1].last_block)) != kept[-1].last_block_hash:
        kept.pop()
    drop_from = ranges[len(kept)].first_block if len(kept) < len(ranges) else None
    if not kept:
        return Checked(drop_from=drop_from)
    return Checked(kept=kept, next_block=kept[-1].last_block + 1, drop_from=drop_from)


def _replay(
    deployment_id: int,
    derived: Engine,
    mirror: _Records,
    checked: Checked,
    findings: Findings,
    progress: Progress,
) -> None:
    """The mirror's events of the checked ranges, replayed into the derivation in order,
    each range's events checked against its digest on the way (a difference is a
    finding; the node is not asked again for those blocks)."""
    names = _columns("events")
    ranges = iter(checked.kept)
    current = next(ranges)
    digest, count = hashlib.sha256(), 0
    batch: list[DecodedLog] = []

    def close(checked_range: Any) -> None:
        if digest.hexdigest() != checked_range.events_digest:
            findings.add(
                check="records",
                table="events",
                key={"first_block": checked_range.first_block, "last_block": checked_range.last_block},
                chain={"events": checked_range.event_count, "sha256": checked_range.events_digest},
                mirror={"events": count, "sha256": digest.hexdigest()},
                problem="the mirror's events of these blocks differ from those checked against the node",
            )

    def flush() -> None:
        progress.check()
        with derived.begin() as connection:
            apply_logs(connection, deployment_id, batch)
        checked.replayed += len(batch)
        batch.clear()

    for key, values in mirror.rows("events", blocks=(None, checked.kept[-1].last_block)):
        while current is not None and key[0] > current.last_block:
            close(current)
            current, digest, count = next(ranges, None), hashlib.sha256(), 0
        if current is not None and key[0] >= current.first_block:
            digest.update(orjson.dumps(list(values)))
            count += 1
        batch.append(_replayed(dict(zip(names, values, strict=True))))
        if len(batch) >= REPLAY_BATCH:
            flush()
    while current is not None:
        close(current)
        current, digest, count = next(ranges, None), hashlib.sha256(), 0
    if batch:
        flush()


def _events_digest(records: _Records, first: int, last: int) -> tuple[int, str]:
    """(count, SHA-256) of one side's events of blocks first..last."""
    digest, count = hashlib.sha256(), 0
    for _, values in records.rows("events", blocks=(first, last)):
        digest.update(orjson.dumps(list(values)))
        count += 1
    return count, digest.hexdigest()


def _replayed(row: dict[str, Any]) -> DecodedLog:
    return DecodedLog(
        name=row["name"],
        args=orjson.loads(row["args"]),
        block_number=row["block_number"],
        block_hash=row["block_hash"],
        tx_hash=row["tx_hash"],
        tx_index=row["tx_index"],
        log_index=row["log_index"],
    )


def _store_range(
    auditing: Auditing, first: int, height: int, block_hash: str, count: int, digest: str
) -> None:
    """Remember blocks first..height as checked: their events as the node gave them."""
    with auditing.engine.begin() as connection:
        connection.execute(
            insert(ReconciledRange).values(
                deployment_id=auditing.deployment_id,
                first_block=first,
                last_block=height,
                last_block_hash=block_hash,
                event_count=count,
                events_digest=digest,
                checked_at=datetime.now(UTC),
            )
        )


def _forget_ranges(auditing: Auditing, first_block: int) -> None:
    with auditing.engine.begin() as connection:
        connection.execute(
            delete(ReconciledRange).where(
                ReconciledRange.deployment_id == auditing.deployment_id,
                ReconciledRange.first_block >= first_block,
            )
        )


def _cursor(connection: Connection, deployment_id: int) -> Row[int, str] | None:
    return connection.execute(
        select(im.Cursor.block_number, im.Cursor.block_hash).where(im.Cursor.deployment_id == deployment_id)
    ).one_or_none()


def reconcile(auditing: Auditing, scope: Scope, progress: Progress | None = None) -> dict[str, Any]:
    """A full reconciliation of the scope: every event re-read from the node, the views
    asked about every record."""
    return _reconcile(auditing, scope, progress or Progress(), incremental=False)


def reconcile_incremental(auditing: Auditing, progress: Progress | None = None) -> dict[str, Any]:
    """The whole deployment's reconciliation, re-reading from the node only the blocks
    after the ranges already checked, and asking the views only about the records their
    events name (the module's docstring)."""
    return _reconcile(auditing, Scope(None, None), progress or Progress(), incremental=True)


def _reconcile(auditing: Auditing, scope: Scope, progress: Progress, incremental: bool) -> dict[str, Any]:
    began = time.perf_counter()
    assert auditing.deployment_id is not None
    deployment_id = auditing.deployment_id
    progress.stage = "reading the mirror"
    findings = Findings()
    checked, new_range = Checked(), None
    # The cursor and the rows it covers, as of one moment: the indexer commits a range's
    # rows with its cursor, so every read on this connection sees the mirror at exactly
    # the cursor's block, however long the reconciliation takes.
    with db.snapshot(auditing.engine) as connection:
        cursor = _cursor(connection, deployment_id)
        height, mirror_hash = (cursor.block_number, cursor.block_hash) if cursor else (None, None)
        progress.block_number = height
        checked_at = {
            "chain_id": auditing.deployment.chain_id,
            "contract": auditing.deployment.address,
            "block_number": height,
            "block_hash": mirror_hash,
        }
        answer = {"scope": scope.describe(), "checked_at": checked_at, "full": not incremental}
        if height is None:
            findings.add(check="cursor", problem="the mirror has not indexed anything yet")
            return _finish(answer, findings, began)
        node_hash = hex0x(_block_hash(auditing.w3, height))
        if node_hash != mirror_hash:
            findings.add(
                check="cursor",
                problem="the node has another block at the mirror's height (a reorg the indexer has not "
                "repaired yet); nothing else can be compared",
                chain=node_hash,
                mirror=mirror_hash,
            )
            return _finish(answer, findings, began)
        mirror = _mirror_records(connection, deployment_id, scope)
        if incremental:
            checked = _checked(auditing, height)
        with _private_database(auditing) as (derived, deployment_block):
            progress.stage = "re-reading the chain"
            chain_events, touched = _derive(
                auditing, derived, deployment_block, mirror, height, progress, checked, findings
            )
            progress.stage = "comparing the records"
            with derived.connect() as theirs:
                chain = _Records(theirs, deployment_id, scope)
                counts, digest = _compare_all(findings, chain, mirror, progress)
                if incremental and (checked.next_block or 0) <= height:
                    first = checked.next_block if checked.next_block is not None else deployment_block
                    new_range = (first, *_events_digest(chain, first, height))
        progress.stage = "view calls"
        viewed = touched if checked.next_block is not None else None
        view_findings, view_counts = _check_views(auditing, mirror, viewed, height, progress)
    for difference in view_findings.differences:
        findings.add(**difference)
    findings.count += view_findings.count - len(view_findings.differences)
    if checked.drop_from is not None:
        _forget_ranges(auditing, checked.drop_from)
    if new_range is not None:
        first, count, events_digest = new_range
        _store_range(auditing, first, height, node_hash, count, events_digest)
    answer["counts"] = counts
    answer["views_checked"] = view_counts
    answer["chain_events_read"] = chain_events
    if incremental:
        answer["ranges_reused"] = checked.ranges
        answer["events_replayed"] = checked.replayed
    answer["digest"] = digest
    return _finish(answer, findings, began)


def _block_hash(w3: Web3, number: int) -> bytes:
    provider = w3.provider
    if isinstance(provider, SerializedTesterProvider):
        with provider.background_slice():
            return bytes(w3.eth.get_block(number)["hash"])
    return bytes(w3.eth.get_block(number)["hash"])


def _finish(answer: dict[str, Any], findings: Findings, began: float) -> dict[str, Any]:
    return {
        "clean": findings.count == 0,
        **answer,
        "difference_count": findings.count,
        "differences": findings.differences,
        "truncated": findings.count > len(findings.differences),
        "seconds": round(time.perf_counter() - began, 3),
    }


def summarize(answer: dict[str, Any]) -> Iterable[str]:
    """Lines for the terminal."""
    at = answer["checked_at"]
    if answer["clean"]:
        yield f"CLEAN: the mirror matches the chain at block {at['block_number']} ({at['block_hash']})"
    else:
        yield f"{answer['difference_count']} DIFFERENCE(S) at block {at['block_number']}:"
        for difference in answer["differences"]:
            yield "  " + ", ".join(f"{k}={v}" for k, v in difference.items())
    if "digest" in answer:
        yield f"digest chain  {answer['digest']['chain']}"
        yield f"digest mirror {answer['digest']['mirror']}"
