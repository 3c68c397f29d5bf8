"""Raw JSON-RPC: the chain reads whose answers are too large or too many for web3's
request path, read past it.

web3's result formatters (AttributeDicts, HexBytes, checksummed addresses) cost five
times the request itself on a large `eth_getLogs`, and formatting a batch's receipt (500
logs) cost more than everything else a write does; a reconciliation makes thousands of
view calls, which go in JSON-RPC batches. So over HTTP these requests are encoded and
read with orjson, sent through a urllib3 connection pool of their own (requests' Session,
which web3 uses, cost 400 us of CPU per call against urllib3's 180: a fifth of the
service's CPU per single donation went there), and the callers read the hex directly.

On the embedded eth-tester chain there is no HTTP: the same methods go through web3 (or
straight to eth-tester for view calls), giving what the callers read there today.

Errors: the node's JSON-RPC error is an RpcError (a web3 Web3RPCError, its text the
node's error object); a node that cannot be reached, times out or answers an HTTP error
raises requests' exception (an OSError), so callers tell "the node refused" from "the
node is not there" (urllib3's errors are raised as requests' own, which callers know).
Nothing here retries: the indexer and the outbox retry on their own
terms (the indexer halves a range whose query timed out).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import requests
import requests.adapters
import urllib3
from web3 import HTTPProvider, Web3
from web3.exceptions import BlockNotFound, TransactionNotFound, Web3RPCError

from ledger_api.core.hexes import hex0x, to_int

# Batches of view calls (a reconciliation's) may take longer than one request should.
BATCH_TIMEOUT = 60.0
# web3's own default, for a provider made without a timeout.
DEFAULT_TIMEOUT = 30.0
_HEADERS = {"Content-Type": "application/json"}
# Block headers per JSON-RPC batch (an indexer range may want a few thousand).
HEADER_BATCH = 1_000


class RpcError(Web3RPCError):
    """The node answered with a JSON-RPC error (it refused the request)."""

    def __init__(self, error: Any) -> None:
        super().__init__(str(error))
        self.error = error

    @property
    def data(self) -> Any:  # revert data, for chain.abi.revert_data
        return self.error.get("data") if isinstance(self.error, dict) else None


def pooled_session() -> requests.Session:
    """One HTTP session for every thread, large enough for the API's worker threads;
    trust_env off: requests would otherwise look for .netrc and CA bundle files on disk
    before every single call."""
    session = requests.Session()
    session.trust_env = False
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class Rpc:
    """Raw JSON-RPC requests to the node behind `w3`."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        provider = w3.provider
        self.endpoint: str | None = None
        self.timeout = DEFAULT_TIMEOUT
        self._sender: str | None = None  # eth-tester: the account view calls come from
        if isinstance(provider, HTTPProvider):
            self.endpoint = str(provider.endpoint_uri)
            self.timeout = float(dict(provider.get_request_kwargs()).get("timeout", DEFAULT_TIMEOUT))
            self.pool = urllib3.connection_from_url(self.endpoint, maxsize=64, block=False)
            self.path = urllib3.util.parse_url(self.endpoint).request_uri

    @property
    def http(self) -> bool:
        """Whether requests go raw over HTTP (otherwise through web3, e.g. the embedded chain)."""
        return self.endpoint is not None

    # ------------------------------------------------------------ transport

    def _post(self, body: Any, timeout: float | None) -> Any:
        assert self.endpoint is not None, "raw JSON-RPC needs an HTTP node"
        try:
            reply = self.pool.urlopen(
                "POST",
                self.path,
                body=orjson.dumps(body),
                headers=_HEADERS,
                timeout=urllib3.Timeout(total=timeout or self.timeout),
                retries=False,
            )
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout(str(exc)) from exc
        except urllib3.exceptions.NewConnectionError as exc:  # refused (a subclass of the next)
            raise requests.exceptions.ConnectionError(str(exc)) from exc
        except urllib3.exceptions.ConnectTimeoutError as exc:
            raise requests.exceptions.ConnectTimeout(str(exc)) from exc
        except urllib3.exceptions.HTTPError as exc:  # reset, closed
            raise requests.exceptions.ConnectionError(str(exc)) from exc
        if reply.status >= 400:
            raise requests.exceptions.HTTPError(f"the node answered HTTP {reply.status}")
        return orjson.loads(reply.data)

    def request(self, method: str, params: Sequence[Any], timeout: float | None = None) -> Any:
        """The result of one request, as the node sends it (hex strings); RpcError if the
        node answers with an error."""
        response = self._post({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout)
        if "error" in response:
            raise RpcError(response["error"])
        return response.get("result")

    def batch(
        self, requests_: Sequence[tuple[str, Sequence[Any]]], timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """One JSON-RPC batch: each request's answer object (`result` or `error`), in the
        order asked; an answer the node left out is an empty object."""
        ids = range(len(requests_))
        body = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": list(params)}
            for i, (method, params) in zip(ids, requests_, strict=True)
        ]
        answers = self._post(body, timeout)
        if isinstance(answers, dict):  # the whole batch refused
            raise RpcError(answers.get("error", answers))
        by_id = {answer.get("id"): answer for answer in answers}
        return [by_id.get(i) or {} for i in ids]

    # -------------------------------------------------------------- methods

    def get_logs(self, address: str, start: int, end: int, topics: list[str]) -> list[dict[str, Any]]:
        """The logs of `address` in blocks start..end with one of `topics` first: over HTTP
        as JSON (hex strings), on other providers as web3 gives them (bytes)."""
        if self.http:
            params = {"address": address, "fromBlock": hex(start), "toBlock": hex(end), "topics": [topics]}
            return list(self.request("eth_getLogs", [params]))
        filter_params: Any = {"address": address, "fromBlock": start, "toBlock": end, "topics": [topics]}
        return [dict(entry) for entry in self.w3.eth.get_logs(filter_params)]

    def headers(self, numbers: Sequence[int]) -> list[dict[str, Any]]:
        """Hash and parent hash (0x hex) and timestamp of each block, in the order asked:
        over HTTP in JSON-RPC batches (the indexer reads hundreds per range, one request
        each cost more than its eth_getLogs), otherwise through web3. A block the node
        does not have raises BlockNotFound, as web3's get_block does."""
        if not self.http:
            blocks = [self.w3.eth.get_block(number) for number in numbers]
            return [
                {
                    "hash": hex0x(bytes(block["hash"])),
                    "parentHash": hex0x(bytes(block["parentHash"])),
                    "timestamp": int(block["timestamp"]),
                }
                for block in blocks
            ]
        found = []
        for i in range(0, len(numbers), HEADER_BATCH):
            chunk = numbers[i : i + HEADER_BATCH]
            answers = self.batch([("eth_getBlockByNumber", [hex(number), False]) for number in chunk])
            for number, answer in zip(chunk, answers, strict=True):
                if "error" in answer:
                    raise RpcError(answer["error"])
                block = answer.get("result")
                if not block:
                    raise BlockNotFound(f"block {number} not found")
                found.append(
                    {
                        "hash": block["hash"].lower(),
                        "parentHash": block["parentHash"].lower(),
                        "timestamp": to_int(block["timestamp"]),
                    }
                )
        return found

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        """A transaction's status, block number, block hash (hex) and gas used, or None if
        it is not mined yet."""
        if not self.http:  # the embedded chain: small receipts
            try:
                formatted = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                return None
            raw: dict[str, Any] = dict(formatted)
        else:
            raw = self.request("eth_getTransactionReceipt", [tx_hash])
            if not raw:
                return None
        return {
            "status": to_int(raw["status"]),
            "blockNumber": to_int(raw["blockNumber"]),
            "blockHash": hex0x(raw["blockHash"]),
            "gasUsed": to_int(raw["gasUsed"]),
        }

    def eth_call(self, address: str, data: bytes, block: int) -> Any:
        """What a call of `address` with `data` returns at `block`, as hex text as the node
        sends it (the caller decodes it, and tells a malformed answer from a record). On the embedded chain
        straight to eth-tester (hold the chain's lock around it: SerializedTesterProvider.
        background_slice): web3's request path (middlewares, guessing a sender with
        eth_accounts, formatters) took 20-30 ms of a 35 ms call there, eth-tester's own
        call 11-15 ms. A revert raises (eth-tester's TransactionFailed, or RpcError)."""
        if self.http:
            return self.request("eth_call", [{"to": address, "data": hex0x(data)}, hex(block)])
        tester = getattr(self.w3.provider, "ethereum_tester", None)
        if tester is None:
            return hex0x(self.w3.eth.call({"to": address, "data": data}, block))
        self._sender = self._sender or tester.get_accounts()[0]
        return tester.call({"from": self._sender, "to": address, "data": hex0x(data)}, block)

    def eth_calls(
        self, address: str, datas: Sequence[bytes], block: int, timeout: float = BATCH_TIMEOUT
    ) -> list[Any]:
        """Many eth_calls at `block` in one JSON-RPC batch (HTTP only): each one's result as
        the node sent it (hex text), or the RpcError it got (its `data` holds the revert
        data, if any)."""
        params = [("eth_call", [{"to": address, "data": hex0x(data)}, hex(block)]) for data in datas]
        return [
            answer["result"] if "result" in answer else RpcError(answer.get("error") or {})
            for answer in self.batch(params, timeout)
        ]
