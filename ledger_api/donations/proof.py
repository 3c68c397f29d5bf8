"""The proof bundle of a donation (GET /v1/donations/{id}/proof): the donor's trace and
everything needed to check each of its steps offline against one trusted block hash per
block, with no node and without this service:

- for each block a step is in, its RLP header (keccak-256 of it is the block hash; anvil's
  and eth-tester's Cancun/Prague headers: base fee, withdrawals root, blob gas, parent
  beacon root, requests hash);
- for each transaction a step is in, its receipt as consensus encodes it (EIP-2718 typed
  receipts with their type byte) and its Merkle proof in the block's receipts trie (built
  with `trie`'s HexaryTrie from every receipt of the block), and where each claimed log
  sits in it;
- the ABI fragments of the events and views a verifier needs, the contract and chain id.

The trace is read from the mirror (the claims); the proofs from the node. A donation
touches few blocks; a bundle covers at most MAX_BLOCKS blocks and MAX_RECEIPTS receipts in
them, beyond which it is refused (422) rather than built.
"""

from __future__ import annotations

from typing import Annotated, Any

import rlp
from eth_bloom import BloomFilter
from eth_utils import keccak
from fastapi import Depends, Request
from ledger_verify import protocol as verifier_protocol
from pydantic import Field
from sqlalchemy import select
from trie import HexaryTrie
from web3 import Web3
from web3.exceptions import MethodUnavailable

from ledger_api.chain.abi import load_artifact
from ledger_api.core import ids
from ledger_api.core.answers import Answer, Proof
from ledger_api.core.errors import ChainUnavailable, Problem
from ledger_api.core.hexes import hex0x, unhex
from ledger_api.donations.schemas import DonationTrace
from ledger_api.donations.trace import trace
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror
from ledger_api.mirror.proofs import block_info, chain_view, proof

FORMAT = "ledger-proof-bundle/1"
MAX_BLOCKS = 64
MAX_RECEIPTS = 5_000  # receipts of all the bundle's blocks (each block's trie needs them all)
# The bundle carries the ABI fragments of exactly what ledger-verify decodes and calls (its
# protocol.json): it holds them equal to its own copy.
EVENTS = set(verifier_protocol.EVENTS)
VIEWS = set(verifier_protocol.VIEWS)
# Header fields after the first fifteen, in the order forks added them.
_LATER_FIELDS = (
    "baseFeePerGas",
    "withdrawalsRoot",
    "blobGasUsed",
    "excessBlobGas",
    "parentBeaconBlockRoot",
    "requestsHash",
)


class ProofTooLarge(Problem):
    status, kind, title = 422, "proof-too-large", "The proof bundle would be too large"


class BundleBlock(Answer):
    number: int
    hash: str
    header: str = Field(description="The block header, RLP (0x hex): keccak-256 of it is `hash`.")
    transactions: int = Field(description="How many transactions (and so receipts) the block has.")


class BundleReceipt(Answer):
    block_number: int
    tx_hash: str
    transaction_index: int = Field(description="The receipt's key in the receipts trie is RLP(index).")
    receipt: str = Field(description="The receipt as consensus encodes it (typed: type byte, then RLP).")
    proof: list[str] = Field(description="The trie nodes (RLP, 0x hex) from the receiptsRoot down.")
    log_positions: dict[str, int] = Field(
        description="For each claimed log index (as the node numbers logs), its position in the receipt."
    )


class BundleOrigins(Answer):
    """Where the donation's campaign and charity were created: their names' events."""

    CampaignCreated: Proof
    CharityRegistered: Proof


class ProofBundle(Answer):
    """A donation's trace with the proofs to check it offline against trusted block hashes."""

    format: str = FORMAT
    id: str
    chain_id: int
    contract: str
    deployment_block: int
    service: str = Field(description="This service's address (evidence documents are under it).")
    abi: list[dict[str, Any]] = Field(description="The ABI fragments of the events and views to check.")
    trace: DonationTrace
    origins: BundleOrigins
    blocks: list[BundleBlock]
    receipts: list[BundleReceipt]


