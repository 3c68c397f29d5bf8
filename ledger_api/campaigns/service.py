"""Campaigns: created and closed by their charity's operator."""

from __future__ import annotations

from typing import Any

from ledger_api.app import Runtime
from ledger_api.chain.abi import contract_error_of
from ledger_api.chain.writer import NODE_ERRORS
from ledger_api.core import ids
from ledger_api.core.errors import ChainUnavailable, NotFound
from ledger_api.core.hexes import hex0x


def view_call(runtime: Runtime, function: str, *args: Any, missing: str) -> Any:
    """A view function of the contract; NotFound when it reverts with a not-found error."""
    try:
        return getattr(runtime.contract.functions, function)(*args).call()
    except NODE_ERRORS as exc:
        raise ChainUnavailable(f"the chain node did not answer ({type(exc).__name__})") from None
    except Exception as exc:
        error = contract_error_of(exc)
        if error is not None and error.name.endswith("NotFound"):
            raise NotFound(f"{missing} not found") from None
        raise


_OWNERS: dict[tuple[str, bytes], str] = {}  # (contract, campaign) -> charity; owners never change


def charity_of_campaign(runtime: Runtime, campaign_id: str) -> str:
    """The charity (0x hex) that owns a campaign, read from the chain (the mirror may lag)
    once, then remembered: a campaign never changes hands."""
    campaign = ids.to_bytes32(campaign_id, "campaign")
    key = (runtime.deployment.address, campaign)
    if key not in _OWNERS:
        view = view_call(runtime, "campaignOf", campaign, missing="campaign")
        _OWNERS[key] = hex0x(view[0])
    return _OWNERS[key]
