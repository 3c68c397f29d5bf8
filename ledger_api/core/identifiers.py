"""A recipient organisation's public identifier: checked where we know its scheme, never
refused for being of another scheme, and refused when it looks like a person's ID number.

Identifiers are written as IATI organisation identifiers are (`CN-USCC-<code>`, `GB-CHC-
<number>`, `XM-DAC-...`: a scheme prefix, then the scheme's own code) or, for a Chinese
organisation, as the bare 18-character Unified Social Credit Code (统一社会信用代码).
Where the code is a USCC (bare, or after `CN-USCC-`), its GB 32100-2015 check character
must be right: a mistyped code is refused before it goes on chain for ever. Any other
scheme is taken as typed (within the contract's 128-byte bound and the schemas' plain-text
rules). The organisation is public, so no personal data may go in its place: an
18-character PRC resident identity number (GB 11643-1999, the same length as a USCC)
anywhere in the identifier is refused. python-stdnum's `cn.uscc` and `cn.ric` do the
arithmetic; nothing here is hand-rolled.
"""

from __future__ import annotations

import re

from stdnum.cn import ric, uscc

USCC_PREFIX = "CN-USCC-"
# 18 characters that could be a USCC or a resident ID number: digits and the USCC
# alphabet (no I, O, S, V, Z), or 17 digits and X for an ID number.
_CANDIDATE = re.compile(r"(?<![0-9A-Z])[0-9A-Z]{17}[0-9A-Z](?![0-9A-Z])")


class IdentifierError(ValueError):
    """Why an identifier is refused; `code` is the stable code of the problem."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def looks_like_resident_id(text: str) -> bool:
    """Whether `text` holds an 18-character PRC resident identity number (a valid birth
    date, region and check digit)."""
    return any(ric.is_valid(m) for m in _CANDIDATE.findall(text.upper()))


def check(identifier: str) -> str:
    """The identifier as it goes on chain (a USCC upper-cased), or IdentifierError."""
    text = identifier.strip()
    if looks_like_resident_id(text):
        raise IdentifierError(
            "personal-id-number",
            "this looks like a person's resident ID number: only organisations are registered"
            " as recipients, and their identifier is public for ever",
        )
    upper = text.upper()
    code = upper[len(USCC_PREFIX) :] if upper.startswith(USCC_PREFIX) else upper
    if upper.startswith(USCC_PREFIX) or (len(code) == 18 and code[:1].isdigit()):
        try:
            code = uscc.validate(code)
        except Exception:
            raise IdentifierError(
                "invalid-uscc",
                "not a valid Unified Social Credit Code (18 characters, GB 32100-2015 check"
                " character); another scheme is written with its prefix, such as GB-CHC-1234567",
            ) from None
        return USCC_PREFIX + code if upper.startswith(USCC_PREFIX) else code
    return text
