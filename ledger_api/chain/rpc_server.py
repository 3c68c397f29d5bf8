"""The embedded chain over JSON-RPC, read-only: what `POST /rpc` answers when the service
runs the in-process eth-tester chain, so that anyone (cast, web3.py, `ledger verify`) can
check the ledger against the chain itself, as they would against any node.

One request (a call, or a batch of at most MAX_BATCH calls) is answered as JSON-RPC 2.0
does: every failure is an error object in the answer, never an HTTP error.

1. The body (at most JSON_BODY bytes, refused by core/limits.py before it is read) is
   parsed with orjson and refused past MAX_JSON_DEPTH levels (-32700, -32600).
2. Each call names one of READ_METHODS, or it is refused with -32601 ("method not
   available (read-only)"): nothing here sends, signs, mines or changes the chain.
3. Parameters are checked before the chain sees them: arity, and for eth_getLogs the
   filter's fields, at most MAX_LOG_BLOCKS blocks in all the request's ranges together and
   at most MAX_LOGS logs in an answer (-32602, -32005). eth_call and eth_estimateGas run
   with at most CALL_GAS gas: anyone may run code in a call, and py-evm runs ~1 M gas a
   second while it holds the chain.
4. The call runs through the provider (one request at a time: SerializedTesterProvider)
   with eth-tester's own request and result formatting, never web3's full middleware (its
   ENS resolution would act on strangers' parameters); the answer is put back in JSON-RPC
   form: quantities as 0x-hex numbers, byte strings as 0x-hex data.

eth_getLogs is answered from each block's receipts (`SerializedTesterProvider.logs`):
eth-tester's own walks back from the head for every transaction (5.6 s for 50 blocks at
head 107); this holds the chain for LOG_SLICE blocks at a time, so writes go on meanwhile.
Like eth-tester's, log indexes count within their transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from eth_tester.exceptions import TransactionFailed
from eth_tester.exceptions import ValidationError as TesterValidationError
from eth_utils import ValidationError as UtilsValidationError
from web3 import Web3
from web3._utils.method_formatters import PYTHONIC_RESULT_FORMATTERS
from web3.middleware import combine_middleware
from web3.types import RPCEndpoint

from ledger_api.chain.abi import revert_data
from ledger_api.chain.contract import SerializedTesterProvider
from ledger_api.core.hexes import hex0x
from ledger_api.core.limits import MAX_JSON_DEPTH, json_depth

log = logging.getLogger("ledger_api.rpc")

# Method -> how many parameters it takes at most.
READ_METHODS: dict[str, int] = {
    "web3_clientVersion": 0,
    "net_version": 0,
    "eth_chainId": 0,
    "eth_blockNumber": 0,
    "eth_getBlockByNumber": 2,
    "eth_getBlockByHash": 2,
    "eth_getLogs": 1,
    "eth_getTransactionByHash": 1,
    "eth_getTransactionReceipt": 1,
    "eth_call": 2,
    "eth_getCode": 2,
    "eth_getBalance": 2,
    "eth_getTransactionCount": 2,
    "eth_estimateGas": 2,
}
# The last parameter, when a call leaves it out (as nodes default it).
DEFAULT_LAST: dict[str, Any] = {
    "eth_getBlockByNumber": False,
    "eth_getBlockByHash": False,
    "eth_call": "latest",
    "eth_getCode": "latest",
    "eth_getBalance": "latest",
    "eth_getTransactionCount": "latest",
    "eth_estimateGas": "latest",
}
MAX_BATCH = 100
# Blocks the eth_getLogs calls of one request may span in all (~2.6 ms a block here).
MAX_LOG_BLOCKS = 10_000
MAX_LOGS = 10_000
LOG_SLICE = 100
CALL_GAS = 10_000_000
MAX_ADDRESSES = 100
MAX_TOPIC_OPTIONS = 100

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
LIMIT_EXCEEDED = -32005
EXECUTION_REVERTED = 3


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def error(code: int, message: str, id_: Any = None, data: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": body}


def wire(value: Any) -> Any:
    """A web3 result (ints, HexBytes, AttributeDicts) in JSON-RPC form."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray):
        return hex0x(bytes(value))
    if isinstance(value, dict) or hasattr(value, "items"):
        return {key: wire(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [wire(item) for item in value]
    raise TypeError(f"no JSON-RPC form for {type(value).__name__}")


def _quantity(value: Any, what: str) -> int:
    if isinstance(value, str) and value.startswith(("0x", "0X")) and 2 < len(value) <= 66:
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise RpcError(INVALID_PARAMS, f"{what} must be a hex quantity such as 0x1f")


def _data(value: Any, what: str, size: int | None = None) -> bytes:
    if isinstance(value, str) and value.startswith(("0x", "0X")) and len(value) % 2 == 0:
        try:
            raw = bytes.fromhex(value[2:])
        except ValueError:
            raw = None
        if raw is not None and (size is None or len(raw) == size):
            return raw
    expected = f"{size} bytes of 0x-hex" if size else "0x-hex bytes"
    raise RpcError(INVALID_PARAMS, f"{what} must be {expected}")


class ReadOnlyRpc:
    """JSON-RPC over the in-process chain, read methods only (see the module)."""

    def __init__(self, w3: Web3) -> None:
        provider = w3.provider
        if not isinstance(provider, SerializedTesterProvider):
            raise TypeError("only the embedded chain is served over JSON-RPC")
        self.provider = provider
        # eth-tester's own formatting (and its default `from` for calls), nothing else.
        self._request: Callable[..., Any] = combine_middleware(
            middleware=provider._middleware, w3=w3, provider_request_fn=provider.make_request
        )

    def answer(self, body: bytes) -> bytes:
        """The JSON-RPC answer to a request body; never raises."""
        return orjson.dumps(self._answer(body))

    def _answer(self, body: bytes) -> Any:
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return error(PARSE_ERROR, "parse error: the body is not JSON")
        if json_depth(request, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            return error(INVALID_REQUEST, f"the request is nested deeper than {MAX_JSON_DEPTH} levels")
        budget = [MAX_LOG_BLOCKS]
        if isinstance(request, list):
            if not request:
                return error(INVALID_REQUEST, "empty batch")
            if len(request) > MAX_BATCH:
                return error(INVALID_REQUEST, f"a batch has at most {MAX_BATCH} calls, not {len(request)}")
            return [self._call(call, budget) for call in request]
        return self._call(request, budget)

    def _call(self, call: Any, budget: list[int]) -> dict[str, Any]:
        if not isinstance(call, dict):
            return error(INVALID_REQUEST, "a call is a JSON object")
        id_ = call.get("id")
        if not (id_ is None or isinstance(id_, int | str)) or isinstance(id_, bool):
            return error(INVALID_REQUEST, "id must be a number, a string or null")
        if isinstance(id_, str) and len(id_) > 100:
            return error(INVALID_REQUEST, "id is longer than 100 characters")
        method, params = call.get("method"), call.get("params", [])
        if call.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return error(INVALID_REQUEST, 'a call has "jsonrpc": "2.0" and a method name', id_)
        if method not in READ_METHODS:
            return error(METHOD_NOT_FOUND, "method not available (read-only)", id_)
        if not isinstance(params, list) or len(params) > READ_METHODS[method]:
            return error(
                INVALID_PARAMS, f"{method} takes a list of at most {READ_METHODS[method]} parameters", id_
            )
        try:
            result = self._run(method, params, budget)
        except RpcError as exc:
            return error(exc.code, exc.message, id_, exc.data)
        except TransactionFailed as exc:
            data = revert_data(exc)
            return error(EXECUTION_REVERTED, "execution reverted", id_, hex0x(data) if data else None)
        except (
            TesterValidationError,
            UtilsValidationError,
            ValueError,
            TypeError,
            KeyError,
            IndexError,
        ) as exc:
            return error(INVALID_PARAMS, f"invalid parameters: {str(exc)[:200]}", id_)
        except Exception:
            log.exception("JSON-RPC %s failed", method)
            return error(INTERNAL_ERROR, "internal error", id_)
        return {"jsonrpc": "2.0", "id": id_, "result": result}

    def _run(self, method: str, params: list[Any], budget: list[int]) -> Any:
        if method == "eth_getLogs":
            return self._logs(params[0] if params else {}, budget)
        if method in ("eth_call", "eth_estimateGas"):
            params = [self._bounded_call(params[0] if params else None), *params[1:]]
        # eth-tester's formatting wants every parameter; nodes default the last one.
        if len(params) == READ_METHODS[method] - 1 and method in DEFAULT_LAST:
            params = [*params, DEFAULT_LAST[method]]
        response = self._request(RPCEndpoint(method), params)
        if "error" in response:
            raise RpcError(INVALID_PARAMS, str(response["error"].get("message", "failed"))[:200])
        result = response.get("result")
        formatter = PYTHONIC_RESULT_FORMATTERS.get(RPCEndpoint(method))
        answer = wire(formatter(result) if formatter is not None and result is not None else result)
        if method == "eth_getTransactionReceipt" and answer is not None and "logsBloom" not in answer:
            # eth-tester's receipts lack it, and cast needs it
            answer["logsBloom"] = hex0x(
                self.provider.receipt_bloom(
                    int(answer["blockNumber"], 16), int(answer["transactionIndex"], 16)
                )
            )
        return answer

    @staticmethod
    def _bounded_call(transaction: Any) -> dict[str, Any]:
        if not isinstance(transaction, dict):
            raise RpcError(INVALID_PARAMS, "the first parameter is a call object")
        if "input" in transaction:  # the newer name of `data` (cast sends it), unknown to eth-tester
            transaction = dict(transaction)
            data = transaction.pop("input")
            if transaction.setdefault("data", data) != data:
                raise RpcError(INVALID_PARAMS, "input and data differ")
        gas = transaction.get("gas")
        if gas is not None and _quantity(gas, "gas") > CALL_GAS:
            raise RpcError(INVALID_PARAMS, f"gas is at most {CALL_GAS:,} here")
        bounded = {**transaction, "gas": gas or hex(CALL_GAS)}
        # eth-tester, unlike nodes, charges a call's gas to its sender's balance, so a call
        # from an account without ether fails ("cannot afford"). Nodes call from the zero
        # address when no sender is named, and cast names it: such a call runs from the
        # chain's first funded account instead (no ledger view reads msg.sender).
        if int(str(bounded.get("from") or "0x0"), 16) == 0:
            bounded.pop("from", None)
        return bounded

    def _block(self, tag: Any, head: int, what: str) -> int:
        if tag in (None, "latest", "safe", "finalized", "pending"):
            return head
        if tag == "earliest":
            return 0
        return _quantity(tag, what)

    def _logs(self, query: Any, budget: list[int]) -> list[dict[str, Any]]:
        if not isinstance(query, dict):
            raise RpcError(INVALID_PARAMS, "eth_getLogs takes a filter object")
        unknown = set(query) - {"fromBlock", "toBlock", "address", "topics", "blockHash"}
        if unknown:
            raise RpcError(INVALID_PARAMS, f"unknown filter fields: {', '.join(sorted(unknown))[:200]}")
        head = int(self._request(RPCEndpoint("eth_blockNumber"), [])["result"])
        if query.get("blockHash") is not None:
            if "fromBlock" in query or "toBlock" in query:
                raise RpcError(INVALID_PARAMS, "blockHash excludes fromBlock and toBlock")
            block = self._request(
                RPCEndpoint("eth_getBlockByHash"), [hex0x(_data(query["blockHash"], "blockHash", 32)), False]
            ).get("result")
            if block is None:
                raise RpcError(INVALID_PARAMS, "unknown block")
            start = end = int(block["number"])
        else:
            start = self._block(query.get("fromBlock"), head, "fromBlock")
            end = self._block(query.get("toBlock"), head, "toBlock")
        span = max(0, end - start + 1)  # as asked: a range past the head is refused as well
        if span > budget[0]:
            raise RpcError(
                LIMIT_EXCEEDED,
                f"eth_getLogs spans at most {MAX_LOG_BLOCKS:,} blocks per request "
                f"(this one {span:,}); query smaller ranges",
            )
        budget[0] -= span
        end = min(end, head)
        if start > end:
            return []
        addresses = self._addresses(query.get("address"))
        topics = self._topics(query.get("topics"))
        found: list[dict[str, Any]] = []
        for first in range(start, end + 1, LOG_SLICE):
            for entry in self.provider.logs(first, min(first + LOG_SLICE - 1, end), addresses):
                if _matches(entry["topics"], topics):
                    found.append(entry)
                    if len(found) > MAX_LOGS:
                        raise RpcError(
                            LIMIT_EXCEEDED, f"more than {MAX_LOGS:,} logs match: query smaller ranges"
                        )
        return [{**wire(entry), "removed": False} for entry in found]

    @staticmethod
    def _addresses(value: Any) -> frozenset[bytes] | None:
        if value is None:
            return None
        values = value if isinstance(value, list) else [value]
        if len(values) > MAX_ADDRESSES:
            raise RpcError(INVALID_PARAMS, f"at most {MAX_ADDRESSES} addresses")
        return frozenset(_data(item, "address", 20) for item in values)

    @staticmethod
    def _topics(value: Any) -> list[frozenset[bytes] | None]:
        if value is None:
            return []
        if not isinstance(value, list) or len(value) > 4:
            raise RpcError(INVALID_PARAMS, "topics is a list of at most 4 positions")
        topics: list[frozenset[bytes] | None] = []
        for position in value:
            if position is None:
                topics.append(None)
                continue
            options = position if isinstance(position, list) else [position]
            if len(options) > MAX_TOPIC_OPTIONS:
                raise RpcError(INVALID_PARAMS, f"at most {MAX_TOPIC_OPTIONS} topics per position")
            topics.append(frozenset(_data(option, "topic", 32) for option in options if option is not None))
        return topics


def _matches(topics: list[bytes], wanted: list[frozenset[bytes] | None]) -> bool:
    """As nodes match a filter's topics: position by position, None or [] matching any
    topic, and never a log with fewer topics than the filter names positions."""
    if len(wanted) > len(topics):
        return False
    return all(not options or topic in options for topic, options in zip(topics, wanted, strict=False))
