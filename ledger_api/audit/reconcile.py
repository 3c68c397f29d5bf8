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
projection code at all. The answer lists every difference found, or is a clean bill
with the block it was checked at.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
from eth_abi.exceptions import DecodingError
from sqlalchemy import Connection, create_engine, insert, select
from sqlalchemy.pool import StaticPool
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError, Web3Exception

from indexer import models as im
from indexer.indexer import Indexer
from indexer.projections import apply_logs
from ledger_api.app import Runtime
from ledger_api.audit.scope import Scope
from ledger_api.chain.calls import Call, decode_result, encode
from ledger_api.core import ids
from ledger_api.core.models import Base, Deployment

MAX_LISTED = 1000  # differences listed in one answer (all are counted)
VIEW_BATCH = 500  # eth_calls per JSON-RPC batch

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


def _readable(value: Any) -> Any:
    """Record IDs in keys read as people write them (hashes and addresses stay hex)."""
    if isinstance(value, str) and len(value) == 66:
        return ids.from_bytes32(value)
    return value


def _rows(connection: Connection, deployment_id: int, model: type[Base], scope: Scope) -> dict[tuple, tuple]:
    table = im.table(model)
    c = table.c
    key_columns = next(keys for _, m, keys in TABLES if m is model)
    columns = [col for col in table.columns if col.name not in SKIP]
    query = select(*columns).where(c.deployment_id == deployment_id)
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
        elif model in (im.Charity, im.Operator, im.Correction):
            if scope.campaign_id is not None:
                return {}  # charity-level records are outside a campaign's scope
            query = query.where(c.charity_id == scope.charity_id)
        elif model is im.Campaign or model in (im.Donation, im.Refund, im.Disbursement):
            query = query.where(c.campaign_id.in_(campaigns))
        else:  # allocations and evidence belong to a disbursement
            disbursements = select(B.disbursement_id).where(
                B.deployment_id == deployment_id, B.campaign_id.in_(campaigns)
            )
            query = query.where(c.disbursement_id.in_(disbursements))
    names = [col.name for col in columns]
    positions = [names.index(k) for k in key_columns]
    result = {}
    for row in connection.execute(query.execution_options(yield_per=5000)):
        values = tuple(row)
        result[tuple(values[i] for i in positions)] = values
    return result


def _digest(tables: dict[str, dict[tuple, tuple]]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tables):
        digest.update(name.encode())
        for key in sorted(tables[name]):
            digest.update(orjson.dumps(list(tables[name][key]), option=orjson.OPT_PASSTHROUGH_DATACLASS))
    return digest.hexdigest()


def _derive(runtime: Runtime, height: int) -> tuple[Any, int]:
    """The records the chain's events up to `height` imply, in a private database."""
    engine = create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)
    assert runtime.deployment_id is not None
    table = im.table(Deployment)
    with runtime.engine.connect() as source:
        row = source.execute(select(table).where(table.c.id == runtime.deployment_id)).one()
    with engine.begin() as connection:
        connection.execute(insert(table).values(**row._asdict()))
    reader = Indexer(runtime.w3, runtime.engine, runtime.deployment_id)
    count = 0
    for logs in reader.read_logs(row.deployment_block, height):
        with engine.begin() as connection:
            apply_logs(connection, runtime.deployment_id, logs)
        count += len(logs)
    return engine, count


def _view_results(w3: Web3, address: str, calls: list[Call], block: int) -> list[tuple[Any, ...] | None]:
    """Each call's decoded result at `block`, or None where it reverts (no such record).
    Over HTTP, calls go in JSON-RPC batches."""
    provider = w3.provider
    results: list[tuple[Any, ...] | None] = []
    if isinstance(provider, HTTPProvider):
        session = requests.Session()
        session.trust_env = False
        for start in range(0, len(calls), VIEW_BATCH):
            chunk = calls[start : start + VIEW_BATCH]
            body = [
                {
                    "jsonrpc": "2.0",
                    "id": i,
                    "method": "eth_call",
                    "params": [{"to": address, "data": "0x" + call.data.hex()}, hex(block)],
                }
                for i, call in enumerate(chunk)
            ]
            reply = session.post(
                str(provider.endpoint_uri),
                data=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
                timeout=60,
            )
            reply.raise_for_status()
            answers = {a["id"]: a for a in orjson.loads(reply.content)}
            for i, call in enumerate(chunk):
                answer = answers.get(i, {})
                raw = answer.get("result")
                results.append(_decode(call.fn_name, raw) if raw else None)
        return results
    for call in calls:
        try:
            raw_bytes = w3.eth.call({"to": address, "data": call.data}, block)
        except (ContractLogicError, Web3Exception, ValueError):
            results.append(None)
            continue
        results.append(_decode(call.fn_name, "0x" + bytes(raw_bytes).hex()))
    return results


def _decode(fn_name: str, raw: str) -> tuple[Any, ...] | None:
    try:
        return decode_result(fn_name, bytes.fromhex(raw[2:]))
    except (DecodingError, ValueError):
        return None


