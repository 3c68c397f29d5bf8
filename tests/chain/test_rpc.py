"""The raw JSON-RPC client reads what web3 reads, on the embedded chain and on a real
node: logs, receipts, view calls one at a time and in batches, and the node's errors."""

from __future__ import annotations

import socket

import pytest
import requests
from web3 import Web3

from indexer.decoder import LogDecoder
from ledger_api.chain.abi import contract_error_of, decode_contract_error, encode
from ledger_api.chain.contract import deploy_ledger, ledger_contract, make_web3
from ledger_api.chain.rpc import Rpc, RpcError
from ledger_api.core.hexes import hex0x, unhex
from tests.ledger import Ledger, rid
from tests.support.anvil import AnvilNode


def _activity(ledger: Ledger) -> bytes:
    """A few events of several kinds; the last transaction's hash."""
    ledger.donate("rpc-1", 500)
    ledger.donate("rpc-2", 700)
    receipt = ledger.disburse("rpc-d", [(rid("rpc-1"), 200), (rid("rpc-2"), 300)])
    return bytes(receipt["transactionHash"])


def test_logs_decode_the_same_read_raw_or_through_web3(ledger: Ledger) -> None:
    _activity(ledger)
    rpc, decoder = Rpc(ledger.w3), LogDecoder()
    start, end = ledger.deployment.block_number, ledger.w3.eth.block_number
    raw = rpc.get_logs(ledger.deployment.address, start, end, decoder.topics)
    through_web3 = ledger.w3.eth.get_logs(
        {"address": ledger.deployment.address, "fromBlock": start, "toBlock": end}
    )
    assert len(raw) == len(through_web3) > 6
    assert [decoder.decode(entry) for entry in raw] == [decoder.decode(dict(e)) for e in through_web3]


def test_receipts_match_web3s_and_are_none_until_mined(ledger: Ledger) -> None:
    tx_hash = _activity(ledger)
    expected = ledger.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    assert Rpc(ledger.w3).receipt(hex0x(tx_hash)) == {
        "status": 1,
        "blockNumber": expected["blockNumber"],
        "blockHash": hex0x(expected["blockHash"]),
        "gasUsed": expected["gasUsed"],
    }
    assert Rpc(ledger.w3).receipt("0x" + "ab" * 32) is None


def test_view_calls_answer_as_web3_and_reverts_carry_the_custom_error(ledger: Ledger) -> None:
    _activity(ledger)
    rpc, block = Rpc(ledger.w3), ledger.w3.eth.block_number
    address = ledger.deployment.address
    call = encode("donationOf", rid("rpc-1"))
    expected = ledger.w3.eth.call({"to": address, "data": call.data}, block)  # type: ignore[typeddict-item]
    assert unhex(rpc.eth_call(address, call.data, block)) == bytes(expected)
    with pytest.raises(Exception) as info:
        rpc.eth_call(address, encode("donationOf", rid("nobody")).data, block)
    error = contract_error_of(info.value)
    assert error is not None and error.name == "DonationNotFound"


@pytest.mark.anvil
def test_a_batch_of_view_calls_answers_each_in_order(anvil: AnvilNode) -> None:
    w3 = make_web3(anvil.url)
    deployment = deploy_ledger(w3, w3.eth.accounts[0])
    ledger = Ledger.setup(w3, ledger_contract(w3, deployment.address), deployment)
    _activity(ledger)
    rpc, block, address = Rpc(ledger.w3), ledger.w3.eth.block_number, ledger.deployment.address
    ids = [rid("rpc-1"), rid("nobody"), rid("rpc-2")]
    answers = rpc.eth_calls(address, [encode("donationOf", i).data for i in ids], block)
    assert answers[0] == rpc.eth_call(address, encode("donationOf", ids[0]).data, block)
    assert answers[2] == rpc.eth_call(address, encode("donationOf", ids[2]).data, block)
    assert isinstance(answers[1], RpcError)
    error = decode_contract_error(answers[1].data)
    assert error is not None and (error.name, error.args) == ("DonationNotFound", (ids[1],))


@pytest.mark.anvil
def test_a_refused_request_is_an_rpc_error_and_the_providers_timeout_is_used(anvil: AnvilNode) -> None:
    w3 = make_web3(anvil.url, timeout=1.5)
    rpc = Rpc(w3)
    assert rpc.timeout == 1.5
    with pytest.raises(RpcError):
        rpc.request("eth_getBlockByNumber", ["not-a-block", False])
    assert rpc.request("eth_chainId", []) == hex(w3.eth.chain_id)


def test_a_node_that_is_not_there_is_an_oserror_not_an_rpc_error() -> None:
    """Callers tell "the node is not there" (requests' ConnectionError, an OSError: the
    writer's NODE_ERRORS) from "the node refused" (RpcError), whatever the transport."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rpc = Rpc(make_web3(f"http://127.0.0.1:{port}", timeout=2))
    with pytest.raises(requests.exceptions.ConnectionError) as refused:
        rpc.request("eth_chainId", [])
    assert isinstance(refused.value, OSError) and not isinstance(refused.value, RpcError)


def test_the_embedded_chain_needs_no_http() -> None:
    assert not Rpc(Web3(make_web3(None).provider)).http
