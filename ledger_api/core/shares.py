"""Splitting an integer amount in proportion to integer weights, exactly.

A donor's share of what a campaign passed on is a fraction of minor units; pages and
exports show whole units that must add up. `largest_remainder` gives every part the floor
of its exact proportion and hands the units left over, one each, to the parts with the
largest remainders (earlier parts first on a tie), so the parts sum to the amount exactly
and each is within one unit of its exact proportion (tests/core/test_shares.py holds it to
both with Hypothesis).
"""

from __future__ import annotations

from collections.abc import Sequence


def largest_remainder(amount: int, weights: Sequence[int]) -> list[int]:
    """`amount` split in proportion to `weights` (non-negative, not all zero): parts that
    sum to `amount`, each within 1 of amount * weight / sum(weights)."""
    if amount < 0:
        raise ValueError("the amount to split is negative")
    if any(w < 0 for w in weights):
        raise ValueError("a weight is negative")
    total = sum(weights)
    if total == 0:
        raise ValueError("nothing to split in proportion to: the weights are all zero")
    parts, remainders = [], []
    for index, weight in enumerate(weights):
        quotient, remainder = divmod(amount * weight, total)
        parts.append(quotient)
        remainders.append((-remainder, index))
    left = amount - sum(parts)  # < len(weights): each floor lost less than one unit
    for _, index in sorted(remainders)[:left]:
        parts[index] += 1
    return parts