def chain_node(request: Request) -> Web3:
    """The node the service records on (the embedded chain, or LEDGER_RPC_URL)."""
    w3: Web3 = request.app.state.auditing.w3
    return w3


NodeDep = Annotated[Web3, Depends(chain_node)]


def fragments() -> list[dict[str, Any]]:
    return [
        item
        for item in load_artifact()["abi"]
        if (item["type"] == "event" and item["name"] in EVENTS)
        or (item["type"] == "function" and item["name"] in VIEWS)
    ]


def steps(claims: DonationTrace) -> list[Proof]:
    """Every chain reference in a trace."""
    found = [claims.proof]
    for allocation in claims.allocations:
        found += [allocation.proof, allocation.disbursement.proof]
        found += [e.proof for e in allocation.disbursement.evidence]
    found += [r.proof for r in claims.refunds]
    return found


def _bytes(value: Any) -> bytes:
    return unhex(value) if isinstance(value, str) else bytes(value)


def _logs(receipt: Any) -> list[list[Any]]:
    return [
        [_bytes(log["address"]), [_bytes(t) for t in log["topics"]], _bytes(log["data"])]
        for log in receipt["logs"]
    ]


def _bloom(logs: list[list[Any]]) -> BloomFilter:
    bloom = BloomFilter()
    for address, topics, _ in logs:
        bloom.add(address)
        for topic in topics:
            bloom.add(topic)
    return bloom


def encode_receipt(receipt: Any) -> bytes:
    """A receipt as the receipts trie holds it (EIP-2718: a typed one is its type byte and
    then the RLP of [status, cumulative gas, bloom, logs])."""
    logs = _logs(receipt)
    body = rlp.encode(
        [
            int(receipt["status"]),
            int(receipt["cumulativeGasUsed"]),
            int(_bloom(logs)).to_bytes(256, "big"),
            logs,
        ]
    )
    kind = int(receipt.get("type", 0) or 0)
    return bytes([kind]) + body if kind else body


def encode_header(block: Any, bloom: bytes, extra_data: bytes | None = None) -> bytes:
    """The block header's RLP from a node's block answer (its bloom given: eth-tester's
    answer does not carry it whole; nor its empty extra data, shown as 32 zero bytes)."""
    fields: list[Any] = [
        _bytes(block["parentHash"]),
        _bytes(block["sha3Uncles"]),
        unhex(block["miner"]),
        _bytes(block["stateRoot"]),
        _bytes(block["transactionsRoot"]),
        _bytes(block["receiptsRoot"]),
        bloom,
        int(block["difficulty"]),
        int(block["number"]),
        int(block["gasLimit"]),
        int(block["gasUsed"]),
        int(block["timestamp"]),
        _bytes(block["extraData"]) if extra_data is None else extra_data,
        _bytes(block["mixHash"]),
        _bytes(block["nonce"]).rjust(8, b"\0"),
    ]
    for name in _LATER_FIELDS:
        if block.get(name) is None:
            break
        value = block[name]
        fields.append(int(value) if isinstance(value, int) else _bytes(value))
    return rlp.encode(fields)


def _receipts(w3: Web3, block: Any) -> list[Any]:
    try:
        receipts = list(w3.eth.get_block_receipts(block["number"]))
    except (MethodUnavailable, ValueError, NotImplementedError):
        receipts = [w3.eth.get_transaction_receipt(tx) for tx in block["transactions"]]
    return sorted(receipts, key=lambda r: int(r["transactionIndex"]))


