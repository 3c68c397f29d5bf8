"""A proof bundle (`GET /v1/donations/{id}/proof`), checked with no node: each block
header's keccak-256 must be a trusted block hash (from a node, or given by hand), each
receipt must sit in the header's receipts trie (its Merkle proof, from the root down), and
each claimed log is read from its receipt. Nothing else in the bundle is believed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import rlp
from eth_hash.auto import keccak
from trie import HexaryTrie
from trie.exceptions import BadTrieProof

# Header fields by position (every fork keeps the first fifteen in place).
RECEIPTS_ROOT, NUMBER = 5, 8


class Tampered(ValueError):
    """The bundle does not prove what it says (the message says which part)."""


def unhex(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise Tampered(f"{what} is not 0x-hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise Tampered(f"{what} is not 0x-hex") from None


@dataclass(frozen=True)
class Header:
    number: int
    hash: bytes
    receipts_root: bytes


def header(encoded: bytes) -> Header:
    try:
        fields = rlp.decode(encoded)
    except rlp.DecodingError:
        raise Tampered("the block header is not RLP") from None
    if not isinstance(fields, list) or len(fields) < 15:
        raise Tampered("the block header has too few fields")
    return Header(int.from_bytes(fields[NUMBER], "big"), keccak(encoded), bytes(fields[RECEIPTS_ROOT]))


def receipt_logs(encoded: bytes) -> list[tuple[bytes, list[bytes], bytes]]:
    """(address, topics, data) of each log in a receipt, legacy or typed (EIP-2718)."""
    body = encoded[1:] if encoded and encoded[0] < 0x7F else encoded
    try:
        fields = rlp.decode(body)
    except rlp.DecodingError:
        raise Tampered("the receipt is not RLP") from None
    if not isinstance(fields, list) or len(fields) != 4 or not isinstance(fields[3], list):
        raise Tampered("the receipt is not [status, gas, bloom, logs]")
    out = []
    for entry in fields[3]:
        if not isinstance(entry, list) or len(entry) != 3 or not isinstance(entry[1], list):
            raise Tampered("a log in the receipt is not [address, topics, data]")
        out.append((bytes(entry[0]), [bytes(t) for t in entry[1]], bytes(entry[2])))
    return out


def proven_receipt(root: bytes, index: int, encoded: bytes, nodes: list[bytes]) -> None:
    """Raises Tampered unless the receipt at `index` of the trie with this root is `encoded`."""
    try:
        decoded = [rlp.decode(node) for node in nodes]
        value = HexaryTrie.get_from_proof(root, rlp.encode(index), decoded)
    except (BadTrieProof, rlp.DecodingError, ValueError, KeyError, IndexError, TypeError):
        raise Tampered("the receipt's Merkle proof does not lead to the header's receiptsRoot") from None
    if value != encoded:
        raise Tampered("the receipt differs from the one the header's receiptsRoot holds")


class Bundle:
    """The bundle's blocks and logs, each proven only when it is read."""

    def __init__(self, data: dict[str, Any], trusted: Callable[[int], bytes | None]) -> None:
        self.data = data
        self.trusted = trusted
        blocks = data.get("blocks")
        receipts = data.get("receipts")
        if not isinstance(blocks, list) or not isinstance(receipts, list):
            raise Tampered("the bundle has no blocks or receipts")
        self.blocks = {b.get("number"): b for b in blocks if isinstance(b, dict)}
        self.receipts = {
            (r.get("block_number"), str(r.get("tx_hash", "")).lower()): r
            for r in receipts
            if isinstance(r, dict)
        }

    def block(self, number: int) -> Header:
        """The block's header, its hash checked against a trusted one (Tampered, or
        LookupError when no trusted hash is known)."""
        entry = self.blocks.get(number)
        if entry is None:
            raise Tampered(f"block {number} is not in the bundle")
        found = header(unhex(entry.get("header"), f"block {number}'s header"))
        if found.number != number:
            raise Tampered(f"block {number}'s header is the header of block {found.number}")
        trusted = self.trusted(number)
        if trusted is None:
            raise LookupError(f"no trusted hash for block {number} (give --rpc-url or --block-hash)")
        if found.hash != trusted:
            raise Tampered(
                f"block {number}'s header hashes to 0x{found.hash.hex()},"
                f" the trusted hash is 0x{trusted.hex()}"
            )
        return found

    def log(self, block_number: int, tx_hash: str, log_index: int) -> tuple[bytes, list[bytes], bytes]:
        """The log (address, topics, data) at a claimed position, proven up to the header."""
        head = self.block(block_number)
        entry = self.receipts.get((block_number, tx_hash.lower()))
        if entry is None:
            raise Tampered(f"the bundle has no receipt of {tx_hash} in block {block_number}")
        encoded = unhex(entry.get("receipt"), "a receipt")
        nodes = entry.get("proof")
        index = entry.get("transaction_index")
        if not isinstance(nodes, list) or not isinstance(index, int) or index < 0:
            raise Tampered("a receipt's proof or transaction index is missing")
        proven_receipt(head.receipts_root, index, encoded, [unhex(n, "a proof node") for n in nodes])
        positions = entry.get("log_positions")
        if not isinstance(positions, dict) or str(log_index) not in positions:
            raise Tampered(f"the bundle does not place log {log_index} in its receipt")
        position = positions[str(log_index)]
        logs = receipt_logs(encoded)
        if not isinstance(position, int) or not 0 <= position < len(logs):
            raise Tampered(f"log {log_index} is not in its receipt")
        return logs[position]
