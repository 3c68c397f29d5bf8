"""Hex text and bytes, one way everywhere.

The mirror, the API and JSON-RPC carry bytes as `0x`-prefixed lower-case hex; the chain
libraries want bytes. These are the only conversions between the two (the log decoder's
hot path reads 32-byte words straight from the hex text, with its tables built here).
"""

from __future__ import annotations

ZERO32 = bytes(32)


def hex0x(value: bytes | bytearray | memoryview | str) -> str:
    """`0x` and lower-case hex of bytes; a string is taken to be hex already and kept."""
    if isinstance(value, str):
        return value
    return "0x" + bytes(value).hex()


def unhex(value: str) -> bytes:
    """The bytes of hex text, with or without the `0x` prefix (ValueError if not hex)."""
    return bytes.fromhex(value[2:] if value[:2] in ("0x", "0X") else value)


def bytes32_or_zero(value: str | None) -> bytes:
    """An optional 0x hash (metadata, evidence) as the bytes32 the contract takes: zero
    when absent."""
    return unhex(value) if value else ZERO32


def bare(value: str | bytes | bytearray) -> str:
    """Lower-case hex without the prefix, from hex text (either case, prefix or not) or bytes."""
    if isinstance(value, str):
        return (value[2:] if value[:2] in ("0x", "0X") else value).lower()
    return bytes(value).hex()


def to_int(value: str | int) -> int:
    """A JSON-RPC quantity (`0x1a`) or an integer web3 already formatted."""
    return int(value, 16) if isinstance(value, str) else int(value)


def pad32(text: str) -> bytes:
    """Short text as a bytes32 value: UTF-8, left-aligned, zero-padded (channels, IDs)."""
    return text.encode().ljust(32, b"\0")


def text_of(value: str | bytes, strip_padding: bool = True) -> str:
    """ASCII text held in bytes (as hex text or bytes), the zero padding removed;
    bytes that are not ASCII show as U+FFFD rather than failing."""
    raw = unhex(value) if isinstance(value, str) else bytes(value)
    if strip_padding:
        raw = raw.rstrip(b"\0")
    return raw.decode("ascii", errors="replace")