def origins(mirror: Mirror, claims: DonationTrace) -> BundleOrigins:
    C, CH = im.Campaign, im.Charity
    with mirror.engine.connect() as connection:
        campaign = connection.execute(
            select(C.block_number, C.tx_hash, C.log_index).where(
                C.deployment_id == mirror.deployment_id, C.campaign_id == ids.to_hex(claims.campaign.id)
            )
        ).one()
        charity = connection.execute(
            select(CH.block_number, CH.tx_hash, CH.log_index).where(
                CH.deployment_id == mirror.deployment_id, CH.charity_id == ids.to_hex(claims.charity.id)
            )
        ).one()
        view = chain_view(mirror, connection)
        blocks = block_info(mirror, connection, {campaign.block_number, charity.block_number})
    return BundleOrigins(
        CampaignCreated=proof(view, blocks, campaign), CharityRegistered=proof(view, blocks, charity)
    )


def bundle(mirror: Mirror, w3: Web3, donation_id: str, service_url: str) -> ProofBundle:
    claims = trace(mirror, donation_id)
    created = origins(mirror, claims)
    wanted: dict[int, dict[str, set[int]]] = {}
    for step in [*steps(claims), created.CampaignCreated, created.CharityRegistered]:
        wanted.setdefault(step.block_number, {}).setdefault(step.tx_hash.lower(), set()).add(step.log_index)
    if len(wanted) > MAX_BLOCKS:
        raise ProofTooLarge(
            f"the donation's records are in {len(wanted)} blocks; a bundle covers {MAX_BLOCKS}"
        )
    blocks: list[BundleBlock] = []
    receipts: list[BundleReceipt] = []
    seen = 0
    for number in sorted(wanted):
        block = w3.eth.get_block(number)
        seen += len(block["transactions"])
        if seen > MAX_RECEIPTS:
            raise ProofTooLarge(f"the donation's blocks hold over {MAX_RECEIPTS} transactions")
        all_receipts = _receipts(w3, block)
        encoded = [encode_receipt(r) for r in all_receipts]
        bloom = BloomFilter()
        for r in all_receipts:
            for address, topics, _ in _logs(r):
                bloom.add(address)
                for topic in topics:
                    bloom.add(topic)
        header = encode_header(block, int(bloom).to_bytes(256, "big"))
        if keccak(header) != _bytes(block["hash"]) and not any(_bytes(block["extraData"])):
            header = encode_header(block, int(bloom).to_bytes(256, "big"), b"")
        if keccak(header) != _bytes(block["hash"]):
            raise ChainUnavailable(f"block {number}'s header could not be rebuilt from the node's answer")
        receipts_trie = HexaryTrie({})
        for index, value in enumerate(encoded):
            receipts_trie[rlp.encode(index)] = value
        if receipts_trie.root_hash != _bytes(block["receiptsRoot"]):
            raise ChainUnavailable(f"block {number}'s receipts do not rebuild its receiptsRoot")
        blocks.append(
            BundleBlock(
                number=number,
                hash=hex0x(_bytes(block["hash"])),
                header=hex0x(header),
                transactions=len(encoded),
            )
        )
        by_hash = {hex0x(_bytes(r["transactionHash"])).lower(): r for r in all_receipts}
        for tx_hash, indexes in sorted(wanted[number].items()):
            receipt = by_hash.get(tx_hash)
            if receipt is None:
                raise ChainUnavailable(f"transaction {tx_hash} is not in block {number} on the node")
            index = int(receipt["transactionIndex"])
            positions = {int(log["logIndex"]): n for n, log in enumerate(receipt["logs"])}
            receipts.append(
                BundleReceipt(
                    block_number=number,
                    tx_hash=tx_hash,
                    transaction_index=index,
                    receipt=hex0x(encoded[index]),
                    proof=[hex0x(rlp.encode(node)) for node in receipts_trie.get_proof(rlp.encode(index))],
                    log_positions={str(i): positions[i] for i in sorted(indexes) if i in positions},
                )
            )
    return ProofBundle(
        id=claims.id,
        chain_id=mirror.deployment.chain_id,
        contract=mirror.deployment.address,
        deployment_block=mirror.deployment.block_number,
        service=service_url.rstrip("/"),
        abi=fragments(),
        trace=claims,
        origins=created,
        blocks=blocks,
        receipts=receipts,
    )
