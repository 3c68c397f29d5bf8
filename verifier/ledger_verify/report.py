"""What ledger-verify prints: one line per claim, `ok`, `MISMATCH` (with the claimed value
and the chain's) or `UNCHECKED` (with why), and nothing a server or a chain supplied can
move the cursor, colour the terminal or reverse the text: every control, format or
separator character is shown as an escape."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

OK, MISMATCH, UNCHECKED = "ok", "MISMATCH", "UNCHECKED"
EXIT_OK, EXIT_MISMATCH, EXIT_UNCHECKED = 0, 1, 2
_UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def safe(text: str, limit: int = 300) -> str:
    """Text fit for a terminal: unsafe characters as \\uXXXX, long text cut."""
    shown = "".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c) in _UNSAFE else c
        for c in text[: limit + 1]  # at most limit characters, then an ellipsis
    )
    return shown if len(text) <= limit else shown[: limit * 6] + "…"


def show(value: Any) -> str:
    """A value as printed: text quoted, bytes as 0x hex, numbers as they are."""
    if value is None:
        return "(none)"
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, str):
        return '"' + safe(value) + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return safe(str(value))


class Report:
    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self.counts = {OK: 0, MISMATCH: 0, UNCHECKED: 0}

    def _line(self, status: str, claim: str, detail: str) -> None:
        self.counts[status] += 1
        self.write(f"{status:<9} {safe(claim)}: {detail}")

    def ok(self, claim: str, value: Any) -> None:
        self._line(OK, claim, show(value))

    def mismatch(self, claim: str, claimed: Any, chain: Any) -> None:
        self._line(MISMATCH, claim, f"claimed {show(claimed)}, chain {show(chain)}")

    def unchecked(self, claim: str, why: str) -> None:
        self._line(UNCHECKED, claim, safe(why))

    def compare(self, claim: str, claimed: Any, chain: Any) -> bool:
        if claimed == chain and type(claimed) is type(chain):
            self.ok(claim, chain)
            return True
        self.mismatch(claim, claimed, chain)
        return False

    def note(self, text: str) -> None:
        self.write(f"# {safe(text)}")

    def exit_code(self) -> int:
        if self.counts[MISMATCH]:
            return EXIT_MISMATCH
        return EXIT_UNCHECKED if self.counts[UNCHECKED] else EXIT_OK

    def summary(self) -> str:
        return f"{self.counts[OK]} ok, {self.counts[MISMATCH]} mismatched, {self.counts[UNCHECKED]} unchecked"
