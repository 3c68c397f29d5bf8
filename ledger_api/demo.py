"""Demo data for `ledger dev --demo` (filled in below)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def load_demo(runtime: Any, echo: Callable[[str], Any] = print) -> None:
    raise NotImplementedError
