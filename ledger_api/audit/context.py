"""What audit requests work with: the read gateway, and the chain node itself, since
reconciliation compares the mirror with what the chain says."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from web3 import Web3

from ledger_api.mirror.gateway import Mirror


@dataclass(frozen=True)
class Auditing(Mirror):
    """A `Mirror` with the node to check it against."""

    w3: Web3


def current_auditing(request: Request) -> Auditing:
    auditing: Auditing = request.app.state.auditing
    return auditing


AuditingDep = Annotated[Auditing, Depends(current_auditing)]
