"""The scorecard's arithmetic, in whole numbers so that every figure is exact and the same
wherever it is recomputed: shares as fractions with a percentage rounded half to even to
one decimal, durations as nearest-rank percentiles of whole seconds shown in days to one
decimal (half to even). scripts/scorecard_from_csv.py repeats these rules in its own code."""

from __future__ import annotations

from collections.abc import Sequence

DAY = 86_400


def tenths(numerator: int, denominator: int) -> str:
    """numerator / denominator to one decimal, rounded half to even: "97.5"."""
    q, r = divmod(numerator * 10, denominator)
    if 2 * r > denominator or (2 * r == denominator and q % 2 == 1):
        q += 1
    return f"{q // 10}.{q % 10}"


def percent(part: int, whole: int) -> str | None:
    return tenths(part * 100, whole) if whole else None


def nearest_rank(values: Sequence[int], share: int) -> int | None:
    """The `share`-th percentile (0 < share <= 100) by nearest rank: the value at 1-based
    rank ceil(share * n / 100) of the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = -(-share * len(ordered) // 100)
    return ordered[max(rank, 1) - 1]


def days(seconds: int | None) -> str | None:
    return tenths(seconds, DAY) if seconds is not None else None
