"""A JSON-RPC HTTP proxy in front of a node, for tests of how the indexer copes with
nodes that misbehave: it can refuse `eth_getLogs` over more than a number of blocks, and
it can disappear (connections refused) or answer HTTP 502, then come back on the same
port."""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.anvil import free_port


def _block_span(params: Any) -> int | None:
    """Blocks an eth_getLogs filter spans, or None when it is not a numeric range."""
    try:
        query = params[0]
        return int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1
    except (KeyError, IndexError, TypeError, ValueError):
        return None


class RpcProxy:
    """Forwards JSON-RPC over HTTP to `upstream`.

    max_logs_range: refuse eth_getLogs spanning more blocks than this, with `refusal`
    as the JSON-RPC error message. `refused` and `accepted` record the spans of the
    eth_getLogs requests refused and forwarded.
    """

    def __init__(
        self,
        upstream: str,
        max_logs_range: int | None = None,
        refusal: str = "query exceeds max block range {limit}",
    ) -> None:
        self.upstream = upstream
        self.max_logs_range = max_logs_range
        self.refusal = refusal
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.refused: list[int] = []
        self.accepted: list[int] = []
        self.failed = 0  # requests answered with HTTP 502
        self.bad_gateway = False
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> RpcProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if proxy.bad_gateway:
                    with proxy._lock:
                        proxy.failed += 1
                    self._send(502, b"bad gateway")
                    return
                request = json.loads(body)
                if isinstance(request, list):
                    answer: Any = [proxy._answer(r) for r in request]
                else:
                    answer = proxy._answer(request)
                self._send(200, json.dumps(answer).encode())

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket: connections to the port are refused from now on."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> RpcProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ forwarding

    def _answer(self, request: dict[str, Any]) -> Any:
        if request.get("method") == "eth_getLogs" and self.max_logs_range is not None:
            span = _block_span(request.get("params"))
            if span is not None:
                with self._lock:
                    (self.refused if span > self.max_logs_range else self.accepted).append(span)
                if span > self.max_logs_range:
                    message = self.refusal.format(limit=self.max_logs_range)
                    return {
                        "jsonrpc": "2.0",
                        "id": request.get("id"),
                        "error": {"code": -32005, "message": message},
                    }
        forwarded = urllib.request.Request(
            self.upstream,
            data=json.dumps(request).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(forwarded, timeout=30) as response:
            return json.loads(response.read())
