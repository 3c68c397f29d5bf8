"""What a read needs, and nothing more: the settings, the database holding the mirror,
and the identity of the ledger deployment it mirrors (chain, contract, deployment row).
Routes get it with `MirrorDep`; the running service builds one (`Runtime.mirror`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from ledger_api.chain.contract import Deployment
from ledger_api.core.config import Settings


@dataclass(frozen=True)
class Mirror:
    """The read gateway: every public and audit read goes through one of these."""

    settings: Settings
    engine: Engine
    deployment: Deployment
    deployment_id: int | None


def current_mirror(request: Request) -> Mirror:
    mirror: Mirror = request.app.state.mirror
    return mirror


MirrorDep = Annotated[Mirror, Depends(current_mirror)]
