"""The donor reference and the donor commitment keccak256(salt || reference).

The reference is whatever the charity uses to know its donor (a name, an account number);
the donor types it again, months later, to prove a donation is theirs. Typed twice, by two
people, on two keyboards, it must hash the same when it reads the same, so it is
normalised before it is hashed, everywhere (recording, the ownership check in the API and
on the pages, the printed receipt, the demo):

1. Unicode NFC (so "Zoë" typed as one code point or as "e" and a combining diaeresis is
   one reference; so is a Chinese name from any input method);
2. every run of Unicode whitespace (the White_Space property: spaces of any width, tabs,
   line breaks, NBSP U+00A0, the ideographic space U+3000) becomes one ASCII space;
3. no space at either end.

The result is hashed as UTF-8. After normalisation a reference is 1 to 200 characters
with no control or invisible formatting character (core.schemas.plain_text); the input
may be longer (up to `TYPED_LENGTH` when checking) to leave room for spacing and decomposed
letters. Letter case, punctuation and compatibility forms (full-width digits) are kept as
typed: they are real differences that a donor can see on the printed receipt.
"""

from __future__ import annotations

import unicodedata

import regex
from eth_utils import keccak

from ledger_api.core.schemas import plain_text

LENGTH = 200  # characters, after normalisation
TYPED_LENGTH = 400  # characters as typed into the ownership check (spacing, NFD)
_WHITESPACE = regex.compile(r"\p{White_Space}+")


class BadReference(ValueError):
    """A reference that cannot be used: `reason` is "empty", "too_long" or "invisible"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def normalise(reference: str) -> str:
    """The reference as it is hashed (see the module docstring). Idempotent."""
    composed = unicodedata.normalize("NFC", reference)
    return unicodedata.normalize("NFC", _WHITESPACE.sub(" ", composed).strip(" "))


def parse(typed: str) -> str:
    """The normalised reference, or `BadReference` saying what is wrong with it."""
    if len(typed) > TYPED_LENGTH:
        raise BadReference("too_long", f"a donor reference is at most {LENGTH} characters")
    reference = normalise(typed)
    if not reference:
        raise BadReference("empty", "a donor reference is needed (spaces alone are not one)")
    if len(reference) > LENGTH:
        raise BadReference(
            "too_long", f"a donor reference is at most {LENGTH} characters, not {len(reference)}"
        )
    try:
        plain_text(reference)
    except ValueError as exc:
        raise BadReference("invisible", str(exc)) from None
    return reference


def commitment(salt: bytes, reference: str) -> bytes:
    """The donor commitment keccak256(salt || UTF-8 of the normalised reference)."""
    return keccak(salt + normalise(reference).encode("utf-8"))


# ------------------------------------------------------------------ private recipients
#
# A disbursement to a private person puts on chain, as its recipient, only
# `private:0x<64 hex>`: the commitment keccak256(salt || reference) of the person's
# identifying details (the reference, normalised as above), salted with 32 random bytes
# that the charity hands to the person. The details are never stored; with the salt the
# person can prove the payment was theirs, exactly as a donor proves a donation.

PRIVATE_PREFIX = "private:"
PRIVATE_PERSON = "a private person (identity withheld)"
_PRIVATE = regex.compile(r"^private:0x[0-9a-f]{64}$")


def private_recipient(salt: bytes, reference: str) -> str:
    """The recipient recorded on chain for a private person."""
    return PRIVATE_PREFIX + "0x" + commitment(salt, reference).hex()


def is_private(recipient: str) -> bool:
    """Whether an on-chain recipient is a private person's commitment."""
    return bool(_PRIVATE.match(recipient))


def looks_private(recipient: str) -> bool:
    """Whether a public recipient name could be taken for a private person's commitment
    (any case, full-width letters, leading spaces): such names are refused."""
    folded = unicodedata.normalize("NFKC", recipient).casefold().lstrip()
    return folded.startswith(PRIVATE_PREFIX)


def recipient_label(recipient: str) -> str:
    """How a recipient is shown in public JSON: a private person's commitment as
    `PRIVATE_PERSON`, anything else as recorded."""
    return PRIVATE_PERSON if is_private(recipient) else recipient
