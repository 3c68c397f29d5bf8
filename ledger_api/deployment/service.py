"""The ledger's own switch: the registrar (the platform's account, which holds the
contract's PAUSER_ROLE) pauses every write, and lets them run again. A paused ledger
refuses every record with the contract's `EnforcedPause`; reads go on."""

from __future__ import annotations

from ledger_api.chain.abi import encode
from ledger_api.chain.writer import TxState
from ledger_api.transactions.service import Step, Writes


def is_paused(writes: Writes) -> bool:
    return bool(writes.view("paused", missing="ledger"))


def set_paused(writes: Writes, paused: bool) -> TxState:
    """Pause (or unpause) the ledger, signed by the registrar; simulated first, so pausing
    a paused ledger is a 409 naming the contract's error and sends nothing."""
    function = "pause" if paused else "unpause"
    step = Step(encode(function), {"kind": "paused" if paused else "unpaused", "ids": []})
    (state,) = writes.submit(writes.service_account, None, [step], True)
    return state
