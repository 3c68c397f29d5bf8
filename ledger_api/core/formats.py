"""Amounts and text for people, for documents and for terminals.

Amounts are integers in the currency's minor unit. They become major units exactly (a
Decimal built from the digits, never a float), with as many decimals as the currency's
ISO 4217 exponent, and are formatted in the reader's locale by Babel: CNY 123450 is
"¥1,234.50" in zh_CN and "CN¥1,234.50" in en; JPY 1500 is "¥1,500". Babel's own rounding
follows CLDR's digits, which differ from ISO 4217 for a few currencies (IQD has 3
decimals in ISO 4217, 0 in CLDR), so the pattern's decimals are set here instead and
nothing is ever rounded. The public pages and the `ledger` command line
both format money with `money`, so a donor sees the same amount in both.

Text from the chain is anyone's text: `xml_text` drops what XML (and a printed page)
cannot carry, `terminal_text` what a terminal would obey instead of print.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from decimal import Decimal, localcontext

from babel import Locale
from babel.numbers import format_currency
from iso4217 import Currency

DEFAULT_EXPONENT = 2
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CODE = re.compile(r"^[A-Z]{3}$")


def minor_unit_exponent(currency: str) -> int:
    """The ISO 4217 exponent of a currency (CNY 2, JPY 0, BHD 3); 2 when the code is
    unknown or has no minor unit (e.g. XAU)."""
    try:
        exponent = Currency(currency.strip().upper()).exponent
    except ValueError:
        return DEFAULT_EXPONENT
    return DEFAULT_EXPONENT if exponent is None else exponent


def major_units(amount: int, currency: str) -> str:
    """An integer amount in minor units as an exact decimal string in major units:
    (12345, "CNY") -> "123.45", (1500, "JPY") -> "1500", (-1200, "USD") -> "-12.00"."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amounts are integers in minor units, not {type(amount).__name__}")
    exponent = minor_unit_exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d}" if exponent else f"{sign}{whole}"


def major(amount: int, currency: str) -> Decimal:
    """The exact amount in major units: (123450, "CNY") -> Decimal("1234.50")."""
    return Decimal(major_units(amount, currency))


def money(amount: int, currency: str, locale: str = "en") -> str:
    """`amount` (minor units) in `currency`, formatted for `locale` (a Babel locale name):
    (10000, "CNY", "en") -> "CN¥100.00", (10000, "CNY", "zh_CN") -> "¥100.00"."""
    exponent = minor_unit_exponent(currency)
    value = major(amount, currency)
    known = Locale.parse(locale)
    code = bool(_CODE.match(currency))
    # The locale's pattern, with exactly the currency's decimals.
    pattern = copy.copy(known.currency_formats["standard"] if code else known.decimal_formats[None])
    pattern.frac_prec = (exponent, exponent)
    with localcontext() as context:
        context.prec = 80  # goals go up to 10**24 minor units: never round
        if code:
            return format_currency(value, currency, format=pattern, locale=known, currency_digits=False)
        # Not a currency code (text from the chain can be anything): the number, then the text.
        return f"{pattern.apply(value, known)} {currency}"


def xml_text(value: str) -> str:
    """`value` without the characters XML 1.0 cannot carry (control characters, lone
    surrogates, U+FFFE, U+FFFF); everything else is kept (lxml escapes it)."""
    return _NOT_XML_CHAR.sub("", value)


# Line and tab controls become a space (a name on two lines would forge a line of output);
# `multiline` keeps newlines and tabs for documents (an export shown on a terminal).
_BREAKS = frozenset("\t\n\r\v\f\x85\u2028\u2029")
# Unicode categories a terminal acts on or hides: Cc (C0 controls such as ESC and BEL,
# DEL, C1 controls such as CSI U+009B and OSC U+009D), Cf (format characters: the bidi
# embeddings, overrides and isolates U+202A-U+202E and U+2066-U+2069, the marks U+200E,
# U+200F and U+061C, zero-width U+200B-U+200D, U+2060 and U+FEFF, soft hyphen, the tag
# characters U+E0001-U+E007F), Cs (lone surrogates, which cannot even be encoded for
# output), Zl and Zp (U+2028, U+2029).
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def terminal_text(value: str, *, multiline: bool = False) -> str:
    """`value` safe to print on a terminal: no control character (so no escape sequence
    can retitle the window, clear the screen, move the cursor or hide a hyperlink), no
    bidi control (so text cannot display in another order than it reads), no zero-width
    or other invisible format character (so what is shown is what is there).

    What remains of an escape sequence is printed as plain text ("ESC [2J" shows as
    "[2J"), so a reader sees that something was there. Tabs and line breaks become a
    space, unless `multiline`, which keeps newlines and tabs and drops carriage returns
    (CSV's "\\r\\n" becomes "\\n"; a lone CR would overwrite the line on screen)."""
    if value.isprintable():  # the common case: no category outside L, M, N, P, S and " "
        return value
    kept: list[str] = []
    for char in value:
        if multiline and char in "\n\t":
            kept.append(char)
        elif char in _BREAKS:
            if not multiline:
                kept.append(" ")
            elif char != "\r":
                kept.append("\n" if char in "\u2028\u2029\x85" else " ")
        elif unicodedata.category(char) not in _HIDDEN:
            kept.append(char)
    return "".join(kept)