def _check_views(
    runtime: Runtime, mirror: dict[str, dict[tuple, tuple]], columns: dict[str, list[str]], block: int
) -> tuple[Findings, dict[str, int]]:
    """Totals from the contract's view functions against the mirror's rows."""
    findings = Findings()
    checks: list[tuple[str, tuple, dict[str, Any], Call]] = []
    for table, fn_name in (
        ("campaigns", "campaignOf"),
        ("donations", "donationOf"),
        ("disbursements", "disbursementOf"),
    ):
        names = columns[table]
        for key, values in mirror[table].items():
            row = dict(zip(names, values, strict=True))
            checks.append((table, key, row, encode(fn_name, bytes.fromhex(key[0][2:]))))
    results = _view_results(runtime.w3, runtime.deployment.address, [c[3] for c in checks], block)
    for (table, key, row, call), result in zip(checks, results, strict=True):
        record = _readable(key[0])
        if result is None:
            findings.add(
                check="view",
                table=table,
                key=record,
                problem=f"the contract's {call.fn_name} knows no such record",
            )
            continue
        view = result[0]
        expected = _expected(table, view)
        for name, chain_value in expected.items():
            mirror_value = row["closed_block"] is not None if name == "closed" else row[name]
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
    counts = {t: len(mirror[t]) for t in ("campaigns", "donations", "disbursements")}
    return findings, counts


def _expected(table: str, view: tuple[Any, ...]) -> dict[str, Any]:
    """Mirror columns and the values the contract's view implies for them."""
    if table == "campaigns":
        charity, currency, closed, goal, received, refunded, disbursed, _, donations, disbursements = view
        return {
            "charity_id": "0x" + bytes(charity).hex(),
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
            "campaign_id": "0x" + bytes(campaign).hex(),
            "amount": amount,
            "allocated": allocated,
            "refunded": refunded,
        }
    campaign, amount, allocation_count, evidence_count = view
    return {
        "campaign_id": "0x" + bytes(campaign).hex(),
        "amount": amount,
        "allocation_count": allocation_count,
        "evidence_count": evidence_count,
    }


def _compare(
    findings: Findings,
    table: str,
    names: list[str],
    keys: tuple[str, ...],
    chain: dict[tuple, tuple],
    mirror: dict[tuple, tuple],
) -> None:
    def key_of(key: tuple) -> Any:
        readable = [_readable(k) for k in key]
        return dict(zip(keys, readable, strict=True)) if len(keys) > 1 else readable[0]

    for key in sorted(chain.keys() - mirror.keys()):
        findings.add(
            check="records", table=table, key=key_of(key), problem="on chain, missing from the mirror"
        )
    for key in sorted(mirror.keys() - chain.keys()):
        findings.add(check="records", table=table, key=key_of(key), problem="in the mirror, not on chain")
    for key in sorted(chain.keys() & mirror.keys()):
        ours, theirs = mirror[key], chain[key]
        if ours == theirs:
            continue
        for name, chain_value, mirror_value in zip(names, theirs, ours, strict=True):
            if chain_value != mirror_value:
                findings.add(
                    check="records",
                    table=table,
                    key=key_of(key),
                    field=name,
                    chain=chain_value,
                    mirror=mirror_value,
                    problem="altered in the mirror",
                )


def reconcile(runtime: Runtime, scope: Scope) -> dict[str, Any]:
    began = time.perf_counter()
    assert runtime.deployment_id is not None
    deployment_id = runtime.deployment_id
    with runtime.engine.connect() as connection:
        cursor = connection.execute(
            select(im.Cursor.block_number, im.Cursor.block_hash).where(
                im.Cursor.deployment_id == deployment_id
            )
        ).one_or_none()
    height, mirror_hash = (cursor.block_number, cursor.block_hash) if cursor else (None, None)
    checked_at: dict[str, Any] = {
        "chain_id": runtime.deployment.chain_id,
        "contract": runtime.deployment.address,
        "block_number": height,
        "block_hash": mirror_hash,
    }
    answer: dict[str, Any] = {"scope": scope.describe(), "checked_at": checked_at}
    if height is None:
        findings = Findings()
        findings.add(check="cursor", problem="the mirror has not indexed anything yet")
        return _finish(answer, findings, began)
    node_hash = "0x" + bytes(runtime.w3.eth.get_block(height)["hash"]).hex()
    if node_hash != mirror_hash:
        findings = Findings()
        findings.add(
            check="cursor",
            problem="the node has another block at the mirror's height (a reorg the indexer has not "
            "repaired yet); nothing else can be compared",
            chain=node_hash,
            mirror=mirror_hash,
        )
        return _finish(answer, findings, began)

    derived, chain_events = _derive(runtime, height)
    findings = Findings()
    chain_tables: dict[str, dict[tuple, tuple]] = {}
    mirror_tables: dict[str, dict[tuple, tuple]] = {}
    columns: dict[str, list[str]] = {}
    with derived.connect() as theirs, runtime.engine.connect() as ours:
        for name, model, keys in TABLES:
            columns[name] = [c.name for c in im.table(model).columns if c.name not in SKIP]
            chain_tables[name] = _rows(theirs, deployment_id, model, scope)
            mirror_tables[name] = _rows(ours, deployment_id, model, scope)
            _compare(findings, name, columns[name], keys, chain_tables[name], mirror_tables[name])
    derived.dispose()
    view_findings, view_counts = _check_views(runtime, mirror_tables, columns, height)
    for difference in view_findings.differences:
        findings.add(**difference)
    findings.count += view_findings.count - len(view_findings.differences)
    answer["counts"] = {
        name: {"chain": len(chain_tables[name]), "mirror": len(mirror_tables[name])} for name, _, _ in TABLES
    }
    answer["views_checked"] = view_counts
    answer["chain_events_read"] = chain_events
    answer["digest"] = {
        "algorithm": "sha256",
        "chain": _digest(chain_tables),
        "mirror": _digest(mirror_tables),
    }
    return _finish(answer, findings, began)


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
