"""HTTP plumbing below the app: uvicorn's protocol with the timeouts it lacks, and the
headers and counts every answer gets.

uvicorn closes a connection only when it sits idle after an answer (`timeout_keep_alive`,
5 s). A client that opens a connection and sends nothing, or sends its request head a
byte at a time (slowloris), or stops half-way through a body, holds it for ever: measured
here with uvicorn 0.54, a connection that sent nothing and one that sent
`GET / HTTP/1.1\\r\\n` and then a header byte every 5 s were both still open after 125 s.
`SlowClientH11Protocol` closes them: the head must be complete `header_timeout` seconds
after the connection opened or the previous answer was sent; a body may not go
`body_timeout` seconds without a byte. A reverse proxy in front closes these too (README,
"Behind a reverse proxy"); this is the same limit for a service reached directly.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import h11
from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from ledger_api.core.config import Settings, get_settings

log = logging.getLogger("ledger_api.http")

# Answers by method, route template (bounded: the app's routes, or "unmatched") and status.
HTTP_REQUESTS = Counter("ledger_http_requests", "HTTP requests answered.", ("method", "route", "status"))
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class SlowClientH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that disconnects clients too slow to send their request.

    One timer per connection: while h11 waits for a request head (`their_state` IDLE) it
    runs from the moment the connection opened or the previous answer completed, and is not
    reset by bytes that do not finish the head; while a body is coming (SEND_BODY) it is
    reset by every chunk; while the app works on a request, or answers, there is none.
    The timeouts are class attributes; None reads them from the settings (`ledger serve
    --workers`, whose processes import this class by name)."""

    header_timeout: ClassVar[float | None] = None
    body_timeout: ClassVar[float | None] = None

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        head, body = self.header_timeout, self.body_timeout
        if head is None or body is None:
            settings = get_settings()
            head = settings.header_timeout if head is None else head
            body = settings.body_timeout if body is None else body
        self._head_seconds, self._body_seconds = head, body
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: str | None = None  # "head" or "body"

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch(fresh_head=True)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch(fresh_head=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _watch(self, fresh_head: bool = False) -> None:
        if self.transport.is_closing():
            self._cancel()
        elif self.conn.their_state is h11.IDLE:
            if fresh_head or self._waiting_for != "head":
                self._arm("head", self._head_seconds)
        elif self.conn.their_state is h11.SEND_BODY:
            self._arm("body", self._body_seconds)
        else:
            self._cancel()

    def _arm(self, what: str, seconds: float) -> None:
        self._cancel()
        self._waiting_for = what
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._waiting_for = None

    def _expired(self) -> None:
        what, self._deadline = self._waiting_for, None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if what == "body" and (
            self.flow.read_paused  # the app is slow to take the body, not the client to send it
            or (cycle is not None and cycle.waiting_for_100_continue and not cycle.response_complete)
        ):
            self._arm("body", self._body_seconds)
            return
        seconds = self._head_seconds if what == "head" else self._body_seconds
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        log.info("closed %s: no complete request %s within %g s", client, what, seconds)
        self.transport.close()


def slow_client_protocol(settings: Settings) -> type[SlowClientH11Protocol]:
    """The protocol class with this settings' timeouts (uvicorn's `Config(http=...)`)."""
    return type(
        "SlowClientH11Protocol",
        (SlowClientH11Protocol,),
        {"header_timeout": settings.header_timeout, "body_timeout": settings.body_timeout},
    )


# `uvicorn.Config(http=...)` for processes that build their settings from the environment.
PROTOCOL_BY_NAME = f"{__name__}:SlowClientH11Protocol"


class ResponseHeaders:
    """Every answer says `X-Content-Type-Options: nosniff` (JSON, problems, exports, the
    pages, static files) and is counted in `ledger_http_requests_total`. Pure ASGI, so a
    streamed body passes through untouched. It wraps the whole app, outside Starlette's
    error middleware, so that the 500 answer of an unexpected exception gets it too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-content-type-options" for name, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                    message = {**message, "headers": headers}
                route = getattr(scope.get("route"), "path", "unmatched")
                method = scope["method"] if scope["method"] in _METHODS else "other"
                HTTP_REQUESTS.labels(method, route, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, send_with_headers)
