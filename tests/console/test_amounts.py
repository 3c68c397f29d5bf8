# Full-width characters below are what a Chinese keyboard types; RUF001 takes them for look-alikes.
# ruff: noqa: RUF001
"""Amounts typed in major units become minor units exactly (core/amounts.py): whatever the
pages print reads back as the same integer, in every currency's decimals; what cannot be
exact is refused with its reason, never rounded."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_api.core.amounts import MAX_AMOUNT, AmountError, minor_units
from ledger_api.core.formats import major_units, money

CURRENCIES = ("CNY", "JPY", "BHD", "USD", "HKD")


@settings(deadline=None)  # Babel's first format in a locale is slow on a busy machine
@given(
    st.integers(min_value=1, max_value=MAX_AMOUNT),
    st.sampled_from(CURRENCIES),
    st.sampled_from(["en", "zh_CN"]),
)
def test_what_the_pages_print_reads_back_as_the_same_amount(amount: int, currency: str, locale: str) -> None:
    assert minor_units(major_units(amount, currency), currency) == amount
    assert minor_units(money(amount, currency, locale), currency) == amount  # "CN¥1,234.50", "¥1,234.50"


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=10**12), st.integers(min_value=1, max_value=3))
def test_more_decimals_than_the_currency_has_are_refused_never_rounded(whole: int, extra: int) -> None:
    typed = f"{whole}.{'1' * (2 + extra)}"
    with pytest.raises(AmountError) as refused:
        minor_units(typed, "CNY")
    assert refused.value.reason == "decimals" and refused.value.decimals == 2


@pytest.mark.parametrize(
    ("typed", "currency", "expected"),
    [
        ("1,234.50", "CNY", 123_450),
        ("1234.5", "CNY", 123_450),
        ("¥1,234.50", "CNY", 123_450),
        ("CN¥1,234.50", "CNY", 123_450),
        ("CNY 1234.50", "CNY", 123_450),
        ("1234.50 CNY", "CNY", 123_450),
        ("￥１，２３４．５０", "CNY", 123_450),  # a Chinese input method's full-width digits
        (" 12 ", "CNY", 1_200),
        ("1,500", "JPY", 1_500),
        ("1.234", "BHD", 1_234),
        ("999999999999999999.99", "CNY", 99_999_999_999_999_999_999),
    ],
)
def test_amounts_as_people_type_them(typed: str, currency: str, expected: int) -> None:
    if expected > MAX_AMOUNT:
        with pytest.raises(AmountError) as refused:
            minor_units(typed, currency)
        assert refused.value.reason == "too_large"
    else:
        assert minor_units(typed, currency) == expected


@pytest.mark.parametrize(
    ("typed", "currency", "reason"),
    [
        ("1234.567", "CNY", "decimals"),
        ("1.5", "JPY", "decimals"),
        ("", "CNY", "empty"),
        ("   ", "CNY", "empty"),
        ("0", "CNY", "zero"),
        ("0.00", "CNY", "zero"),
        ("-5", "CNY", "format"),
        ("1,23.4", "CNY", "format"),
        ("1e5", "CNY", "format"),
        ("1.5.5", "CNY", "format"),
        ("12,34", "CNY", "format"),
        ("NaN", "CNY", "format"),
        ("Infinity", "CNY", "format"),
        ("=1+1", "CNY", "format"),
        ("1" * 100, "CNY", "format"),
    ],
)
def test_what_is_not_an_exact_amount_is_refused_with_its_reason(
    typed: str, currency: str, reason: str
) -> None:
    with pytest.raises(AmountError) as refused:
        minor_units(typed, currency)
    assert refused.value.reason == reason
