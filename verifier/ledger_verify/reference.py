"""The donor reference, normalised exactly as the ledger service does before hashing it
(a test holds this copy to the service's own on tricky inputs):

1. Unicode NFC;
2. every run of Unicode whitespace (the White_Space property) becomes one ASCII space;
3. no space at either end.

The donor commitment on chain is keccak256(receipt secret || UTF-8 of the result).
"""

from __future__ import annotations

import re
import unicodedata

from eth_hash.auto import keccak

# The characters with Unicode's White_Space property (stable since Unicode 6.3).
_WHITESPACE = re.compile(
    "[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+"
)


def normalise(reference: str) -> str:
    composed = unicodedata.normalize("NFC", reference)
    return unicodedata.normalize("NFC", _WHITESPACE.sub(" ", composed).strip(" "))


def commitment(secret: bytes, reference: str) -> bytes:
    return keccak(secret + normalise(reference).encode("utf-8"))
