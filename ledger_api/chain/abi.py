"""The ledger contract's ABI, read once from the committed artifact: every table the
service, the indexer and the audit views need is built here and nowhere else.

- calls: `encode` builds calldata from selectors and types computed once per function,
  `decode_result` decodes a view's answer. web3's ContractFunction path looks the
  function up in the ABI, validates and re-encodes on every call: about 5 ms here, more
  than the node takes to run the call. The write path encodes a few thousand calls a
  second, so it uses these instead (tests/api/test_encoding.py checks them against web3).
- `encode_donations`: recordDonations encoded by hand (under 1 ms for 500, against
  ~70 ms through eth_abi; checked against eth_abi by a property test).
- custom errors: `decode_contract_error`, `revert_data`, `contract_error_of`.
- events: `events()` gives each event's name, topic and inputs, from which the indexer
  builds its log decoders; `EVENT_NAMES` is the audit trail's list of events.

Only libraries and the kernel (`ledger_api.core`) are imported, so the indexer can use
this module without the rest of the service.
"""

from __future__ import annotations

import ast
import contextlib
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import event_abi_to_log_topic, function_signature_to_4byte_selector
from eth_utils.abi import collapse_if_tuple

from ledger_api.core.hexes import unhex
from ledger_api.core.paths import ARTIFACTS_DIR

LEDGER = "CharityLedger"


@cache
def load_artifact(name: str = LEDGER) -> dict[str, Any]:
    """The committed build artifact (ABI, bytecode, compiler version and settings)."""
    with (ARTIFACTS_DIR / f"{name}.json").open() as handle:
        artifact: dict[str, Any] = json.load(handle)
    return artifact


def _abi(kind: str) -> list[dict[str, Any]]:
    return [item for item in load_artifact()["abi"] if item.get("type") == kind]


# ------------------------------------------------------------------ calls


@dataclass(frozen=True)
class Call:
    """One call of a ledger contract function, encoded."""

    fn_name: str
    args: tuple[Any, ...]
    data: bytes


@cache
def _functions() -> dict[str, tuple[bytes, tuple[str, ...], tuple[str, ...]]]:
    table = {}
    for item in _abi("function"):
        inputs = tuple(collapse_if_tuple(i) for i in item["inputs"])
        outputs = tuple(collapse_if_tuple(o) for o in item.get("outputs", []))
        selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(inputs)})")
        table[item["name"]] = (selector, inputs, outputs)
    return table


def selector(fn_name: str) -> bytes:
    return _functions()[fn_name][0]


def encode(fn_name: str, *args: Any) -> Call:
    selector_, inputs, _ = _functions()[fn_name]
    return Call(fn_name, args, selector_ + abi_encode(list(inputs), list(args)))


def decode_result(fn_name: str, data: bytes) -> tuple[Any, ...]:
    return tuple(abi_decode(list(_functions()[fn_name][2]), data))


def as_call(call: Any) -> Call:
    """A Call, from a Call or a web3 ContractFunction (for callers that have one)."""
    if isinstance(call, Call):
        return call
    return encode(call.fn_name, *call.args)


def encode_donations(donations: list[tuple[Any, ...]]) -> Call:
    """recordDonations(DonationInput[]) encoded by hand: the tuple is six static words,
    so the ABI encoding is the selector, the array's offset (32) and length, then six
    words per donation. eth_abi takes ~70 ms for 500; this takes well under 1 ms.
    tests/api/test_encoding.py checks it against eth_abi."""
    words = [selector("recordDonations"), (32).to_bytes(32, "big"), len(donations).to_bytes(32, "big")]
    for donation_id, campaign, amount, commitment, channel, metadata in donations:
        if not 0 < amount < 2**256:
            raise ValueError("amount out of range")
        words += [donation_id, campaign, amount.to_bytes(32, "big"), commitment, channel, metadata]
    if any(len(w) != 32 for w in words[1:]):
        raise ValueError("every field of a DonationInput is 32 bytes")
    return Call("recordDonations", (donations,), b"".join(words))


# ---------------------------------------------------------- custom errors


@dataclass(frozen=True)
class ContractError:
    """A custom error the contract reverted with, decoded from the revert data."""

    name: str
    args: tuple[Any, ...]
    arg_names: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(self.arg_names, self.args, strict=True))


@cache
def _error_decoders() -> dict[bytes, tuple[str, list[str], tuple[str, ...]]]:
    decoders = {}
    # OpenZeppelin's errors appear in the ABI too (AccessControl, Pausable).
    for item in _abi("error"):
        types = [collapse_if_tuple(param) for param in item["inputs"]]
        selector_ = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
        decoders[selector_] = (item["name"], types, tuple(p["name"] for p in item["inputs"]))
    return decoders


def decode_contract_error(data: bytes | str) -> ContractError | None:
    """Decode revert data into the contract's custom error, or None if it is not one."""
    raw = unhex(data) if isinstance(data, str) else data
    decoder = _error_decoders().get(raw[:4])
    if decoder is None:
        return None
    name, types, names = decoder
    return ContractError(name=name, args=tuple(abi_decode(types, raw[4:])), arg_names=names)


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert data carried by an exception from a call or transaction, if any.

    JSON-RPC nodes give it to web3 as `ContractCustomError.data` (a hex string); the
    in-process eth-tester raises `TransactionFailed` whose message is the repr of the
    bytes (`execution reverted: b'...'`).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        data = getattr(current, "data", None)
        if isinstance(data, str) and data.startswith("0x"):
            return unhex(data)
        if isinstance(data, bytes | bytearray):
            return bytes(data)
        if current.args and isinstance(current.args[0], bytes | bytearray):
            return bytes(current.args[0])
        if current.args and isinstance(current.args[0], str):
            message = current.args[0].removeprefix("execution reverted: ")
            if message.startswith(("b'", 'b"')):
                with contextlib.suppress(ValueError, SyntaxError):
                    value = ast.literal_eval(message)
                    if isinstance(value, bytes):
                        return value
        current = current.__cause__ or current.__context__
    return None


def contract_error_of(exc: BaseException) -> ContractError | None:
    """The contract's custom error behind an exception, or None if there is none."""
    data = revert_data(exc)
    return decode_contract_error(data) if data else None


# ----------------------------------------------------------------- events


@dataclass(frozen=True)
class EventParam:
    name: str
    type: str
    indexed: bool


@dataclass(frozen=True)
class Event:
    """One event of the contract: its name, its topic (keccak of the signature) and its
    parameters in order."""

    name: str
    topic: bytes
    inputs: tuple[EventParam, ...]


@cache
def events() -> tuple[Event, ...]:
    """Every event of the contract: the ledger's own, and the access-control and pause
    events of the deployment itself."""
    return tuple(
        Event(
            name=item["name"],
            topic=event_abi_to_log_topic(item),  # type: ignore[arg-type]
            inputs=tuple(EventParam(p["name"], p["type"], bool(p["indexed"])) for p in item["inputs"]),
        )
        for item in _abi("event")
    )


# The events the audit trail shows, in name order: all of them.
EVENT_NAMES: tuple[str, ...] = tuple(sorted(event.name for event in events()))
