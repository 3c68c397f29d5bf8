"""Self-custody and signed calls (contract 2.0.0; 2.1.0 adds the evidence writes), on eth-tester and on
anvil: a charity holding its own key signs records (EIP-712, chain/signed_calls.py), anyone
relays them through `execute`, the contract attributes them to the charity's operator, and
refuses everything the platform could try without that key, each with its exact error."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from ledger_api.chain import signed_calls as sc
from ledger_api.chain.abi import contract_error_of, encode, encode_donations, selector
from ledger_api.chain.contract import register_self_custody_charity
from tests.ledger import ZERO, Ledger, rid
from tests.signed import (
    CAMPAIGN,
    CHARITY,
    CHARITY_KEY,
    OTHER_CHARITY_KEY,
    PLATFORM_KEY,
    SECOND_KEY,
    deadline_after,
    relay,
    sc_donation,
    setup_self_custody,
    signed,
)


@pytest.fixture
def sc_ledger(ledger: Ledger) -> Ledger:
    return setup_self_custody(ledger)


def test_version_and_digest_match_the_python_typed_data(ledger: Ledger) -> None:
    assert ledger.fn.version().call() == "2.4.0"
    chain_id, address = ledger.deployment.chain_id, ledger.deployment.address
    for fn_name, args in (
        ("closeCampaign", (rid("c"),)),
        ("recordDonation", (sc_donation("d"),)),
        ("addOperator", (rid("c"), SECOND_KEY.address)),
    ):
        call = sc.build(CHARITY_KEY.address, fn_name, *args, deadline=2**255 + 7)
        assert ledger.fn.signedCallDigest(call.as_tuple()).call() == sc.digest(call, chain_id, address)
        signature = sc.sign(call, chain_id, address, CHARITY_KEY)
        assert sc.recover(call, chain_id, address, signature) == CHARITY_KEY.address
    # A batch encoded by hand hashes the same as through eth_abi.
    batch = encode_donations([sc_donation(f"b{i}") for i in range(3)]).data
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
    call, signature = signed(ledger, CHARITY_KEY, "recordDonation", sc_donation("d1", 5_000))
    receipt = relay(ledger, call, signature)
    [donation] = ledger.events(receipt, "DonationRecorded")
    assert donation["operator"] == CHARITY_KEY.address
    assert donation["amount"] == 5_000
    assert ledger.events(receipt, "SignedCallExecuted") == [
        {"operator": CHARITY_KEY.address, "nonce": call.nonce, "relayer": ledger.stranger}
    ]
    assert ledger.fn.isNonceUsed(CHARITY_KEY.address, call.nonce).call()
    assert ledger.donation_view(rid("d1"))[:2] == (CAMPAIGN, 5_000)


def test_the_charity_signs_its_redacted_copies_and_withdrawals(sc_ledger: Ledger) -> None:
    ledger = sc_ledger
    relay(ledger, *signed(ledger, CHARITY_KEY, "recordDonation", sc_donation("d-ev", 500)))
    disbursement = ("p-ev", CAMPAIGN, 500, "Village school", "books", rid("original"), [(rid("d-ev"), 500)])
    relay(ledger, *signed(ledger, CHARITY_KEY, "recordDisbursement", rid(disbursement[0]), *disbursement[1:]))
    receipt = relay(
        ledger, *signed(ledger, CHARITY_KEY, "linkRedactedCopy", rid("p-ev"), rid("original"), rid("copy"))
    )
    [link] = ledger.events(receipt, "RedactedCopyLinked")
    assert link["operator"] == CHARITY_KEY.address
    receipt = relay(
        ledger, *signed(ledger, CHARITY_KEY, "withdrawEvidence", rid("p-ev"), rid("original"), "names pupils")
    )
    [withdrawal] = ledger.events(receipt, "EvidenceWithdrawn")
    assert withdrawal["operator"] == CHARITY_KEY.address
    assert tuple(ledger.fn.evidenceStatus(rid("p-ev"), rid("original")).call()) == (True, True, ZERO)
    # The platform cannot withdraw the charity's documents.
    ledger.expect_error(
        ledger.fn.withdrawEvidence(rid("p-ev"), rid("copy"), "x"),
        ledger.op_a,
        "NotCharityOperator",
        ledger.fn.campaignOf(CAMPAIGN).call()[0],
        ledger.op_a,
    )


def test_the_platform_cannot_write_in_a_self_custody_charitys_name(sc_ledger: Ledger) -> None:
    ledger = sc_ledger
    execute = ledger.fn.execute
    # The same request in the charity's name, signed by the platform's key or another charity's.
    for key in (PLATFORM_KEY, OTHER_CHARITY_KEY):
        call, signature = signed(
            ledger, key, "recordDonation", sc_donation("d2"), operator=CHARITY_KEY.address
        )
        ledger.expect_error(
            execute(call.as_tuple(), signature), ledger.stranger, "InvalidSignature", CHARITY_KEY.address
        )
        # ... or honestly in its own name: it operates no self-custody charity's campaign.
        call, signature = signed(ledger, key, "recordDonation", sc_donation("d2"))
        ledger.expect_error(
            execute(call.as_tuple(), signature), ledger.stranger, "NotCharityOperator", CHARITY, key.address
        )
    # Nor directly, as the registrar or any account the node holds.
    for sender in (ledger.admin, ledger.op_a):
        ledger.expect_error(
            ledger.fn.recordDonation(sc_donation("d2")), sender, "NotCharityOperator", CHARITY, sender
        )
    # The registrar cannot add (or remove) an operator of its own.
    for fn in (ledger.fn.addOperator, ledger.fn.removeOperator):
        ledger.expect_error(fn(CHARITY, ledger.admin), ledger.admin, "SelfCustodyCharity", CHARITY)
        ledger.expect_error(
            fn(CHARITY, ledger.stranger), ledger.stranger, "NotCharityOperator", CHARITY, ledger.stranger
        )
    # A signed operator change by another charity's key is refused too.
    call, signature = signed(ledger, OTHER_CHARITY_KEY, "addOperator", CHARITY, OTHER_CHARITY_KEY.address)
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
    call, signature = signed(ledger, CHARITY_KEY, "recordDonation", sc_donation("d3"))
    relay(ledger, call, signature)
    ledger.expect_error(
        execute(call.as_tuple(), signature),
        ledger.stranger,
        "NonceAlreadyUsed",
        CHARITY_KEY.address,
        call.nonce,
    )
    deadline = deadline_after(ledger, -1)
    call, signature = signed(ledger, CHARITY_KEY, "recordDonation", sc_donation("d4"), deadline=deadline)
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
    tampered = sc.SignedCall(call.operator, call.data[:-1] + b"\x01", call.nonce, deadline_after(ledger))
    ledger.expect_error(
        execute(tampered.as_tuple(), signature), ledger.stranger, "InvalidSignature", CHARITY_KEY.address
    )
    # A signed call of a registrar's function, or of execute itself, is refused by selector.
    forbidden = sc.SignedCall(
        CHARITY_KEY.address,
        encode("registerCharity", rid("x"), "X", ZERO).data,
        sc.new_nonce(),
        deadline_after(ledger),
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
    receipt = relay(ledger, *signed(ledger, CHARITY_KEY, "addOperator", CHARITY, SECOND_KEY.address))
    assert ledger.events(receipt, "OperatorAdded") == [
        {
            "charityId": CHARITY,
            "account": SECOND_KEY.address,
            "addedBy": CHARITY_KEY.address,
            "heldByCharity": True,
        }
    ]
    # The new key removes the first one; the last one cannot be removed.
    removal = signed(ledger, SECOND_KEY, "removeOperator", CHARITY, CHARITY_KEY.address)
    receipt = relay(ledger, *removal)
    assert ledger.events(receipt, "OperatorRemoved") == [
        {"charityId": CHARITY, "account": CHARITY_KEY.address, "removedBy": SECOND_KEY.address}
    ]
    call, signature = signed(ledger, SECOND_KEY, "removeOperator", CHARITY, SECOND_KEY.address)
    ledger.expect_error(
        ledger.fn.execute(call.as_tuple(), signature), ledger.stranger, "LastOperator", CHARITY
    )
    # Re-added, the first key stays: the old signed removal cannot be replayed.
    relay(ledger, *signed(ledger, SECOND_KEY, "addOperator", CHARITY, CHARITY_KEY.address))
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
    donations = [sc_donation(f"batch-{i}", 100 + i) for i in range(100)]
    call = sc.SignedCall(
        CHARITY_KEY.address, encode_donations(donations).data, sc.new_nonce(), deadline_after(ledger)
    )
    signature = sc.sign(call, ledger.deployment.chain_id, ledger.deployment.address, CHARITY_KEY)
    tx = ledger.fn.execute(call.as_tuple(), signature).transact({"from": ledger.stranger, "gas": 8_000_000})
    receipt = ledger.w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 1
    recorded = ledger.events(receipt, "DonationRecorded")
    assert [event["donationId"] for event in recorded] == [d[0] for d in donations]
    assert {event["operator"] for event in recorded} == {CHARITY_KEY.address}
    assert ledger.campaign_view(CAMPAIGN)[4] == sum(d[2] for d in donations)


def test_fifty_signed_requests_land_in_any_order_each_once(sc_ledger: Ledger) -> None:
    """Unordered nonces: 50 donations signed up front (as 50 requests in flight would be)
    are relayed in reverse order, each records once, and none can be relayed again."""
    ledger = sc_ledger
    requests = [
        signed(ledger, CHARITY_KEY, "recordDonation", sc_donation(f"f{i}", 10 + i)) for i in range(50)
    ]
    for call, signature in reversed(requests):
        relay(ledger, call, signature)
    call, signature = requests[7]
    ledger.expect_error(
        ledger.fn.execute(call.as_tuple(), signature),
        ledger.stranger,
        "NonceAlreadyUsed",
        CHARITY_KEY.address,
        call.nonce,
    )
    view = ledger.campaign_view(CAMPAIGN)
    assert (view[4], view[8]) == (sum(10 + i for i in range(50)), 50)  # received, donationCount
