"""Bounds on what one request can make the service do before anyone knows who sent it.

- Body size, per route: a route declares its limit with FastAPI's `max_body_size=`
  (JSON_BODY unless it says otherwise). `RequestLimits`, the outermost middleware, finds
  the route before anything else runs and answers 413 as soon as `Content-Length` or the
  bytes streamed so far pass that limit: before authentication, before the idempotency
  layer buffers a byte, before a multipart body is spooled to disk.
- JSON depth: a JSON body is parsed once with orjson (whose parser stops at 1,024
  levels on its own, whatever Python's recursion limit) and refused with 422 past
  MAX_JSON_DEPTH levels, before FastAPI parses it again with the standard library.
- JSON-RPC routes (`JsonRpcRoute`) are refused the JSON-RPC way: HTTP 200 with an error
  object (-32600), which JSON-RPC clients read, where they would only see an HTTP error.
- Python's recursion limit: importing web3 imports py_ecc, which raises it to 100,000.
  CPython's C JSON decoder relies on that limit to stop before the C stack overflows:
  at 100,000 a 195 kB body of nested brackets segfaulted the whole process (API,
  indexer, outbox worker and the embedded chain with it). `sane_recursion_limit()` puts
  it back; every entry point that parses untrusted input calls it after its imports.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import py_ecc  # noqa: F401  # imported here so that it cannot raise the limit after we lower it
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger_api.core.errors import PROBLEM_JSON, TYPE_BASE

# The default body limit of a route: every JSON write of this API fits in a few kB (the
# longest texts are 256 bytes); 64 KiB leaves room and bounds the parse.
JSON_BODY = 64 * 1024
# Nesting the API's own bodies never come near (a batch is three levels deep).
MAX_JSON_DEPTH = 32
# py-evm's own need (`eth/__init__.py` raises the limit to 1024 * 12 so that the embedded
# chain reaches the EVM's 1,024 call frames), so that importing it later changes nothing.
# The C JSON decoder parsed 50,000 levels on the main thread's stack at the old limit and
# crashed at 100,000: 12,288 stays far inside any thread's stack.
RECURSION_LIMIT = 12_288


def sane_recursion_limit() -> None:
    """Undo py_ecc's `sys.setrecursionlimit(100000)` (call after importing web3)."""
    sys.setrecursionlimit(RECURSION_LIMIT)


class JsonRpcRoute(APIRoute):
    """A route speaking JSON-RPC: RequestLimits refuses its requests with JSON-RPC errors."""

    json_rpc = True


class _TooLarge(Exception):
    pass


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type = value.split(b";", 1)[0].strip().lower()
            return media_type == b"application/json" or media_type.endswith(b"+json")
    return False


def json_depth(value: Any, limit: int) -> int:
    """The nesting depth of a parsed JSON value, counting stops once it passes `limit`
    (no recursion: the value may be as deep as orjson allows)."""
    deepest = 0
    stack: list[tuple[Iterable[Any], int]] = [((value,), 0)]
    while stack:
        items, depth = stack.pop()
        for item in items:
            if isinstance(item, dict | list):
                if depth + 1 > limit:
                    return depth + 1
                deepest = max(deepest, depth + 1)
                stack.append((item.values() if isinstance(item, dict) else item, depth + 1))
    return deepest


class RequestLimits:
    """The outermost middleware: per-route body limits and JSON depth (see the module).
    `routes` are the app's routes as its routers declared them (APIRoute objects, each with
    its `max_body_size`), matched here before the app itself routes the request."""

    def __init__(
        self, app: ASGIApp, routes: Sequence[BaseRoute] = (), default_limit: int = JSON_BODY
    ) -> None:
        self.app = app
        self.routes = list(routes)
        self.default_limit = default_limit

    def _route(self, scope: Scope) -> BaseRoute | None:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return route
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self._route(scope)
        declared = getattr(route, "max_body_size", None)
        limit = self.default_limit if declared is None else int(declared)
        if getattr(route, "json_rpc", False):
            scope = {**scope, "ledger.json_rpc": True}
        announced = _content_length(scope)
        if announced is not None and announced > limit:
            await _refuse(scope, send, 413, _too_large(limit))
            return
        if _is_json(scope):
            await self._json(scope, receive, send, limit)
            return
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded, tracked)
        except _TooLarge:
            if started:
                raise
            await _refuse(scope, send, 413, _too_large(limit))

    async def _json(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client is gone: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(scope, send, 413, _too_large(limit))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            problem = _depth_problem(body)
            if problem is not None:
                await _refuse(scope, send, 422, problem)
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _depth_problem(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc):
            return _too_deep()
        return None  # not JSON: FastAPI's own parse says so, in its words
    if json_depth(parsed, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        return _too_deep()
    return None


def _too_deep() -> dict[str, Any]:
    return {
        "kind": "invalid-request",
        "title": "Invalid request",
        "detail": f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels",
    }


def _too_large(limit: int) -> dict[str, Any]:
    return {
        "kind": "request-too-large",
        "title": "Request body too large",
        "detail": f"this endpoint takes a request body of at most {limit:,} bytes",
        "max_body_size": limit,
    }


async def _refuse(scope: Scope, send: Send, status: int, problem: dict[str, Any]) -> None:
    """A problem answer sent before the app ran (it never read the body); the connection
    is closed after it, so an unread body cannot be taken for the next request. On a
    JSON-RPC route, a JSON-RPC error (HTTP 200) saying the same."""
    if scope.get("ledger.json_rpc"):
        status, media_type = 200, b"application/json"
        body = orjson.dumps(
            {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": problem["detail"]}}
        )
    else:
        media_type = PROBLEM_JSON.encode()
        body = _problem_body(scope, status, problem)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", media_type),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _problem_body(scope: Scope, status: int, problem: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "type": TYPE_BASE + problem.pop("kind"),
            "title": problem.pop("title"),
            "status": status,
            "detail": problem.pop("detail"),
            "instance": scope.get("path"),
            **problem,
        }
    )
