"""Checking the service's access log (使用痕迹) against the roots sealed on chain.

This is ledger-verify's own copy of the protocol (the service's is
ledger_api/core/access_log.py; a test holds the two equal):

- `row_hash` = SHA-256 of the UTF-8 JSON array `[VERSION, seq, at, day, key_id, role,
  method, route, charity_id, campaign_id, outcome, status, record_count, record_ids,
  records_digest, prev_hash]`, no whitespace, non-ASCII escaped; `prev_hash` is the
  previous row's `row_hash` (64 zeros for the first row).
- A UTC day's root: leaves SHA-256(0x00 ‖ row_hash) in seq order, inner nodes
  SHA-256(0x01 ‖ left ‖ right), an odd last node carried up unchanged.
- On chain: `accessLogSeal(uint64 day) returns (bytes32 root, uint64 rowCount, bytes32
  lastRowHash)`, day = UTC days since 1970-01-01.

Two checks: a row's proof (the row, its path, the day's root) and a whole day (every row
from the API, rebuilt into the root). Both print one line per claim as the other commands.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import date
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

from ledger_verify.net import Node, Unavailable
from ledger_verify.report import Report

VERSION = "ledger-access-log/1"
GENESIS = "0" * 64
EPOCH = date(1970, 1, 1)
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


def row_hash(row: dict[str, Any]) -> str:
    """The hash of a row as the API shows it (KeyError if a field is missing)."""
    encoded = json.dumps([VERSION, *(row[name] for name in FIELDS)], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _leaf(value: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(value)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_of(row_hashes: Sequence[str]) -> bytes:
    """The day's Merkle root over its rows' hashes, in seq order (at least one)."""
    level = [_leaf(h) for h in row_hashes]
    while len(level) > 1:
        level = [
            _node(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)
        ]
    return level[0]


def fold(row_hash_hex: str, path: Sequence[dict[str, Any]]) -> bytes:
    """The root a row's Merkle path leads to."""
    running = _leaf(row_hash_hex)
    for step in path:
        sibling = bytes.fromhex(str(step["hash"]).removeprefix("0x"))
        if len(sibling) != 32 or step["side"] not in ("left", "right"):
            raise ValueError("a step of the path is not a side and a 32-byte hash")
        running = _node(sibling, running) if step["side"] == "left" else _node(running, sibling)
    return running


# The view, as the contract declares it (contract 2.1.0): its selector and its answer.
SEAL_VIEW = "accessLogSeal(uint64)"
SEAL_FIELDS = ("root", "rowCount", "lastRowHash")
SEAL_TYPES = ["bytes32", "uint64", "bytes32"]


def sealed(node: Node, contract: str, day: int) -> dict[str, Any] | None:
    """The day's seal as the contract holds it; None when the day is not sealed."""
    call = keccak(SEAL_VIEW.encode())[:4] + abi_encode(["uint64"], [day])
    data = node.eth_call(contract, call, node.head())
    seal = dict(zip(SEAL_FIELDS, abi_decode(SEAL_TYPES, data), strict=True))
    return None if seal["root"] == b"\0" * 32 else seal


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def check_row(report: Report, proof: dict[str, Any], node: Node | None, contract: str | None) -> None:
    """A row proof (GET /v1/audit/access-log/{seq}/proof): the row's hash, its path to the
    day's root, and that root against the chain's seal of the day."""
    row = proof["row"]
    report.note(
        f"access log row {row['seq']} of {row['at']}: {row['method']} {row['route']} by key {row['key_id']}"
    )
    if not report.compare("row hash (recomputed from its fields)", row["row_hash"], row_hash(row)):
        return
    root = _hex(fold(row["row_hash"], proof["path"]))
    if not report.compare("Merkle path to the day's root", proof["root"], root):
        return
    if node is None or contract is None:
        report.unchecked("the day's root on chain", "no --rpc-url")
        return
    seal = sealed(node, contract, int(row["day"]))
    if seal is None:
        report.unchecked("the day's root on chain", f"day {row['day']} is not sealed on chain (yet)")
        return
    report.compare(f"root of day {row['day']} sealed on chain", root, _hex(seal["root"]))


def check_day(report: Report, day: int, rows: list[dict[str, Any]], node: Node, contract: str) -> None:
    """Every row of a UTC day (from the API): each row's hash, the chain between them (no
    row missing or moved), and the rebuilt root, count and last hash against the seal."""
    report.note(f"access log of {day_date(day).isoformat()} (day {day}): {len(rows)} rows from the API")
    whole = True
    for before, row in zip([None, *rows[:-1]], rows, strict=True):
        if int(row["day"]) != day:
            report.mismatch(f"row {row['seq']}'s day", day, row["day"])
            whole = False
        if row_hash(row) != row["row_hash"]:
            report.mismatch(
                f"row {row['seq']}'s hash (recomputed from its fields)", row["row_hash"], row_hash(row)
            )
            whole = False
        if before is not None and (row["seq"] != before["seq"] + 1 or row["prev_hash"] != before["row_hash"]):
            report.mismatch(
                f"row {row['seq']} follows row {before['seq']} (a row missing, moved or changed between)",
                row["prev_hash"],
                before["row_hash"],
            )
            whole = False
    if whole:
        report.ok("every row's hash and its link to the row before", len(rows))
    seal = sealed(node, contract, day)
    if seal is None:
        report.unchecked("the day's root on chain", f"day {day} is not sealed on chain (yet)")
        return
    report.compare("row count sealed on chain", len(rows), int(seal["rowCount"]))
    if rows:
        report.compare(
            "last row's hash sealed on chain", "0x" + rows[-1]["row_hash"], _hex(seal["lastRowHash"])
        )
        report.compare(
            "root rebuilt from the rows", _hex(root_of([r["row_hash"] for r in rows])), _hex(seal["root"])
        )


def day_date(day: int) -> date:
    return date.fromordinal(EPOCH.toordinal() + day)


def day_number(text: str) -> int:
    """A UTC day as days since 1970-01-01, from YYYY-MM-DD (ValueError otherwise)."""
    return (date.fromisoformat(text) - EPOCH).days


__all__ = ["Unavailable", "check_day", "check_row", "day_number", "root_of", "row_hash"]
