"""Record IDs people can read off a receipt.

Every record the service creates gets an ID like `DN-7K3M-9QX2-P4TA-B5C8`: a two-letter
kind, then 80 random bits in Crockford base32 (no I, L, O or U; case-insensitive), in
groups of four. On chain the record's bytes32 ID is that text in ASCII, left-aligned and
zero-padded, so anyone can read the receipt ID straight off the event. IDs made
elsewhere (any bytes32) are accepted as 0x-prefixed hex.
"""

from __future__ import annotations

import re
import secrets

from eth_utils import keccak

from ledger_api.core.hexes import hex0x, unhex

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
KINDS = {
    "charity": "CH",
    "campaign": "CP",
    "donation": "DN",
    "refund": "RF",
    "disbursement": "DB",
    "correction": "CR",
    "report": "RP",  # a campaign's periodic or final report
    "disposal": "DP",  # the disposal of a campaign's remaining funds
    "recipient": "RO",  # a recipient organisation
    "confirmation": "RC",  # a recipient's confirmation of receipt
}
# The kinds of record a correction names: the contract's RecordKind, in its order
# (Correction.original_kind is the index).
RECORD_KINDS = ("campaign", "donation", "refund", "disbursement", "report", "disposal")
_READABLE = re.compile(r"^([A-Za-z]{2})-([0-9A-Za-z]{4})-([0-9A-Za-z]{4})-([0-9A-Za-z]{4})-([0-9A-Za-z]{4})$")
_HEX = re.compile(r"^0x[0-9a-fA-F]{64}$")
_CONFUSABLE = str.maketrans({"I": "1", "L": "1", "O": "0"})


def new(kind: str) -> str:
    value = secrets.randbits(80)
    chars = "".join(ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(16)))
    return f"{KINDS[kind]}-{chars[0:4]}-{chars[4:8]}-{chars[8:12]}-{chars[12:16]}"


def to_bytes32(record_id: str, kind: str | None = None) -> bytes:
    """The on-chain ID of a readable or hex ID; ValueError if it is neither (or of
    another kind than `kind`)."""
    if _HEX.fullmatch(record_id):
        value = unhex(record_id)
        if value == bytes(32):
            raise ValueError("the zero ID is not a record")
        return value
    match = _READABLE.fullmatch(record_id)
    if not match:
        raise ValueError("not a record ID (like DN-7K3M-9QX2-P4TA-B5C8, or 0x and 64 hex digits)")
    prefix = match.group(1).upper()
    if kind is not None and prefix != KINDS[kind]:
        raise ValueError(f"not a {kind} ID (those start with {KINDS[kind]}-)")
    body = "".join(match.groups()[1:]).upper().translate(_CONFUSABLE)
    if any(c not in ALPHABET for c in body):
        raise ValueError("not a record ID: invalid character")
    return canonical(prefix, body).encode("ascii").ljust(32, b"\0")


def canonical(prefix: str, body: str) -> str:
    return f"{prefix}-{body[0:4]}-{body[4:8]}-{body[8:12]}-{body[12:16]}"


def from_bytes32(value: bytes | str) -> str:
    """The readable form of an on-chain ID if it is one, else its 0x hex."""
    raw = unhex(value) if isinstance(value, str) else value
    text = raw.rstrip(b"\0")
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        return hex0x(raw)
    if _READABLE.fullmatch(decoded) and raw == decoded.encode().ljust(32, b"\0"):
        return decoded
    return hex0x(raw)


def to_hex(record_id: str, kind: str | None = None) -> str:
    return hex0x(to_bytes32(record_id, kind))


# A donation that records a grant has no donor: its money came from another campaign on
# the ledger. Its donor commitment is keccak256(GRANT_COMMITMENT_TAG || source disbursement
# ID), which anyone can recompute from the GrantReceived event and which is not personal
# (the contract refuses a zero commitment, and a salted one would hide nothing worth hiding).
GRANT_COMMITMENT_TAG = b"charity-ledger:grant:"


def grant_commitment(source_disbursement_id: bytes) -> bytes:
    """The donor commitment of a donation recording the grant `source_disbursement_id`."""
    return bytes(keccak(GRANT_COMMITMENT_TAG + source_disbursement_id))
