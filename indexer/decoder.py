"""Log decoding with decoders built once per event from the ABI (chain/abi.py's event table).

web3's per-log `process_log` costs ~160 µs a log here. These decoders read indexed
arguments straight from the topics and, for events whose data holds only static types,
slice the 32-byte words by hand (under 1 µs); events with dynamic data (strings) go
through `eth_abi.decode` (~25 µs), which is fine for the rarer kinds that carry text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import to_checksum_address

from ledger_api.chain import abi
from ledger_api.core.hexes import bare, hex0x, to_int, unhex

STATIC_TYPES = {"bytes32", "uint256", "uint64", "uint8", "address", "bytes3", "bool"}


@lru_cache(maxsize=4096)
def _checksum(address_hex: str) -> str:
    """Checksummed addresses, remembered: a ledger's events name a few operator
    accounts many thousands of times, and checksumming costs a keccak each."""
    return str(to_checksum_address("0x" + address_hex))


# Word decoders work on the 64 hex digits of one 32-byte word, straight from the JSON
# answer: the mirror stores hex, so going through bytes and back would be wasted work.
def _word_decoder(abi_type: str) -> Callable[[str], Any]:
    if abi_type == "bytes32":
        return lambda word: "0x" + word
    if abi_type in ("uint256", "uint64", "uint8"):
        return lambda word: int(word, 16)
    if abi_type == "address":
        return lambda word: _checksum(word[24:])
    if abi_type == "bytes3":
        return lambda word: "0x" + word[:6]
    if abi_type == "bool":
        return lambda word: word[-1] == "1"
    raise ValueError(f"no word decoder for {abi_type}")


def text(raw: bytes) -> str:
    """A string argument as stored: UTF-8, with each invalid byte and each NUL shown as
    U+FFFD (the same text as eth_abi's for every valid string without a NUL)."""
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _plain(value: Any) -> Any:
    return hex0x(value) if isinstance(value, bytes) else value


@dataclass(slots=True)
class DecodedLog:
    """One ledger event. Hashes and bytes values are 0x-prefixed lower-case hex."""

    name: str
    args: dict[str, Any]
    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int


class EventDecoder:
    """Decodes one event kind; built once from its ABI entry."""

    def __init__(self, event: abi.Event) -> None:
        self.name = event.name
        self.topic = event.topic
        self.indexed = [(p.name, _word_decoder(p.type)) for p in event.inputs if p.indexed]
        data = [(p.name, p.type) for p in event.inputs if not p.indexed]
        self.data_names = [name for name, _ in data]
        self.data_types = [t for _, t in data]
        # Strings are read as bytes and decoded here: a contract call made outside the
        # service can put any bytes in a string (invalid UTF-8 makes eth_abi raise; a NUL is
        # refused by PostgreSQL's text), and one such event must not stop the mirror.
        self.wire_types = ["bytes" if t == "string" else t for t in self.data_types]
        self.static = all(t in STATIC_TYPES for t in self.data_types)
        self.words = [_word_decoder(t) for t in self.data_types] if self.static else []

    def decode(self, topics: list[str], data: str) -> dict[str, Any]:
        """`topics` and `data` as hex without the 0x prefix."""
        args = {name: word(topics[i + 1]) for i, (name, word) in enumerate(self.indexed)}
        if self.static:
            for i, (name, word) in enumerate(zip(self.data_names, self.words, strict=True)):
                args[name] = word(data[64 * i : 64 * i + 64])
        else:
            values = abi_decode(self.wire_types, unhex(data))
            for name, kind, value in zip(self.data_names, self.data_types, values, strict=True):
                # eth_abi gives addresses in lower case; the static path checksums them.
                if kind == "address":
                    args[name] = _checksum(value[2:].lower())
                elif kind == "string":
                    args[name] = text(value)
                else:
                    args[name] = _plain(value)
        return args


class LogDecoder:
    """Decodes raw JSON-RPC logs of the ledger contract into DecodedLog records."""

    def __init__(self) -> None:
        decoders = (EventDecoder(event) for event in abi.events())
        self.by_topic = {bare(d.topic): d for d in decoders}

    @property
    def topics(self) -> list[str]:
        return [hex0x(d.topic) for d in self.by_topic.values()]

    def decode(self, log: dict[str, Any]) -> DecodedLog | None:
        """A log as JSON-RPC gives it (hex strings), or as web3 formats it (bytes)."""
        raw_topics = log["topics"]
        if raw_topics and isinstance(raw_topics[0], str):  # JSON-RPC: 0x + lower-case hex
            topics = [t[2:] for t in raw_topics]
        else:
            topics = [bare(t) for t in raw_topics]
        decoder = self.by_topic.get(topics[0]) if topics else None
        if decoder is None:
            return None
        return DecodedLog(
            name=decoder.name,
            args=decoder.decode(topics, bare(log["data"])),
            block_number=to_int(log["blockNumber"]),
            block_hash="0x" + bare(log["blockHash"]),
            tx_hash="0x" + bare(log["transactionHash"]),
            tx_index=to_int(log["transactionIndex"]),
            log_index=to_int(log["logIndex"]),
        )
