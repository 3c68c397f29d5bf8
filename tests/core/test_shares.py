"""Largest-remainder shares: they add up exactly to the amount split, and each is within
one unit of its exact proportion, for any amounts and weights."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ledger_verify.hops import largest_remainder as verifier_split

from ledger_api.core.shares import largest_remainder

AMOUNT = st.integers(min_value=0, max_value=10**18)
WEIGHTS = st.lists(st.integers(min_value=0, max_value=10**18), min_size=1, max_size=40).filter(any)


@given(AMOUNT, WEIGHTS)
def test_shares_sum_exactly_and_each_is_within_one_of_its_proportion(amount: int, weights: list[int]) -> None:
    shares = largest_remainder(amount, weights)
    assert sum(shares) == amount
    total = sum(weights)
    for share, weight in zip(shares, weights, strict=True):
        exact = Fraction(amount * weight, total)
        assert abs(share - exact) < 1
        assert share >= 0
        if weight == 0:
            assert share == 0  # nothing passes through a part that took nothing


def test_ties_go_to_the_earlier_parts_and_exact_splits_are_untouched() -> None:
    assert largest_remainder(1000, [1201, 799]) == [601, 399]  # 600.5 and 399.5
    assert largest_remainder(849, [700, 650, 650]) == [297, 276, 276]
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert largest_remainder(900, [300, 600]) == [300, 600]


@pytest.mark.parametrize(
    "amount, weights, message",
    [(-1, [1], "negative"), (5, [1, -1], "negative"), (5, [0, 0], "all zero"), (5, [], "all zero")],
)
def test_what_cannot_be_split_is_refused(amount: int, weights: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        largest_remainder(amount, weights)


@given(AMOUNT, WEIGHTS)
def test_the_verifier_s_own_split_agrees_with_the_service_s(amount: int, weights: list[int]) -> None:
    """ledger-verify recomputes every hop's shares with its own code (it imports nothing of
    the service): the two must agree to the unit, ties included, or a donor would see a
    false mismatch."""
    assert verifier_split(amount, weights) == largest_remainder(amount, weights)
