"""Types bounded at the schema boundary: amounts are integers (never floats), strings
have lengths and no NUL bytes, IDs have one of two shapes, unknown fields are refused."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

import regex
from iso4217 import Currency as Iso4217
from iso4217 import raw_xml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ledger_api.core import ids

MAX_AMOUNT = 10**18  # the contract's bound, in minor units
MAX_GOAL = 10**24
CURRENCIES_RE = re.compile(r"^[A-Z]{3}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def _integer(value: Any) -> Any:
    """An integer amount, or a string of decimal digits (for values past 2**53);
    never a float, a bool, or a string with a sign, point or exponent."""
    if isinstance(value, bool | float):
        raise ValueError("amounts are integers in the currency's minor unit (no floats)")
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit() or len(value) > 30:
            raise ValueError("amounts are integers in the currency's minor unit")
        return int(value)
    if not isinstance(value, int):
        raise ValueError("amounts are integers in the currency's minor unit")
    return value


# What no text field takes (Unicode categories): controls (Cc: C0, DEL, C1, NUL among
# them), format characters (Cf: bidi overrides and isolates, zero-width spaces and joiners,
# the BOM), lone surrogates (Cs), and line and paragraph separators (Zl, Zp). They command
# terminals (escape sequences), hide or reorder text on a page and in a spreadsheet, and
# make two records look alike that are not. Emoji joined with U+200D are refused with them.
_INVISIBLE = regex.compile(r"[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]")


def plain_text(value: str) -> str:
    """`value` if it has no control or invisible formatting character; else a ValueError
    naming the first one."""
    found = _INVISIBLE.search(value)
    if found is not None:
        character = found.group()
        what = "NUL bytes are" if character == "\x00" else f"U+{ord(character):04X} ({_name(character)}) is"
        raise ValueError(f"{what} not allowed: control and invisible formatting characters are refused")
    return value


def _name(character: str) -> str:
    kind = "a lone surrogate" if unicodedata.category(character) == "Cs" else "a control character"
    return unicodedata.name(character, kind).lower()


def _record_id(kind: str) -> AfterValidator:
    def check(value: str) -> str:
        try:
            ids.to_bytes32(value, kind)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return value

    return AfterValidator(check)


def _currency(value: str) -> str:
    if not CURRENCIES_RE.fullmatch(value):
        raise ValueError("an ISO 4217 code: three upper-case letters, like CNY or USD")
    if value not in ISO_4217:
        raise ValueError(f"{value} is not an ISO 4217 currency code")
    return value


Amount = Annotated[int, BeforeValidator(_integer), Field(gt=0, le=MAX_AMOUNT)]
Goal = Annotated[int, BeforeValidator(_integer), Field(gt=0, le=MAX_GOAL)]


def Text(max_length: int, min_length: int = 1) -> Any:
    return Annotated[str, Field(min_length=min_length, max_length=max_length), AfterValidator(plain_text)]


def _utf8_within(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        size = len(value.encode("utf-8"))
        if size > limit:
            raise ValueError(f"at most {limit} bytes in UTF-8, not {size} (the ledger contract counts bytes)")
        return value

    return AfterValidator(check)


def ChainText(max_bytes: int) -> Any:
    """Text that goes on chain, where the contract bounds its length in UTF-8 bytes (a
    Chinese character takes three)."""
    return Annotated[
        str, Field(min_length=1, max_length=max_bytes), AfterValidator(plain_text), _utf8_within(max_bytes)
    ]


def _id_pattern(kind: str) -> dict[str, Any]:
    """The shape of an ID of `kind`, for the OpenAPI document only (the validator says
    what is wrong in its own words): the readable form in any case (Crockford base32 takes
    I, L and O for 1, 1 and 0; never U), or 0x and 64 hex digits."""
    a, b = ids.KINDS[kind][0], ids.KINDS[kind][1]
    group = "[0-9A-TV-Za-tv-z]{4}"
    return {
        "pattern": f"^([{a}{a.lower()}][{b}{b.lower()}]-{group}-{group}-{group}-{group}|0x[0-9a-fA-F]{{64}})$"
    }


CharityId = Annotated[
    str, Field(max_length=66, json_schema_extra=_id_pattern("charity")), _record_id("charity")
]
CampaignId = Annotated[
    str, Field(max_length=66, json_schema_extra=_id_pattern("campaign")), _record_id("campaign")
]
DonationId = Annotated[
    str, Field(max_length=66, json_schema_extra=_id_pattern("donation")), _record_id("donation")
]
DisbursementId = Annotated[
    str, Field(max_length=66, json_schema_extra=_id_pattern("disbursement")), _record_id("disbursement")
]
RecipientId = Annotated[
    str, Field(max_length=66, json_schema_extra=_id_pattern("recipient")), _record_id("recipient")
]
Currency = Annotated[str, AfterValidator(_currency)]
Hash32 = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$")]


def _iso_4217_currencies() -> frozenset[str]:
    """The codes a campaign may be in, from the ISO 4217 table the `iso4217` package
    ships (pinned in constraints.txt): every current code with a minor unit, for a clear
    error on a typo like "RMB". Refused, like the hand-kept list this replaced: codes
    without a minor unit (gold and the other metals, XDR, XSU, XUA, the bond-market units,
    XTS, XXX), in which an integer amount of minor units means nothing, and the funds codes
    the table marks `IsFund` (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI): units of account
    for indexation or settlement, not money that a donor gives. For the same reason two
    units of account the table does not flag are refused too: UYW (Uruguay's Unidad
    Previsional, an index) and XAD (the Arab Monetary Fund's accounting dinar)."""
    funds = {
        entry.findtext("Ccy")
        for entry in raw_xml.iter("CcyNtry")
        if entry.find("CcyNm[@IsFund='true']") is not None
    }
    units_of_account = {"UYW", "XAD"}
    return frozenset(
        c.code for c in Iso4217 if c.exponent is not None and c.code not in funds | units_of_account
    )


ISO_4217 = _iso_4217_currencies()
