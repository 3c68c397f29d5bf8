"""The FastAPI application."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select, text

from ledger_api.approvals.routes import router as approvals
from ledger_api.audit.jobs import ReconciliationWorker
from ledger_api.audit.routes import access_router
from ledger_api.audit.routes import router as audit
from ledger_api.audit.seals import SealWorker
from ledger_api.campaigns.routes import router as campaigns
from ledger_api.charities.routes import router as charities
from ledger_api.console.approvals import router as console_approvals
from ledger_api.console.disclosure import router as console_disclosure
from ledger_api.console.imports import router as console_imports
from ledger_api.console.registrar import router as registrar
from ledger_api.console.routes import router as console
from ledger_api.console.signing import router as console_signing
from ledger_api.core import docs, errors, logs, metrics
from ledger_api.core.answers import Health
from ledger_api.core.caching import HttpCaching
from ledger_api.core.config import get_settings
from ledger_api.core.http import ResponseHeaders
from ledger_api.core.idempotency import IdempotencyMiddleware
from ledger_api.core.limits import RequestLimits, sane_recursion_limit
from ledger_api.deployment.routes import router as deployment
from ledger_api.deployment.routes import rpc_router
from ledger_api.disbursements.routes import router as disbursements
from ledger_api.disclosure.routes import router as disclosure
from ledger_api.donations.routes import router as donations
from ledger_api.evidence.routes import router as evidence
from ledger_api.imports.routes import router as imports
from ledger_api.keys.routes import router as keys
from ledger_api.mirror import tables as im
from ledger_api.mirror.replicas import WriteFence
from ledger_api.pages import install as install_pages
from ledger_api.pages.feeds import router as feeds
from ledger_api.pages.routes import router as pages
from ledger_api.recipients.routes import router as recipients
from ledger_api.retention import RetentionWorker
from ledger_api.runtime import Runtime, build_runtime
from ledger_api.scorecards.routes import router as scorecards
from ledger_api.transactions.routes import relay_router
from ledger_api.transactions.routes import router as transactions
from ledger_api.webhooks.dispatcher import DispatcherWorker
from ledger_api.webhooks.routes import router as webhooks


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


def create_app(runtime: Runtime, *, long_lived: bool = False) -> FastAPI:
    """The service. `long_lived`: this app is the process's until it ends (`ledger serve`,
    `ledger dev`), so once started, what it has built is moved out of the garbage
    collector's sight (`gc.freeze`): a full collection walked those ~300,000 objects of
    imports, routes and pools in about 160 ms (`scripts/bench/gc_pause.py`), a pause for
    every request in flight. Tests build many apps in one process and leave it off."""
    sane_recursion_limit()  # this process parses untrusted JSON (see core/limits.py)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime.indexer is not None:
            runtime.indexer.start()
        if runtime.outbox is not None:
            runtime.outbox.start()
        app.state.reconciler = ReconciliationWorker(runtime.auditing)
        app.state.reconciler.start()
        app.state.retention = RetentionWorker(runtime.engine)
        app.state.retention.start()
        # A read-only service (no writer) leaves the sealing to one that writes.
        sealer = SealWorker(runtime.writes, runtime.engine) if runtime.writes is not None else None
        if sealer is not None:
            sealer.start()
        # Webhooks of final records (several processes may dispatch: each delivery is claimed).
        dispatcher = DispatcherWorker(runtime.mirror) if runtime.settings.run_webhooks else None
        if dispatcher is not None:
            dispatcher.start()
        if runtime.replicas is not None:
            runtime.replicas.start()
        if long_lived:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if runtime.replicas is not None:
                runtime.replicas.stop()
            if dispatcher is not None:
                dispatcher.stop()
            if sealer is not None:
                sealer.stop()
            app.state.retention.stop()
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
    # What the routes depend on (MirrorDep, AuditingDep, WritesDep), each built once.
    app.state.mirror = runtime.mirror
    app.state.auditing = runtime.auditing
    app.state.writes = runtime.writes
    app.state.public_chain = runtime.public_chain
    # Outermost, around Starlette's error middleware too: every answer gets nosniff.
    build_stack = app.build_middleware_stack
    app.build_middleware_stack = lambda: ResponseHeaders(build_stack())  # type: ignore[method-assign]
    docs.install(app)
    errors.install(app)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(HttpCaching)
    if runtime.replicas is not None:
        app.add_middleware(WriteFence, replicas=runtime.replicas)
    routers = (
        keys,
        approvals,
        charities,
        campaigns,
        donations,
        disbursements,
        evidence,
        recipients,
        disclosure,
        scorecards,
        transactions,
        relay_router,
        audit,
        access_router,
        imports,
        deployment,
        rpc_router,
        feeds,
        webhooks,
    )
    for router in routers:
        app.include_router(router)
    app.include_router(console)
    app.include_router(registrar)
    app.include_router(console_signing)
    app.include_router(console_imports)
    app.include_router(console_approvals)
    app.include_router(console_disclosure)
    install_pages(app)
    # Added last, so the outermost: bodies are bounded before anything reads them.
    pages_routers = (console, registrar, console_signing, console_approvals, console_disclosure, pages)
    app.add_middleware(
        RequestLimits, routes=[r for router in (*routers, *pages_routers) for r in router.routes]
    )

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


def app_from_environment() -> FastAPI:
    """The app of one `ledger serve --workers N` process, built from the environment."""
    settings = get_settings()
    logs.configure(json_lines=settings.env == "production")
    return create_app(build_runtime(settings, dev=False), long_lived=True)
