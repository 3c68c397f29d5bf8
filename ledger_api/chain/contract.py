"""The ledger contract as the service sees it: its committed artifact, a web3 connection
to the configured chain, deployment, and decoding of the contract's custom errors."""

from __future__ import annotations

import ast
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import requests
import requests.adapters
from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, to_canonical_address, to_checksum_address
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from web3.contract import Contract
from web3.types import RPCEndpoint, RPCResponse

ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "contracts" / "artifacts"
LEDGER = "CharityLedger"


@lru_cache
def load_artifact(name: str = LEDGER) -> dict[str, Any]:
    """The committed build artifact (ABI, bytecode, compiler version and settings)."""
    with (ARTIFACTS_DIR / f"{name}.json").open() as handle:
        artifact: dict[str, Any] = json.load(handle)
    return artifact


class SerializedTesterProvider(EthereumTesterProvider):
    """The in-process chain, one request at a time: eth-tester and py-evm are not
    thread-safe, and the API's worker threads share the chain with the indexer thread.

    Background work (a reconciliation: thousands of view calls of ~35 ms each) gives way
    to everything else: it takes the chain in short slices (`background_slice`), each one
    begun only once no other request waits for the chain, so /healthz and writes wait for
    at most one slice, never for the whole job."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._queue = threading.Condition()
        self._waiting = 0  # requests waiting for the chain or holding it

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        with self._queue:
            self._waiting += 1
        try:
            with self._lock:
                return super().make_request(method, params)
        finally:
            with self._queue:
                self._waiting -= 1
                if not self._waiting:
                    self._queue.notify_all()

    @contextlib.contextmanager
    def background_slice(self, patience: float = 1.0) -> Iterator[None]:
        """Hold the chain for one short piece of background work, begun once no request
        waits for it (or after `patience` seconds, so the work still progresses under a
        constant load). Requests made inside go through at once (the lock is re-entrant)."""
        with self._queue:
            self._queue.wait_for(lambda: not self._waiting, timeout=patience)
        with self._lock:
            yield

    def ledger_logs(self, address: str, start: int, end: int) -> list[dict[str, Any]]:
        """The logs `address` emitted in blocks start..end, as eth-tester's eth_getLogs
        gives them (per-transaction log indexes included), read from each block's receipts.
        eth-tester's own eth_getLogs finds every transaction's receipt by walking back
        from the head, block by block: blocks 1-50 at head 107 took 5.6 s; this reads all
        107 in 0.28 s, so a slice of a few blocks holds the chain for milliseconds."""
        assert self.ethereum_tester is not None
        chain = self.ethereum_tester.backend.chain
        target = to_canonical_address(address)
        logs: list[dict[str, Any]] = []
        with self._lock:
            for number in range(start, end + 1):
                block = chain.get_canonical_block_by_number(number)
                receipts = block.get_receipts(chain.chaindb)
                for tx_index, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
                    for log_index, entry in enumerate(receipt.logs):
                        if entry.address != target:
                            continue
                        logs.append(
                            {
                                "address": to_checksum_address(entry.address),
                                "topics": [topic.to_bytes(32, "big") for topic in entry.topics],
                                "data": bytes(entry.data),
                                "blockNumber": number,
                                "blockHash": bytes(block.hash),
                                "transactionHash": bytes(tx.hash),
                                "transactionIndex": tx_index,
                                "logIndex": log_index,
                            }
                        )
        return logs


def make_web3(rpc_url: str | None, timeout: float = 5.0) -> Web3:
    """A web3 connection: to `rpc_url`, or to a fresh in-process eth-tester chain.

    A call the node does not answer within `timeout` seconds fails, once: web3's own
    retries (five, each with the full timeout) would hold a write for minutes on a hung
    node, where the service must answer 503 at once. The indexer and the outbox retry
    on their own terms; the indexer also halves a range whose query timed out."""
    if not rpc_url:
        return Web3(SerializedTesterProvider())
    # The chain id never changes under a connection: ask once (web3 asks before every
    # transaction it builds and every contract object it makes). Nothing else is cached:
    # block data must stay fresh for the indexer's reorg checks.
    # One pooled session for every thread, large enough for the API's worker threads;
    # trust_env off: requests would otherwise look for .netrc and CA bundle files on
    # disk before every single call.
    session = requests.Session()
    session.trust_env = False
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    provider = HTTPProvider(
        rpc_url,
        request_kwargs={"timeout": timeout},
        session=session,
        exception_retry_configuration=None,
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
    )
    return Web3(provider)


def ledger_contract(w3: Web3, address: str) -> Contract:
    return w3.eth.contract(address=to_checksum_address(address), abi=load_artifact()["abi"])


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    address: str
    block_number: int
    tx_hash: str


def deploy_ledger(w3: Web3, deployer: str, admin: str | None = None) -> Deployment:
    """Deploy the ledger from an account the node holds (dev chains: eth-tester, anvil).

    `admin` receives the admin, registrar and pauser roles (default: the deployer).
    """
    artifact = load_artifact()
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx_hash = factory.constructor(to_checksum_address(admin or deployer)).transact({"from": deployer})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise RuntimeError(f"ledger deployment failed in transaction {tx_hash.to_0x_hex()}")
    return Deployment(
        chain_id=w3.eth.chain_id,
        address=receipt["contractAddress"],
        block_number=receipt["blockNumber"],
        tx_hash=tx_hash.to_0x_hex(),
    )


@dataclass(frozen=True)
class ContractError:
    """A custom error the contract reverted with, decoded from the revert data."""

    name: str
    args: tuple[Any, ...]
    arg_names: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(self.arg_names, self.args, strict=True))


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(component) for component in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


@lru_cache
def _error_decoders() -> dict[bytes, tuple[str, list[str], tuple[str, ...]]]:
    decoders = {}
    # OpenZeppelin's errors appear in the ABI too (AccessControl, Pausable).
    for item in load_artifact()["abi"]:
        if item["type"] != "error":
            continue
        types = [_abi_type(param) for param in item["inputs"]]
        selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
        decoders[selector] = (item["name"], types, tuple(p["name"] for p in item["inputs"]))
    return decoders


def decode_contract_error(data: bytes | str) -> ContractError | None:
    """Decode revert data into the contract's custom error, or None if it is not one."""
    raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else data
    decoder = _error_decoders().get(raw[:4])
    if decoder is None:
        return None
    name, types, names = decoder
    return ContractError(name=name, args=tuple(abi_decode(types, raw[4:])), arg_names=names)


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert data carried by an exception from a call or transaction, if any.

    JSON-RPC nodes give it to web3 as `ContractCustomError.data` (a hex string); the
    in-process eth-tester raises `TransactionFailed` whose message is the repr of the
    bytes (`execution reverted: b'...'`).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        data = getattr(current, "data", None)
        if isinstance(data, str) and data.startswith("0x"):
            return bytes.fromhex(data[2:])
        if isinstance(data, bytes | bytearray):
            return bytes(data)
        if current.args and isinstance(current.args[0], bytes | bytearray):
            return bytes(current.args[0])
        if current.args and isinstance(current.args[0], str):
            message = current.args[0].removeprefix("execution reverted: ")
            if message.startswith(("b'", 'b"')):
                with contextlib.suppress(ValueError, SyntaxError):
                    value = ast.literal_eval(message)
                    if isinstance(value, bytes):
                        return value
        current = current.__cause__ or current.__context__
    return None


def contract_error_of(exc: BaseException) -> ContractError | None:
    """The contract's custom error behind an exception, or None if there is none."""
    data = revert_data(exc)
    return decode_contract_error(data) if data else None
