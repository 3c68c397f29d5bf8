"""The crash hook of the outbox's crash tests: a documented fault-injection point, off
unless explicitly enabled in development.

`ChainWriter.submit` has two fault-injection points (ledger_api/chain/writer.py):
"after-sign", once the signed transaction is committed to the outbox and before it is
sent, and "after-send", once the node has it and before the outbox records that.
tests/api/test_reliability.py starts `ledger dev` with LEDGER_CRASH_AT set to one of
them; the next write then kills the process there with SIGKILL (no cleanup, as a power
cut), and the test proves a restarted service finishes the write exactly once.

Only `ledger dev` with LEDGER_ENV=development arms it. `ledger serve` (any LEDGER_ENV)
and `ledger dev` with LEDGER_ENV=production never do: they log that the variable is
ignored and run with no hook at all, so nothing in them can fire it.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Mapping

from ledger_api.chain.writer import FaultInjection
from ledger_api.core.config import Settings

log = logging.getLogger("ledger_api.faults")

CRASH_VARIABLE = "LEDGER_CRASH_AT"
CRASH_POINTS = ("after-sign", "after-send")


def crash_at(point: str) -> FaultInjection:
    """A hook that kills this process with SIGKILL when `submit` reaches `point`."""

    def hook(name: str) -> None:
        if name == point:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def fault_injection(
    settings: Settings, dev: bool, environ: Mapping[str, str] = os.environ
) -> FaultInjection | None:
    """The hook for the service's ChainWriter: `crash_at(LEDGER_CRASH_AT)` for `ledger dev`
    in development, None everywhere else (and for a name that is not a point)."""
    point = environ.get(CRASH_VARIABLE)
    if not point:
        return None
    if not dev or settings.env != "development":
        where = "ledger dev" if dev else "ledger serve"
        log.warning(
            "%s is ignored: fault injection is only for `ledger dev` in development (%s, LEDGER_ENV=%s)",
            CRASH_VARIABLE,
            where,
            settings.env,
        )
        return None
    if point not in CRASH_POINTS:
        log.warning("%s=%r is ignored: the points are %s", CRASH_VARIABLE, point, ", ".join(CRASH_POINTS))
        return None
    log.warning("fault injection armed: this process kills itself %s its next write", point)
    return crash_at(point)
