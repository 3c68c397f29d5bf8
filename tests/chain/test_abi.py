"""The ABI tables built from the artifact agree with web3's reading of the same ABI."""

from __future__ import annotations

from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

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


def test_the_signed_call_errors_decode_by_name_and_execute_encodes_as_web3_does() -> None:
    operator, nonce = to_checksum_address("0x" + "ab" * 20), b"\x07" * 32
    for signature, types, args in (
        ("SignatureExpired(uint256,uint256)", ["uint256", "uint256"], [5, 9]),
        ("NonceAlreadyUsed(address,bytes32)", ["address", "bytes32"], [operator, nonce]),
        ("InvalidSignature(address)", ["address"], [operator]),
        ("SignedCallNotAllowed(bytes4)", ["bytes4"], [b"\x12\x34\x56\x78"]),
        ("SelfCustodyCharity(bytes32)", ["bytes32"], [nonce]),
        ("LastOperator(bytes32)", ["bytes32"], [nonce]),
        ("ZeroOperator()", [], []),
    ):
        error = abi.decode_contract_error(
            function_signature_to_4byte_selector(signature) + abi_encode(types, args)
        )
        assert error is not None and error.name == signature.split("(")[0]
        assert len(error.args) == len(args)
    contract = ledger_contract(make_web3(None), "0x" + "11" * 20)
    call = (operator, b"\x01\x02", nonce, 2**40)
    assert abi.encode("execute", call, b"\x99" * 65).data == unhex(
        contract.functions.execute(call, b"\x99" * 65)._encode_transaction_data()
    )
