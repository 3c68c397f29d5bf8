"""The FastAPI application."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, select, text
from web3 import Web3
from web3.contract import Contract

from indexer import models as im
from indexer.service import BackgroundIndexer
from ledger_api.chain.contract import Deployment, ledger_contract
from ledger_api.chain.keystore import Keystore
from ledger_api.chain.writer import ChainWriter, OutboxWorker
from ledger_api.core import docs, errors, metrics
from ledger_api.core.answers import Health
from ledger_api.core.config import Settings
from ledger_api.core.http import ResponseHeaders
from ledger_api.core.idempotency import IdempotencyMiddleware
from ledger_api.core.limits import RequestLimits, sane_recursion_limit


@dataclass
class Runtime:
    """What the running service works with: its settings, chain, database and, when it
    runs one, the background indexer."""

    settings: Settings
    w3: Web3
    deployment: Deployment
    engine: Engine
    deployment_id: int | None = None
    indexer: BackgroundIndexer | None = None
    # The write side (absent when the service only reads).
    keystore: Keystore | None = None
    writer: ChainWriter | None = None
    service_account: str | None = None
    outbox: OutboxWorker | None = None
    # Development chains fund new operator accounts from this node-held account.
    faucet: str | None = None

    @cached_property
    def contract(self) -> Contract:
        """The ledger contract object, built once (web3 hashes the whole ABI to build one)."""
        return ledger_contract(self.w3, self.deployment.address)


def _indexer_health(runtime: Runtime, head: int | None) -> dict[str, Any]:
    """How far the SQL mirror is behind the chain, read from the cursor the indexer
    commits with every range (so it is right whichever process writes the mirror)."""
    health: dict[str, Any] = {
        "confirmations": runtime.settings.effective_confirmations,
        "in_process": runtime.indexer is not None,
    }
    if runtime.indexer is not None:
        health["running"] = runtime.indexer.thread.is_alive()
        health["reorgs"] = runtime.indexer.indexer.reorgs
    if runtime.deployment_id is None:
        return {**health, "status": "not configured"}
    with runtime.engine.connect() as connection:
        cursor = connection.execute(
            select(im.Cursor.block_number, im.Cursor.finalized_block).where(
                im.Cursor.deployment_id == runtime.deployment_id
            )
        ).one_or_none()
    if cursor is None:
        return _stalled_writer(runtime, {**health, "status": "starting", "indexed_block": None}, None, head)
    health.update(indexed_block=cursor.block_number, finalized_block=cursor.finalized_block)
    if head is not None:
        lag = max(0, head - cursor.block_number)
        health["lag_blocks"] = lag
        health["status"] = "ok" if lag <= runtime.settings.max_lag_blocks else "behind"
    else:
        health["status"] = "unknown"
    return _stalled_writer(runtime, health, cursor.block_number, head)


STALL_SECONDS = 10.0


def _stalled_writer(
    runtime: Runtime, health: dict[str, Any], cursor: int | None, head: int | None
) -> dict[str, Any]:
    """When this process's indexer stands by (another process holds the writer lock), the
    mirror is only as fresh as that writer keeps it: `stalled` when the first block it has
    not mirrored was mined more than STALL_SECONDS ago. A writer that runs mirrors a new
    block within a poll interval (0.2 s on the embedded chain, 0.5 s against a node) plus
    one range (the indexer halves a range that takes over 1 s); 10 s also absorbs block
    timestamps' whole seconds and clock skew between hosts. One eth_getBlock, only then."""
    if runtime.indexer is None:
        return health
    health["standing_by"] = runtime.indexer.thread.is_alive() and not runtime.indexer.lock.held
    if not health["standing_by"] or head is None:
        return health
    first = runtime.deployment.block_number if cursor is None else cursor + 1
    if first > head:
        return health
    try:
        waiting = time.time() - int(runtime.w3.eth.get_block(first)["timestamp"])
    except Exception:  # the node went away meanwhile: the next check tells
        return health
    if waiting > STALL_SECONDS:
        health["status"] = "stalled"
        health["stalled_seconds"] = int(waiting)
        health["error"] = (
            f"another process holds the indexer's writer lock and has not mirrored block {first} "
            f"in {int(waiting)} s (chain head {head}); is it alive?"
        )
    return health


