"""Which currencies a campaign may be in comes from the ISO 4217 table of the `iso4217`
package, and the decimals its amounts are shown with come from the same table."""

from __future__ import annotations

import pytest
from iso4217 import Currency as Iso4217
from pydantic import TypeAdapter, ValidationError

from ledger_api.core.formats import DEFAULT_EXPONENT, major_units, minor_unit_exponent, money
from ledger_api.core.schemas import ISO_4217, Currency

CURRENCY = TypeAdapter(Currency)


@pytest.mark.parametrize(
    ("code", "exponent", "amount", "shown"),
    [
        ("CNY", 2, 123450, "1234.50"),
        ("USD", 2, 1200, "12.00"),
        ("JPY", 0, 1500, "1500"),
        ("BHD", 3, 1500, "1.500"),
        ("CLP", 0, 990, "990"),
    ],
)
def test_a_currency_with_a_minor_unit_is_accepted_and_shown_with_its_decimals(
    code: str, exponent: int, amount: int, shown: str
) -> None:
    assert CURRENCY.validate_python(code) == code
    assert minor_unit_exponent(code) == exponent
    assert major_units(amount, code) == shown


def test_a_yen_amount_has_no_decimals_on_the_page() -> None:
    assert money(1500, "JPY", "en") == "¥1,500"


@pytest.mark.parametrize(
    "code",
    [
        "CLF",  # Unidad de Fomento: a funds code (IsFund in the table), 4 decimals
        "USN",  # US Dollar (Next day): a funds code
        "UYW",  # Unidad Previsional: an index, not flagged as a fund
        "XAD",  # the Arab Monetary Fund's accounting dinar
        "XAU",  # gold: no minor unit
        "XDR",  # the IMF's SDR: no minor unit
        "XXX",  # "no currency"
        "XTS",  # reserved for testing
        "RMB",  # a common name, not a code
    ],
)
def test_funds_codes_and_codes_without_a_minor_unit_are_refused(code: str) -> None:
    with pytest.raises(ValidationError, match="not an ISO 4217 currency code"):
        CURRENCY.validate_python(code)


def test_every_accepted_currency_is_shown_with_its_own_iso_4217_decimals() -> None:
    """No accepted code falls back to the default of 2 decimals for codes the table does
    not know: the page, the CLI and the exports show every amount as ISO 4217 says."""
    assert len(ISO_4217) > 150
    for code in ISO_4217:
        assert minor_unit_exponent(code) == Iso4217(code).exponent, code
    assert minor_unit_exponent("XAU") == DEFAULT_EXPONENT  # refused, but a chain may still carry one
