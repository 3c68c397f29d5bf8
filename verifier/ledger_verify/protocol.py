"""The protocol a verifier needs: the ledger's event and view fragments (its own copy in
protocol.json, held equal to the repository's build artifact by a test), record IDs as
they are on chain, and decoding a raw log with the ABI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

# The fragments ledger-verify carries (events it decodes, views it calls).
EVENTS = (
    "CampaignClosed",
    "CampaignCreated",
    "CharityRegistered",
    "CorrectionRecorded",
    "DisbursementApproved",
    "DisbursementProposed",
    "DisbursementRecorded",
    "DonationAllocated",
    "DonationRecorded",
    "DonationRefunded",
    "EvidenceAnchored",
    "GrantAddressed",
    "GrantReceived",
    "ReceiptConfirmed",
    "RecipientRegistered",
)
VIEWS = (
    "campaignOf",
    "disbursementOf",
    "donationOf",
    "grantOf",
    "grantSourceOf",
    "isEvidenceAnchored",
    "proposalOf",
    "recipientOf",
    "refundOf",
)


@cache
def fragments() -> list[dict[str, Any]]:
    """The ABI fragments, as in the contract's build artifact."""
    text = resources.files("ledger_verify").joinpath("protocol.json").read_text("utf-8")
    loaded: list[dict[str, Any]] = json.loads(text)
    return loaded


def _type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


def signature(fragment: dict[str, Any]) -> str:
    return f"{fragment['name']}({','.join(_type(i) for i in fragment['inputs'])})"


@dataclass(frozen=True)
class Event:
    name: str
    topic: bytes
    inputs: tuple[dict[str, Any], ...]


@cache
def events() -> dict[str, Event]:
    out = {}
    for item in fragments():
        if item["type"] == "event":
            out[item["name"]] = Event(item["name"], keccak(signature(item).encode()), tuple(item["inputs"]))
    return out


def event_by_topic(topic: bytes) -> Event | None:
    return next((e for e in events().values() if e.topic == topic), None)


def decode_log(event: Event, topics: list[bytes], data: bytes) -> dict[str, Any]:
    """The named fields of a log of `event` (ValueError if it is not one)."""
    if not topics or topics[0] != event.topic:
        raise ValueError(f"the log is not a {event.name} event")
    indexed = [i for i in event.inputs if i.get("indexed")]
    plain = [i for i in event.inputs if not i.get("indexed")]
    if len(topics) != 1 + len(indexed):
        raise ValueError(f"a {event.name} log has {1 + len(indexed)} topics, not {len(topics)}")
    fields: dict[str, Any] = {}
    for item, topic in zip(indexed, topics[1:], strict=True):
        fields[item["name"]] = abi_decode([_type(item)], topic)[0]
    values = abi_decode([_type(i) for i in plain], data, strict=True)
    for item, value in zip(plain, values, strict=True):
        fields[item["name"]] = value
    return fields


@cache
def _view(name: str) -> dict[str, Any]:
    return next(i for i in fragments() if i["type"] == "function" and i["name"] == name)


def view_call(name: str, *args: Any) -> bytes:
    fragment = _view(name)
    selector = keccak(signature(fragment).encode())[:4]
    return selector + abi_encode([_type(i) for i in fragment["inputs"]], list(args))


def view_result(name: str, data: bytes) -> dict[str, Any]:
    """A view's answer by field name (a single tuple output is opened up)."""
    outputs = _view(name)["outputs"]
    values = abi_decode([_type(o) for o in outputs], data)
    if len(outputs) == 1 and outputs[0]["type"] == "tuple":
        return dict(zip((c["name"] for c in outputs[0]["components"]), values[0], strict=True))
    return {(o["name"] or f"value{n}"): v for n, (o, v) in enumerate(zip(outputs, values, strict=True))}


# ------------------------------------------------------------------ IDs


def id_bytes(record_id: str) -> bytes:
    """A record ID as on chain: its ASCII text, zero-padded to 32 bytes."""
    raw = record_id.strip().upper().encode("ascii")
    if not raw or len(raw) > 32:
        raise ValueError(f"not a record ID: {record_id!r}")
    return raw.ljust(32, b"\0")


def text(value: bytes) -> str:
    """ASCII text held in bytes (an ID, a currency, a channel), without the zero padding."""
    return value.rstrip(b"\0").decode("ascii", errors="replace")
