"""The two things ledger-verify talks to: an Ethereum JSON-RPC node (trusted: it is the
chain) and the ledger service's public JSON (untrusted: it only says what to check).
Every answer is bounded in size before it is parsed."""

from __future__ import annotations

import json
from typing import Any

import httpx

JSON_LIMIT = 32 * 1024 * 1024  # bytes of one JSON answer (a proof bundle is the largest)
DOCUMENT_LIMIT = 64 * 1024 * 1024  # bytes of one evidence document
LOG_CHUNK = 10_000  # blocks per eth_getLogs call (the embedded chain's /rpc allows 10,000)
TIMEOUT = 60.0


class Unavailable(Exception):
    """The node or the service could not answer (network, HTTP status, size, not JSON)."""


def _read(client: httpx.Client, method: str, url: str, limit: int, **kwargs: Any) -> bytes:
    try:
        with client.stream(method, url, **kwargs) as response:
            if response.status_code != 200:
                raise Unavailable(f"{url} answered HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise Unavailable(f"{url} answered more than {limit:,} bytes")
            return bytes(body)
    except httpx.HTTPError as exc:
        raise Unavailable(f"{url}: {type(exc).__name__}: {exc}") from None


def _json(body: bytes, where: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise Unavailable(f"{where} did not answer JSON") from None


class Node:
    """A JSON-RPC node: the only source of truth."""

    def __init__(self, url: str, client: httpx.Client) -> None:
        self.url = url
        self.client = client
        self._id = 0

    def call(self, method: str, *params: Any) -> Any:
        self._id += 1
        body = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": list(params)}
        answer = _json(_read(self.client, "POST", self.url, JSON_LIMIT, json=body), self.url)
        if not isinstance(answer, dict):
            raise Unavailable(f"the node's answer to {method} is not a JSON-RPC answer")
        if answer.get("error") is not None:
            error = answer["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise Unavailable(f"the node refused {method}: {message}")
        return answer.get("result")

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def head(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def block(self, number: int) -> dict[str, Any] | None:
        block: dict[str, Any] | None = self.call("eth_getBlockByNumber", hex(number), False)
        return block

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        receipt: dict[str, Any] | None = self.call("eth_getTransactionReceipt", tx_hash)
        return receipt

    def code(self, address: str, block: str = "latest") -> bytes:
        return bytes.fromhex(str(self.call("eth_getCode", address, block))[2:])

    def eth_call(self, address: str, data: bytes, block: int) -> bytes:
        result = self.call("eth_call", {"to": address, "data": "0x" + data.hex()}, hex(block))
        return bytes.fromhex(str(result)[2:])

    def logs(self, address: str, topics: list[str | None], start: int, end: int) -> list[dict[str, Any]]:
        """Every log matching the topics in [start, end], LOG_CHUNK blocks per call."""
        found: list[dict[str, Any]] = []
        while start <= end:
            stop = min(end, start + LOG_CHUNK - 1)
            query = {"address": address, "topics": topics, "fromBlock": hex(start), "toBlock": hex(stop)}
            found += self.call("eth_getLogs", query) or []
            start = stop + 1
        return found


class Service:
    """The ledger service's public API: what it claims, nothing more."""

    def __init__(self, url: str, client: httpx.Client, headers: dict[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.client = client
        self.headers = headers or {}  # an API key, for the access log (auditors and admins only)

    def json(self, path: str) -> Any:
        url = f"{self.url}{path}"
        return _json(_read(self.client, "GET", url, JSON_LIMIT, headers=self.headers), url)

    def document(self, path: str) -> bytes:
        """A document at a path of this service (never another host the answer names)."""
        if not path.startswith("/") or path.startswith("//"):
            raise Unavailable(f"the document's address is not a path of the service: {path[:100]}")
        return _read(self.client, "GET", f"{self.url}{path}", DOCUMENT_LIMIT)
