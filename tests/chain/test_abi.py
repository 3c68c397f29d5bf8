"""The ABI tables built from the artifact agree with web3's reading of the same ABI."""

from __future__ import annotations

from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector

from ledger_api.chain import abi
from ledger_api.chain.contract import ledger_contract, make_web3
from ledger_api.core.hexes import unhex


def test_every_event_topic_is_web3s() -> None:
    contract = ledger_contract(make_web3(None), "0x" + "11" * 20)
    assert {e.name: e.topic for e in abi.events()} == {
        e.name: unhex(contract.events[e.name]().topic) for e in abi.events()
    }
    assert {"DonationRecorded", "DisbursementRecorded", "RoleGranted", "Paused"} <= set(abi.EVENT_NAMES)
    assert list(abi.EVENT_NAMES) == sorted(abi.EVENT_NAMES)


def test_custom_errors_decode_with_their_arguments() -> None:
    donation = b"DN".ljust(32, b"\0")
    data = function_signature_to_4byte_selector("DonationOverdrawn(bytes32,uint256,uint256)") + abi_encode(
        ["bytes32", "uint256", "uint256"], [donation, 5, 9]
    )
    error = abi.decode_contract_error("0x" + data.hex())
    assert error is not None
    assert error.as_dict() == {"donationId": donation, "available": 5, "requested": 9}
    assert abi.decode_contract_error(b"\x00\x00\x00\x00") is None
