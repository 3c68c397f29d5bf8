"""The ledger contract as the service sees it: a web3 connection to the configured chain
(or the embedded one), a contract object, and deployment. Its ABI (calls, errors,
events) is in chain/abi.py."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from eth_utils import to_canonical_address, to_checksum_address
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from web3.contract import Contract
from web3.types import RPCEndpoint, RPCResponse

from ledger_api.chain.abi import load_artifact
from ledger_api.chain.keystore import Keystore
from ledger_api.chain.rpc import pooled_session
from ledger_api.core.hexes import hex0x


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
        return self.logs(start, end, frozenset({to_canonical_address(address)}))

    def receipt_bloom(self, block_number: int, index: int) -> bytes:
        """The logs bloom of the receipt of transaction `index` of a canonical block, as
        py-evm keeps it (eth-tester's receipts do not carry it)."""
        assert self.ethereum_tester is not None
        chain = self.ethereum_tester.backend.chain
        with self._lock:
            block = chain.get_canonical_block_by_number(block_number)
            return int(block.get_receipts(chain.chaindb)[index].bloom).to_bytes(256, "big")

    def logs(self, start: int, end: int, addresses: frozenset[bytes] | None) -> list[dict[str, Any]]:
        """The logs of blocks start..end (canonical blocks only) emitted by `addresses`
        (20-byte addresses; None: by any), as `ledger_logs` reads them."""
        assert self.ethereum_tester is not None
        chain = self.ethereum_tester.backend.chain
        logs: list[dict[str, Any]] = []
        with self._lock:
            for number in range(start, end + 1):
                block = chain.get_canonical_block_by_number(number)
                receipts = block.get_receipts(chain.chaindb)
                for tx_index, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
                    for log_index, entry in enumerate(receipt.logs):
                        if addresses is not None and entry.address not in addresses:
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
    # One pooled session for every thread, shared with the raw requests of chain/rpc.py.
    provider = HTTPProvider(
        rpc_url,
        request_kwargs={"timeout": timeout},
        session=pooled_session(),
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


class DeploymentFailed(RuntimeError):
    """The deployment transaction was mined but created no contract."""


def deploy_ledger(
    w3: Web3, deployer: str, admin: str | None = None, keystore: Keystore | None = None
) -> Deployment:
    """Deploy the ledger. `admin` receives the admin, registrar and pauser roles (default:
    the deployer).

    Without `keystore` the node signs for `deployer` (dev chains: eth-tester, anvil); with
    one, the transaction is signed by `deployer`'s key from the keystore and sent raw
    (`ledger deploy` on a real node).
    """
    artifact = load_artifact()
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    account = to_checksum_address(deployer)
    constructor = factory.constructor(to_checksum_address(admin or deployer))
    if keystore is None:
        tx_hash = constructor.transact({"from": account})
    else:
        transaction = constructor.build_transaction(
            {
                "from": account,
                "nonce": w3.eth.get_transaction_count(account, "pending"),
                "chainId": w3.eth.chain_id,
            }
        )
        raw, _ = keystore.sign_transaction(account, dict(transaction))
        tx_hash = w3.eth.send_raw_transaction(raw)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise DeploymentFailed(f"ledger deployment failed in transaction {hex0x(tx_hash)}")
    return Deployment(
        chain_id=w3.eth.chain_id,
        address=receipt["contractAddress"],
        block_number=receipt["blockNumber"],
        tx_hash=hex0x(tx_hash),
    )


def register_self_custody_charity(
    w3: Web3,
    deployment: Deployment,
    registrar: str,
    charity_id: bytes,
    name: str,
    operator: str,
    metadata_hash: bytes = bytes(32),
    keystore: Keystore | None = None,
) -> str:
    """Register a charity that holds its own operator key (`operator`, its address) and
    return the transaction hash. Sent by `registrar` (REGISTRAR_ROLE): signed by the node
    (dev chains) or, with `keystore`, by the registrar's key from it. From then on only the
    charity's operators change its operators (through signed calls the service relays)."""
    contract = ledger_contract(w3, deployment.address)
    sender = to_checksum_address(registrar)
    call = contract.functions.registerSelfCustodyCharity(
        charity_id, name, metadata_hash, to_checksum_address(operator)
    )
    if keystore is None:
        tx_hash = call.transact({"from": sender})
    else:
        transaction = call.build_transaction(
            {
                "from": sender,
                "nonce": w3.eth.get_transaction_count(sender, "pending"),
                "chainId": w3.eth.chain_id,
            }
        )
        raw, _ = keystore.sign_transaction(sender, dict(transaction))
        tx_hash = w3.eth.send_raw_transaction(raw)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1:
        raise RuntimeError(f"registerSelfCustodyCharity reverted in transaction {hex0x(tx_hash)}")
    return hex0x(tx_hash)
