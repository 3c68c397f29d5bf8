"""GET /v1/contract (the deployment and its build, for anyone to check) and POST /rpc (the
embedded chain over read-only JSON-RPC; 404 against a node, whose own RPC is the one to
use: LEDGER_PUBLIC_RPC_URL)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from ledger_api.chain.rpc_server import ReadOnlyRpc
from ledger_api.core.errors import NotFound
from ledger_api.core.limits import JSON_BODY, JsonRpcRoute
from ledger_api.deployment import reads
from ledger_api.deployment.schemas import ContractInfo
from ledger_api.mirror.gateway import MirrorDep

router = APIRouter(tags=["verification"])
rpc_router = APIRouter(route_class=JsonRpcRoute)


@router.get("/v1/contract", response_model=ContractInfo, response_model_exclude_unset=True)
def contract(mirror: MirrorDep, request: Request) -> ContractInfo:
    """The chain and the ledger contract this service records on, its ABI and how it was
    built (compiler, settings, the SHA-256 of every source file), so that anyone can compile
    it again, compare the code at the address, and read the ledger from the chain itself at
    `rpc_url` (or any node of the chain)."""
    return reads.contract_info(mirror.settings, mirror.deployment, str(request.base_url))


def embedded_rpc(request: Request) -> ReadOnlyRpc:
    rpc: ReadOnlyRpc | None = request.app.state.public_chain
    if rpc is None:
        raise NotFound("this service runs on an external node: use that chain's own JSON-RPC")
    return rpc


EmbeddedRpcDep = Annotated[ReadOnlyRpc, Depends(embedded_rpc)]


@rpc_router.post(reads.RPC_PATH, include_in_schema=False, max_body_size=JSON_BODY)
async def json_rpc(request: Request, rpc: EmbeddedRpcDep) -> Response:
    """The embedded chain over JSON-RPC 2.0, read methods only (chain/rpc_server.py)."""
    body = await request.body()
    return Response(await run_in_threadpool(rpc.answer, body), media_type="application/json")
