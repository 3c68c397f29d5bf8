"""Self-custody and signed calls (contract 2.0.0), on the embedded eth-tester chain and on
anvil: a charity holding its own key signs records (EIP-712, chain/signed_calls.py), anyone
relays them through `execute`, the contract attributes them to the charity's operator, and
refuses everything the platform could try without that key, each with its exact error."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from ledger_api.chain import signed_calls as sc
from ledger_api.chain.abi import contract_error_of, encode, encode_donations, selector
from ledger_api.chain.contract import register_self_custody_charity
from tests.ledger import ZERO, Ledger, commitment, rid

CHARITY_KEY = Account.from_key(b"\x11" * 32)  # the charity's own key, on its computer
SECOND_KEY = Account.from_key(b"\x12" * 32)  # a second key the charity adds itself
PLATFORM_KEY = Account.from_key(b"\x22" * 32)  # a key the platform holds (operator of charity A)
OTHER_CHARITY_KEY = Account.from_key(b"\x33" * 32)  # another self-custody charity's key
CHARITY = rid("charity-sc")
OTHER = rid("charity-sc-2")
CAMPAIGN = rid("campaign-sc")


def _deadline(ledger: Ledger, seconds: int = 3600) -> int:
    return int(ledger.w3.eth.get_block("latest")["timestamp"]) + seconds


def _signed(
    ledger: Ledger,
    signer: LocalAccount,
    fn_name: str,
    *args: Any,
    operator: str | None = None,
    deadline: int | None = None,
    nonce: bytes | None = None,
) -> tuple[sc.SignedCall, bytes]:
    """A call of `fn_name(*args)` in `operator`'s name (default: the signer's), signed by
    `signer`."""
    call = sc.build(
        operator or signer.address,
        fn_name,
        *args,
        deadline=deadline if deadline is not None else _deadline(ledger),
        nonce=nonce,
    )
    digest = sc.digest(call, ledger.deployment.chain_id, ledger.deployment.address)
    signature = bytes(Account.unsafe_sign_hash(digest, signer.key).signature)
    return call, signature


def _execute(ledger: Ledger, call: sc.SignedCall, signature: bytes) -> Any:
    return ledger.send(ledger.fn.execute(call.as_tuple(), signature), ledger.stranger)


def _donation(label: str, amount: int = 1_000) -> tuple[bytes, bytes, int, bytes, bytes, bytes]:
    return (rid(label), CAMPAIGN, amount, commitment(label), b"bank".ljust(32, b"\0"), ZERO)


@pytest.fixture
def sc_ledger(ledger: Ledger) -> Ledger:
    """The ledger with a self-custody charity (its first operator CHARITY_KEY) and a
    campaign it created through a signed call; PLATFORM_KEY operates charity A."""
    ledger.send(ledger.fn.addOperator(ledger.charity_a, PLATFORM_KEY.address), ledger.admin)
    register_self_custody_charity(
        ledger.w3, ledger.deployment, ledger.admin, CHARITY, "Self-held", CHARITY_KEY.address
    )
    register_self_custody_charity(
        ledger.w3, ledger.deployment, ledger.admin, OTHER, "Other", OTHER_CHARITY_KEY.address
    )
    _execute(
        ledger, *_signed(ledger, CHARITY_KEY, "createCampaign", CAMPAIGN, CHARITY, "SC", b"CNY", 10**9, ZERO)
    )
    return ledger


def test_version_and_digest_match_the_python_typed_data(ledger: Ledger) -> None:
    assert ledger.fn.version().call() == "2.0.0"
    chain_id, address = ledger.deployment.chain_id, ledger.deployment.address
    for fn_name, args in (
        ("closeCampaign", (rid("c"),)),
        ("recordDonation", (_donation("d"),)),
        ("addOperator", (rid("c"), SECOND_KEY.address)),
    ):
        call = sc.build(CHARITY_KEY.address, fn_name, *args, deadline=2**255 + 7)
        assert ledger.fn.signedCallDigest(call.as_tuple()).call() == sc.digest(call, chain_id, address)
        signature = sc.sign(call, chain_id, address, CHARITY_KEY)
        assert sc.recover(call, chain_id, address, signature) == CHARITY_KEY.address
    # A batch encoded by hand hashes the same as through eth_abi.
    batch = encode_donations([_donation(f"b{i}") for i in range(3)]).data
    call = sc.SignedCall(CHARITY_KEY.address, batch, sc.new_nonce(), 1)
    assert ledger.fn.signedCallDigest(call.as_tuple()).call() == sc.digest(call, chain_id, address)
    with pytest.raises(ValueError, match="not the call's operator"):
        sc.sign(call, chain_id, address, PLATFORM_KEY)
    with pytest.raises(ValueError, match="cannot be called"):
        sc.build(CHARITY_KEY.address, "registerCharity", rid("x"), "X", ZERO, deadline=1)


def test_registration_is_public_and_says_who_holds_the_key(ledger: Ledger) -> None:
    tx = register_self_custody_charity(
        ledger.w3, ledger.deployment, ledger.admin, CHARITY, "Self-held", CHARITY_KEY.address, rid("m")
    )
    receipt = ledger.w3.eth.get_transaction_receipt(tx)
    assert ledger.events(receipt, "CharityRegistered") == [
        {
            "charityId": CHARITY,
            "name": "Self-held",
            "metadataHash": rid("m"),
            "registrar": ledger.admin,
            "selfCustody": True,
        }
    ]
    assert ledger.events(receipt, "OperatorAdded") == [
        {"charityId": CHARITY, "account": CHARITY_KEY.address, "addedBy": ledger.admin, "heldByCharity": True}
    ]
    assert ledger.fn.isSelfCustody(CHARITY).call()
    assert not ledger.fn.isSelfCustody(ledger.charity_a).call()
    assert ledger.fn.isOperator(CHARITY, CHARITY_KEY.address).call()
    fn = ledger.fn
    ledger.expect_error(
        fn.registerSelfCustodyCharity(rid("z"), "Z", ZERO, "0x" + "00" * 20), ledger.admin, "ZeroOperator"
    )
    ledger.expect_error(
        fn.registerSelfCustodyCharity(CHARITY, "Again", ZERO, CHARITY_KEY.address),
        ledger.admin,
        "CharityAlreadyRegistered",
        CHARITY,
    )
    ledger.expect_error(
        fn.registerSelfCustodyCharity(rid("y"), "Y", ZERO, ledger.stranger),
        ledger.stranger,
        "AccessControlUnauthorizedAccount",
        ledger.stranger,
        keccak(text="REGISTRAR_ROLE"),
    )


def test_a_record_signed_by_the_charity_is_attributed_to_its_operator(sc_ledger: Ledger) -> None:
    ledger = sc_ledger
    call, signature = _signed(ledger, CHARITY_KEY, "recordDonation", _donation("d1", 5_000))
    receipt = _execute(ledger, call, signature)
    [donation] = ledger.events(receipt, "DonationRecorded")
    assert donation["operator"] == CHARITY_KEY.address
    assert donation["amount"] == 5_000
    assert ledger.events(receipt, "SignedCallExecuted") == [
        {"operator": CHARITY_KEY.address, "nonce": call.nonce, "relayer": ledger.stranger}
    ]
    assert ledger.fn.isNonceUsed(CHARITY_KEY.address, call.nonce).call()
    assert ledger.donation_view(rid("d1"))[:2] == (CAMPAIGN, 5_000)


def test_the_platform_cannot_write_in_a_self_custody_charitys_name(sc_ledger: Ledger) -> None:
    ledger = sc_ledger
    execute = ledger.fn.execute
    # The same request in the charity's name, signed by the platform's key or another charity's.
    for key in (PLATFORM_KEY, OTHER_CHARITY_KEY):
        call, signature = _signed(
            ledger, key, "recordDonation", _donation("d2"), operator=CHARITY_KEY.address
        )
        ledger.expect_error(
            execute(call.as_tuple(), signature), ledger.stranger, "InvalidSignature", CHARITY_KEY.address
        )
        # ... or honestly in its own name: it operates no self-custody charity's campaign.
        call, signature = _signed(ledger, key, "recordDonation", _donation("d2"))
        ledger.expect_error(
            execute(call.as_tuple(), signature), ledger.stranger, "NotCharityOperator", CHARITY, key.address
        )
    # Nor directly, as the registrar or any account the node holds.
    for sender in (ledger.admin, ledger.op_a):
        ledger.expect_error(
            ledger.fn.recordDonation(_donation("d2")), sender, "NotCharityOperator", CHARITY, sender
        )
    # The registrar cannot add (or remove) an operator of its own.
    for fn in (ledger.fn.addOperator, ledger.fn.removeOperator):
        ledger.expect_error(fn(CHARITY, ledger.admin), ledger.admin, "SelfCustodyCharity", CHARITY)
        ledger.expect_error(
            fn(CHARITY, ledger.stranger), ledger.stranger, "NotCharityOperator", CHARITY, ledger.stranger
        )
    # A signed operator change by another charity's key is refused too.
    call, signature = _signed(ledger, OTHER_CHARITY_KEY, "addOperator", CHARITY, OTHER_CHARITY_KEY.address)
    ledger.expect_error(
        execute(call.as_tuple(), signature),
        ledger.stranger,
        "NotCharityOperator",
        CHARITY,
        OTHER_CHARITY_KEY.address,
    )
    assert not ledger.fn.isOperator(CHARITY, ledger.admin).call()


def test_replayed_expired_and_disallowed_calls_are_refused(sc_ledger: Ledger) -> None:
    ledger = sc_ledger
    execute = ledger.fn.execute
    call, signature = _signed(ledger, CHARITY_KEY, "recordDonation", _donation("d3"))
    _execute(ledger, call, signature)
    ledger.expect_error(
        execute(call.as_tuple(), signature),
        ledger.stranger,
        "NonceAlreadyUsed",
        CHARITY_KEY.address,
        call.nonce,
    )
    deadline = _deadline(ledger, -1)
    call, signature = _signed(ledger, CHARITY_KEY, "recordDonation", _donation("d4"), deadline=deadline)
    # The simulated call's timestamp is the node's (pending block): it is past the deadline.
    with pytest.raises(Exception) as info:
        execute(call.as_tuple(), signature).call({"from": ledger.stranger})
    error = contract_error_of(info.value)
    assert error is not None and error.name == "SignatureExpired"
    assert error.args[0] == deadline and error.args[1] > deadline
    tx = execute(call.as_tuple(), signature).transact({"from": ledger.stranger, "gas": 1_000_000})
    receipt = ledger.w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 0 and receipt["logs"] == []
    assert not ledger.fn.isNonceUsed(CHARITY_KEY.address, call.nonce).call()
    # A tampered call (the amount changed after signing) is not the signed one.
    tampered = sc.SignedCall(call.operator, call.data[:-1] + b"\x01", call.nonce, _deadline(ledger))
    ledger.expect_error(
        execute(tampered.as_tuple(), signature), ledger.stranger, "InvalidSignature", CHARITY_KEY.address
    )
    # A signed call of a registrar's function, or of execute itself, is refused by selector.
    forbidden = sc.SignedCall(
        CHARITY_KEY.address,
        encode("registerCharity", rid("x"), "X", ZERO).data,
        sc.new_nonce(),
        _deadline(ledger),
    )
    signature = sc.sign(forbidden, ledger.deployment.chain_id, ledger.deployment.address, CHARITY_KEY)
    ledger.expect_error(
        execute(forbidden.as_tuple(), signature),
        ledger.stranger,
        "SignedCallNotAllowed",
        selector("registerCharity"),
    )


def test_the_charity_changes_its_own_operators_and_keeps_one(sc_ledger: Ledger) -> None:
    ledger = sc_ledger
    receipt = _execute(ledger, *_signed(ledger, CHARITY_KEY, "addOperator", CHARITY, SECOND_KEY.address))
    assert ledger.events(receipt, "OperatorAdded") == [
        {
            "charityId": CHARITY,
            "account": SECOND_KEY.address,
            "addedBy": CHARITY_KEY.address,
            "heldByCharity": True,
        }
    ]
    # The new key removes the first one; the last one cannot be removed.
    removal = _signed(ledger, SECOND_KEY, "removeOperator", CHARITY, CHARITY_KEY.address)
    receipt = _execute(ledger, *removal)
    assert ledger.events(receipt, "OperatorRemoved") == [
        {"charityId": CHARITY, "account": CHARITY_KEY.address, "removedBy": SECOND_KEY.address}
    ]
    call, signature = _signed(ledger, SECOND_KEY, "removeOperator", CHARITY, SECOND_KEY.address)
    ledger.expect_error(
        ledger.fn.execute(call.as_tuple(), signature), ledger.stranger, "LastOperator", CHARITY
    )
    # Re-added, the first key stays: the old signed removal cannot be replayed.
    _execute(ledger, *_signed(ledger, SECOND_KEY, "addOperator", CHARITY, CHARITY_KEY.address))
    ledger.expect_error(
        ledger.fn.execute(removal[0].as_tuple(), removal[1]),
        ledger.stranger,
        "NonceAlreadyUsed",
        SECOND_KEY.address,
        removal[0].nonce,
    )
    assert ledger.fn.isOperator(CHARITY, CHARITY_KEY.address).call()


def test_one_signature_covers_a_batch_of_donations(sc_ledger: Ledger) -> None:
    ledger = sc_ledger
    donations = [_donation(f"batch-{i}", 100 + i) for i in range(100)]
    call = sc.SignedCall(
        CHARITY_KEY.address, encode_donations(donations).data, sc.new_nonce(), _deadline(ledger)
    )
    signature = sc.sign(call, ledger.deployment.chain_id, ledger.deployment.address, CHARITY_KEY)
    tx = ledger.fn.execute(call.as_tuple(), signature).transact({"from": ledger.stranger, "gas": 8_000_000})
    receipt = ledger.w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 1
    recorded = ledger.events(receipt, "DonationRecorded")
    assert [event["donationId"] for event in recorded] == [d[0] for d in donations]
    assert {event["operator"] for event in recorded} == {CHARITY_KEY.address}
    assert ledger.campaign_view(CAMPAIGN)[4] == sum(d[2] for d in donations)
