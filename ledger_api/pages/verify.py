"""The "Verify it yourself" boxes: copy-paste commands for Foundry's `cast` (and curl,
sha256sum) with the values they must print if what the page says is true.

Every expected value is derived from what the page itself shows (the mirror's claims, read
through the same read services), encoded as the contract would have: record IDs as bytes32
(core/ids.py), channels as zero-padded text, amounts in minor units. The node then says what
really happened: a mirror that lies shows the lie in the box, and the command's output
contradicts it. Fields the page does not otherwise state (the operator, a metadata hash,
running totals the mirror keeps) come from the mirror's copy of the event.

Numbers (blocks, log indexes, amounts) are decimal throughout, as cast prints them. cast
adds a rounded reading in brackets after large numbers ("150000 [1.5e5]"): not part of the
value. Strings print as cast prints them: in double quotes, with `"` and `\\` escaped.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from eth_utils import to_checksum_address

from ledger_api.chain import abi
from ledger_api.core import ids
from ledger_api.core.answers import Proof
from ledger_api.core.hexes import hex0x, pad32

# cast prints a log's fields as "name: value" lines; these pick one log's data and count logs.
DATA_OF_LOG = "awk '/data:/ {print $2}'"
COUNT_LOGS = "grep -c transactionHash"
# When this service names no public node: the reader sets RPC_URL to one of their choice.
RPC_VARIABLE = "$RPC_URL"


@dataclass(frozen=True)
class Where:
    """What every command needs: the node, the contract, where its history starts, the
    block the page's totals are read at, and this service's public address."""

    rpc_url: str
    contract: str
    deployment_block: int
    base_url: str

    @property
    def rpc(self) -> str:
        """The RPC URL as a shell word; without one, the variable the page asks to set."""
        return shlex.quote(self.rpc_url) if self.rpc_url != RPC_VARIABLE else f'"{RPC_VARIABLE}"'

    @property
    def api(self) -> str:
        return shlex.quote(self.base_url)


@dataclass(frozen=True)
class Value:
    """One field as cast prints it, with a reading for people (money, a record ID, text)."""

    name: str
    type: str
    printed: str
    note: str | None = None


@dataclass(frozen=True)
class Command:
    """A command line and the lines of its output that must be there (`expected`)."""

    code: str
    expected: tuple[str, ...]
    kind: str  # the key of the sentence saying what it proves: verify.cmd.<kind>


@dataclass(frozen=True)
class EventCheck:
    """How to find one event on a node and what it must say."""

    event: str
    signature: str  # "DonationAllocated(bytes32,bytes32,uint256,uint256)"
    topic0: str
    topics: tuple[Value, ...]
    fields: tuple[Value, ...]
    hidden: tuple[str, ...]  # fields printed by cast but not stated here (a donor commitment)
    proof: Proof
    commands: tuple[Command, ...]


@dataclass(frozen=True)
class StateCheck:
    """A view call at a block, and queries that list every record of a kind."""

    commands: tuple[Command, ...] = field(default_factory=tuple)


@cache
def _events() -> dict[str, abi.Event]:
    return {event.name: event for event in abi.events()}


def signature(name: str) -> str:
    event = _events()[name]
    return f"{name}({','.join(p.type for p in event.inputs)})"


def topic0(name: str) -> str:
    return hex0x(_events()[name].topic)


def cast_string(text: str) -> str:
    """A string as cast prints it (Rust's debug form): quoted, `"` and `\\` escaped, control
    characters as escapes."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif char == "\0":
            out.append("\\0")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{{{ord(char):x}}}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def printed(kind: str, value: Any) -> str:
    """A value of ABI type `kind` as cast prints it."""
    if kind == "string":
        return cast_string(str(value))
    if kind == "bool":
        return "true" if value else "false"
    if kind.startswith("uint") or kind.startswith("int"):
        return str(int(value))
    if kind == "address":
        return str(value)  # checksummed, as the mirror keeps it and cast prints it
    if kind.startswith("bytes"):
        return hex0x(value).lower()
    raise ValueError(f"no printed form for {kind}")


def as_bytes32(record_id: str) -> str:
    return hex0x(ids.to_bytes32(record_id))


def logs_command(where: Where, name: str, topics: list[str], first: int, last: int | None) -> str:
    """`cast logs` for the contract's events `name` with these topics ("" = any)."""
    wanted = " ".join(t if t else '""' for t in topics)
    to = f" --to-block {last}" if last is not None else ""
    address = f"--address {where.contract} {topic0(name)} {wanted}"
    return f"cast logs --from-block {first}{to} {address} --rpc-url {where.rpc}"


def event_check(
    where: Where,
    name: str,
    proof: Proof,
    indexed: Mapping[str, str],
    data: Mapping[str, Any],
    notes: Mapping[str, str] | None = None,
    hidden: tuple[str, ...] = (),
) -> EventCheck:
    """The check of one event: its topics (`indexed`: name -> 0x bytes32) and its data
    (`data`: name -> value; names in `hidden` are printed by cast but not stated here)."""
    notes = notes or {}
    event = _events()[name]
    topics = tuple(
        Value(p.name, p.type, indexed[p.name], notes.get(p.name)) for p in event.inputs if p.indexed
    )
    body = [p for p in event.inputs if not p.indexed]
    fields = tuple(
        Value(p.name, p.type, printed(p.type, data[p.name]), notes.get(p.name))
        for p in body
        if p.name not in hidden
    )
    one = logs_command(where, name, [t.printed for t in topics], proof.block_number, proof.block_number)
    found = Command(
        one,
        (
            f"- address: {to_checksum_address(proof.contract)}",
            f"blockNumber: {proof.block_number}",
            f"logIndex: {proof.log_index}",
            f"transactionHash: {proof.tx_hash}",
        ),
        "log",
    )
    types = ",".join(p.type for p in body)
    decoded = Command(
        f'cast abi-decode "{name}()({types})" $({one} | {DATA_OF_LOG})',
        tuple(f.printed for f in fields),
        "decode",
    )
    return EventCheck(
        event=name,
        signature=signature(name),
        topic0=topic0(name),
        topics=topics,
        fields=fields,
        hidden=hidden,
        proof=proof,
        commands=(found, decoded),
    )


def call_command(where: Where, function: str, record_hex: str, block: int, expected: str) -> Command:
    """A view call at `block` and the tuple it must print."""
    return Command(
        f'cast call {where.contract} "{function}" {record_hex} --block {block} --rpc-url {where.rpc}',
        (expected,),
        "view",
    )


def count_command(where: Where, name: str, topics: list[str], last: int, count: int, kind: str) -> Command:
    """Every event `name` with these topics from the deployment block to `last`, counted."""
    query = logs_command(where, name, topics, where.deployment_block, last)
    return Command(f"{query} | {COUNT_LOGS}", (str(count),), kind)


def tuple_of(values: list[str]) -> str:
    return "(" + ", ".join(values) + ")"


def evidence_commands(
    where: Where, disbursement_id: str, sha256: str, document: str | None, block: int
) -> StateCheck:
    """The document's bytes hash to the anchored hash, and the contract says it is anchored."""
    commands = []
    if document is not None:
        url = shlex.quote(where.base_url.rstrip("/") + document)
        commands.append(Command(f"curl -sS {url} | sha256sum", (f"{sha256}  -",), "sha256"))
    commands.append(
        call_command(
            where,
            "isEvidenceAnchored(bytes32,bytes32)(bool)",
            f"{as_bytes32(disbursement_id)} 0x{sha256}",
            block,
            "true",
        )
    )
    return StateCheck(tuple(commands))


# ------------------------------------------------------------------ the pages' checks

Money = Callable[[int], str]
Args = Mapping[tuple[int, int], Mapping[str, Any]]


def at(proof: Proof) -> tuple[int, int]:
    return (proof.block_number, proof.log_index)


def indexed_block(proof: Proof) -> int:
    """The block the mirror had indexed when it answered (its totals are as of this block)."""
    return proof.block_number + max(proof.confirmations, 1) - 1


@dataclass(frozen=True)
class PageChecks:
    """Everything a page's boxes show: one check per event (by its position), the state
    checks of the page's record and of each evidence document (by its hash)."""

    where: Where
    events: dict[tuple[int, int], EventCheck]
    state: StateCheck
    evidence: dict[tuple[str, str], StateCheck]
    record_id: str
    as_of: int


def _of(args: Args, proof: Proof, name: str) -> Any:
    """A field the page does not state, from the mirror's copy of the event."""
    return args.get(at(proof), {}).get(name, "")


def _disbursement_event(where: Where, args: Args, money: Money, b: Any, count: int | None) -> EventCheck:
    allocations = count if count is not None else _of(args, b.proof, "allocationCount")
    return event_check(
        where,
        "DisbursementRecorded",
        b.proof,
        {"disbursementId": as_bytes32(b.id), "campaignId": as_bytes32(b.campaign_id)},
        {
            "amount": b.amount,
            "recipient": b.recipient,
            "purpose": b.purpose,
            "allocationCount": allocations,
            "operator": _of(args, b.proof, "operator"),
        },
        {"amount": money(b.amount), "disbursementId": b.id, "campaignId": b.campaign_id},
    )


def _evidence(where: Where, args: Args, disbursement_id: str, e: Any, out: PageChecksBuilder) -> None:
    out.events[at(e.proof)] = event_check(
        where,
        "EvidenceAnchored",
        e.proof,
        {"disbursementId": as_bytes32(disbursement_id), "documentHash": "0x" + e.sha256},
        {"evidenceCount": _of(args, e.proof, "evidenceCount"), "operator": _of(args, e.proof, "operator")},
        {"disbursementId": disbursement_id, "documentHash": "SHA-256"},
    )
    out.evidence[(disbursement_id, e.sha256)] = evidence_commands(
        where, disbursement_id, e.sha256, e.document, indexed_block(e.proof)
    )


@dataclass
class PageChecksBuilder:
    events: dict[tuple[int, int], EventCheck] = field(default_factory=dict)
    evidence: dict[tuple[str, str], StateCheck] = field(default_factory=dict)


def donation_checks(where: Where, d: Any, campaign_id: str, args: Args, money: Money) -> PageChecks:
    """The trace page's checks: the donation, each allocation (with its disbursement and
    evidence) and each refund; the donation's state as of the mirror's block; and the
    queries that list every allocation and refund of the donation."""
    out = PageChecksBuilder()
    donation = as_bytes32(d.id)
    out.events[at(d.proof)] = event_check(
        where,
        "DonationRecorded",
        d.proof,
        {"donationId": donation, "campaignId": as_bytes32(campaign_id)},
        {
            "amount": d.amount,
            "channel": pad32(d.channel),
            "metadataHash": _of(args, d.proof, "metadataHash"),
            "operator": _of(args, d.proof, "operator"),
        },
        {"amount": money(d.amount), "donationId": d.id, "campaignId": campaign_id, "channel": d.channel},
        hidden=("donorCommitment",),
    )
    running = 0
    for a in sorted(d.allocations, key=lambda a: at(a.proof)):
        running += a.amount
        b = a.disbursement
        out.events[at(a.proof)] = event_check(
            where,
            "DonationAllocated",
            a.proof,
            {"disbursementId": as_bytes32(b.id), "donationId": donation},
            {"amount": a.amount, "donationAllocated": running},
            {
                "amount": money(a.amount),
                "donationAllocated": money(running),
                "disbursementId": b.id,
                "donationId": d.id,
            },
        )
        disbursement = _Disbursement(b.id, campaign_id, b.amount, b.recipient, b.purpose, b.proof)
        out.events[at(b.proof)] = _disbursement_event(where, args, money, disbursement, None)
        for e in b.evidence:
            _evidence(where, args, b.id, e, out)
    refunded = 0
    for f in sorted(d.refunds, key=lambda f: at(f.proof)):
        refunded += f.amount
        out.events[at(f.proof)] = event_check(
            where,
            "DonationRefunded",
            f.proof,
            {"refundId": as_bytes32(f.id), "donationId": donation, "campaignId": as_bytes32(campaign_id)},
            {
                "amount": f.amount,
                "donationRefunded": refunded,
                "reason": f.reason,
                "operator": _of(args, f.proof, "operator"),
            },
            {
                "amount": money(f.amount),
                "donationRefunded": money(refunded),
                "refundId": f.id,
                "donationId": d.id,
            },
        )
    as_of = d.mirror.indexed_block
    state = StateCheck(
        (
            call_command(
                where,
                "donationOf(bytes32)((bytes32,uint256,uint256,uint256,uint256))",
                donation,
                as_of,
                tuple_of(
                    [
                        as_bytes32(campaign_id),
                        *(str(v) for v in (d.amount, d.allocated, d.refunded, d.remaining)),
                    ]
                ),
            ),
            count_command(
                where, "DonationAllocated", ["", donation], as_of, len(d.allocations), "allocations"
            ),
            count_command(where, "DonationRefunded", ["", donation], as_of, len(d.refunds), "refunds"),
        )
    )
    return PageChecks(where, out.events, state, out.evidence, d.id, as_of)


@dataclass(frozen=True)
class _Disbursement:
    id: str
    campaign_id: str
    amount: int
    recipient: str
    purpose: str
    proof: Proof


def disbursement_checks(where: Where, b: Any, args: Args, money: Money) -> PageChecks:
    """The disbursement page's checks: its event, each evidence document, its state as of
    the mirror's block, and the queries that list its allocations and its evidence."""
    out = PageChecksBuilder()
    disbursement = as_bytes32(b.id)
    shown = _Disbursement(b.id, b.campaign.id, b.amount, b.recipient, b.purpose, b.proof)
    out.events[at(b.proof)] = _disbursement_event(where, args, money, shown, len(b.funded_by))
    for e in b.evidence:
        _evidence(where, args, b.id, e, out)
    as_of = indexed_block(b.proof)
    state = StateCheck(
        (
            call_command(
                where,
                "disbursementOf(bytes32)((bytes32,uint256,uint256,uint256))",
                disbursement,
                as_of,
                tuple_of(
                    [as_bytes32(b.campaign.id), str(b.amount), str(len(b.funded_by)), str(len(b.evidence))]
                ),
            ),
            count_command(where, "DonationAllocated", [disbursement], as_of, len(b.funded_by), "funding"),
            count_command(where, "EvidenceAnchored", [disbursement], as_of, len(b.evidence), "documents"),
        )
    )
    return PageChecks(where, out.events, state, out.evidence, b.id, as_of)


def campaign_checks(where: Where, cp: Any, args: Args, money: Money) -> PageChecks:
    """The campaign page's checks: its creation event, its totals as of the mirror's block,
    and the queries that list its donations and disbursements."""
    campaign = as_bytes32(cp.id)
    created = event_check(
        where,
        "CampaignCreated",
        cp.proof,
        {"campaignId": campaign, "charityId": as_bytes32(cp.charity_id)},
        {
            "name": cp.name,
            "currency": cp.currency.encode("ascii"),
            "goal": cp.goal,
            "metadataHash": _of(args, cp.proof, "metadataHash"),
            "operator": _of(args, cp.proof, "operator"),
        },
        {"goal": money(cp.goal), "currency": cp.currency, "campaignId": cp.id, "charityId": cp.charity_id},
    )
    as_of = indexed_block(cp.proof)
    view = [
        as_bytes32(cp.charity_id),
        hex0x(cp.currency.encode("ascii")),
        "true" if cp.closed else "false",
        *(str(v) for v in (cp.goal, cp.received, cp.refunded, cp.disbursed, cp.available)),
        str(cp.donation_count),
        str(cp.disbursement_count),
    ]
    state = StateCheck(
        (
            call_command(
                where,
                "campaignOf(bytes32)((bytes32,bytes3,bool,uint256,uint256,uint256,uint256,uint256,uint256,uint256))",
                campaign,
                as_of,
                tuple_of(view),
            ),
            count_command(where, "DonationRecorded", ["", campaign], as_of, cp.donation_count, "donations"),
            count_command(
                where, "DisbursementRecorded", ["", campaign], as_of, cp.disbursement_count, "disbursements"
            ),
        )
    )
    return PageChecks(where, {at(cp.proof): created}, state, {}, cp.id, as_of)


__all__ = [
    "RPC_VARIABLE",
    "Command",
    "EventCheck",
    "PageChecks",
    "StateCheck",
    "Value",
    "Where",
    "at",
    "campaign_checks",
    "disbursement_checks",
    "donation_checks",
    "printed",
    "signature",
    "topic0",
]
