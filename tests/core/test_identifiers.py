"""A recipient organisation's identifier: a USCC's check character is checked (bare or
after CN-USCC-), other schemes pass as typed, a PRC resident ID number is refused."""

from __future__ import annotations

import pytest

from ledger_api.core.identifiers import IdentifierError, check, looks_like_resident_id

USCC = "53100000500021676K"  # a social organisation's code, check character K


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        (USCC, USCC),
        (USCC.lower(), USCC),
        ("cn-uscc-" + USCC.lower(), "CN-USCC-" + USCC),
        ("91110000600037341L", "91110000600037341L"),
        ("GB-CHC-1234567", "GB-CHC-1234567"),  # IATI org ids of other schemes pass as typed
        ("XM-DAC-41114", "XM-DAC-41114"),
        ("CN-ORG-1", "CN-ORG-1"),
    ],
)
def test_identifiers_that_are_kept(typed: str, kept: str) -> None:
    assert check(typed) == kept


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("53100000500021676A", "invalid-uscc"),  # one wrong check character
        ("53100000500021677K", "invalid-uscc"),  # one mistyped digit
        ("CN-USCC-1234", "invalid-uscc"),
        ("11010519491231002X", "personal-id-number"),  # GB 11643-1999 example number
        ("CN-RID-11010519491231002X", "personal-id-number"),  # under any prefix
        ("110105194912310029", "invalid-uscc"),  # 18 digits, but not a valid ID number either
    ],
)
def test_identifiers_that_are_refused(typed: str, code: str) -> None:
    with pytest.raises(IdentifierError) as info:
        check(typed)
    assert info.value.code == code


def test_a_uscc_is_not_mistaken_for_a_resident_id() -> None:
    assert not looks_like_resident_id(USCC)
    assert looks_like_resident_id("x 11010519491231002x y")
