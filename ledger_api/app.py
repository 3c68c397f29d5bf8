"""The FastAPI application."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from web3 import Web3

from ledger_api.chain.contract import Deployment
from ledger_api.core.config import Settings


@dataclass
class Runtime:
    """What the running service works with: its settings, chain and database."""

    settings: Settings
    w3: Web3
    deployment: Deployment
    engine: Engine


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="Charity ledger", version="0.1.0")
    app.state.runtime = runtime

    @app.get("/healthz", tags=["operations"])
    def healthz() -> JSONResponse:
        """Liveness and the deployment this service works with."""
        body: dict[str, Any] = {
            "status": "ok",
            "chain": {
                "chain_id": runtime.deployment.chain_id,
                "contract_address": runtime.deployment.address,
                "deployment_block": runtime.deployment.block_number,
                "embedded": runtime.settings.embedded_chain,
            },
        }
        try:
            body["chain"]["head_block"] = runtime.w3.eth.block_number
        except Exception as exc:  # the node is down or unreachable
            body["status"] = "degraded"
            body["chain"]["error"] = f"chain node unreachable: {type(exc).__name__}"
        try:
            with runtime.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            body["database"] = {"status": "ok", "dialect": runtime.engine.dialect.name}
        except Exception as exc:
            body["status"] = "degraded"
            body["database"] = {"status": "unreachable", "error": type(exc).__name__}
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    return app