def create_app(runtime: Runtime) -> FastAPI:
    sane_recursion_limit()  # this process parses untrusted JSON (see core/limits.py)
    from ledger_api.audit.jobs import ReconciliationWorker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime.indexer is not None:
            runtime.indexer.start()
        if runtime.outbox is not None:
            runtime.outbox.start()
        app.state.reconciler = ReconciliationWorker(runtime)
        app.state.reconciler.start()
        try:
            yield
        finally:
            app.state.reconciler.stop()
            if runtime.outbox is not None:
                runtime.outbox.stop()
            if runtime.indexer is not None:
                runtime.indexer.stop()

    app = FastAPI(
        title="Charity ledger",
        version="0.1.0",
        lifespan=lifespan,
        description="Record, mirror and trace charitable fund flows. Errors are RFC 9457 problem details.",
        docs_url=None,  # served from local assets by docs.install
        redoc_url=None,
    )
    app.state.runtime = runtime
    # Outermost, around Starlette's error middleware too: every answer gets nosniff.
    build_stack = app.build_middleware_stack
    app.build_middleware_stack = lambda: ResponseHeaders(build_stack())  # type: ignore[method-assign]
    docs.install(app)
    errors.install(app)
    app.add_middleware(IdempotencyMiddleware)
    from ledger_api.audit.routes import router as audit
    from ledger_api.campaigns.routes import router as campaigns
    from ledger_api.charities.routes import router as charities
    from ledger_api.disbursements.routes import router as disbursements
    from ledger_api.donations.routes import router as donations
    from ledger_api.evidence.routes import router as evidence
    from ledger_api.keys.routes import router as keys
    from ledger_api.transactions.routes import router as transactions

    routers = (keys, charities, campaigns, donations, disbursements, evidence, transactions, audit)
    for router in routers:
        app.include_router(router)
    from ledger_api.pages import install as install_pages
    from ledger_api.pages.routes import router as pages

    install_pages(app)
    # Added last, so the outermost: bodies are bounded before anything reads them.
    app.add_middleware(RequestLimits, routes=[r for router in (*routers, pages) for r in router.routes])

    @app.get(
        "/healthz",
        tags=["operations"],
        response_model=Health,
        responses={503: {"model": Health, "description": "degraded: the parts say why"}},
    )
    def healthz() -> JSONResponse:
        """Liveness, the deployment this service works with, and how far the mirror lags."""
        body: dict[str, Any] = {
            "status": "ok",
            "chain": {
                "chain_id": runtime.deployment.chain_id,
                "contract_address": runtime.deployment.address,
                "deployment_block": runtime.deployment.block_number,
                "embedded": runtime.settings.embedded_chain,
            },
        }
        head: int | None = None
        try:
            head = runtime.w3.eth.block_number
            body["chain"]["head_block"] = head
        except Exception as exc:  # the node is down or unreachable
            body["status"] = "degraded"
            body["chain"]["error"] = f"chain node unreachable: {type(exc).__name__}"
        try:
            with runtime.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            body["database"] = {"status": "ok", "dialect": runtime.engine.dialect.name}
            body["indexer"] = _indexer_health(runtime, head)
            if body["indexer"]["status"] in ("behind", "stalled") or body["indexer"].get("running") is False:
                body["status"] = "degraded"
        except Exception as exc:
            body["status"] = "degraded"
            body["database"] = {"status": "unreachable", "error": type(exc).__name__}
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        """Prometheus metrics (requests, indexer height, lag, finalized height, reorgs, errors)
        of every worker; for the admin key, an auditor key or LEDGER_METRICS_TOKEN."""
        metrics.check_reader(runtime.settings, runtime.engine, request.headers.get("authorization"))
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    return app
