"""Dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from ledger_api.app import Runtime
from ledger_api.core.errors import Problem


class WritesDisabled(Problem):
    status, kind, title = 503, "writes-disabled", "This service does not accept writes"


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _write_runtime(request: Request) -> Runtime:
    runtime = _runtime(request)
    if runtime.writer is None or runtime.keystore is None or runtime.deployment_id is None:
        raise WritesDisabled("this service runs without a keystore; it serves reads only")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
WriteRuntimeDep = Annotated[Runtime, Depends(_write_runtime)]
WaitParam = Annotated[
    bool, Query(description="Answer once the transaction is mined (default); false: 202 at once.")
]
