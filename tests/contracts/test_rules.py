"""Every rule of DESIGN.md ("Rules the contract enforces"), each with the exact custom
error and its arguments, on the embedded eth-tester chain and on anvil."""

from __future__ import annotations

from eth_utils import keccak

from tests.ledger import MAX_AMOUNT, MAX_GOAL, MAX_LIST, ZERO, Ledger, commitment, rid

REGISTRAR_ROLE = keccak(text="REGISTRAR_ROLE")
PAUSER_ROLE = keccak(text="PAUSER_ROLE")
DONATION, REFUND, DISBURSEMENT = 1, 2, 3  # RecordKind
CAMPAIGN_KIND = 0


# ------------------------------------------------------------ deployment


def test_deployment_block_is_where_the_contract_was_created(ledger: Ledger) -> None:
    assert ledger.fn.deploymentBlock().call() == ledger.deployment.block_number
    assert ledger.w3.eth.get_code(ledger.deployment.address) != b""


# ------------------------------------------------ charities and operators


def test_registrar_registers_a_charity_with_its_operator(ledger: Ledger) -> None:
    charity = rid("charity-c")
    receipt = ledger.send(ledger.fn.registerCharity(charity, "Charity C", rid("meta")), ledger.admin)
    [event] = ledger.events(receipt, "CharityRegistered")
    assert event == {
        "charityId": charity,
        "name": "Charity C",
        "metadataHash": rid("meta"),
        "registrar": ledger.admin,
        "selfCustody": False,
    }
    receipt = ledger.send(ledger.fn.addOperator(charity, ledger.stranger), ledger.admin)
    assert ledger.events(receipt, "OperatorAdded") == [
        {"charityId": charity, "account": ledger.stranger, "addedBy": ledger.admin, "heldByCharity": False}
    ]
    assert ledger.fn.isCharityRegistered(charity).call()
    assert ledger.fn.isOperator(charity, ledger.stranger).call()
    assert not ledger.fn.isOperator(ledger.charity_a, ledger.stranger).call()


def test_only_registrars_register_charities_and_operators(ledger: Ledger) -> None:
    for sender in (ledger.stranger, ledger.op_a):
        ledger.expect_error(
            ledger.fn.registerCharity(rid("x"), "X", ZERO),
            sender,
            "AccessControlUnauthorizedAccount",
            sender,
            REGISTRAR_ROLE,
        )
        ledger.expect_error(
            ledger.fn.addOperator(ledger.charity_a, sender),
            sender,
            "AccessControlUnauthorizedAccount",
            sender,
            REGISTRAR_ROLE,
        )


def test_charity_ids_are_unique_and_non_zero_and_names_bounded(ledger: Ledger) -> None:
    fn, admin = ledger.fn, ledger.admin
    ledger.expect_error(
        fn.registerCharity(ledger.charity_a, "Again", ZERO),
        admin,
        "CharityAlreadyRegistered",
        ledger.charity_a,
    )
    ledger.expect_error(fn.registerCharity(ZERO, "Zero", ZERO), admin, "ZeroId")
    ledger.expect_error(fn.registerCharity(rid("e"), "", ZERO), admin, "InvalidTextLength", 0, 200)
    ledger.expect_error(fn.registerCharity(rid("l"), "n" * 201, ZERO), admin, "InvalidTextLength", 201, 200)
    ledger.send(fn.registerCharity(rid("l"), "名" * 66, ZERO), admin)  # 198 bytes of UTF-8


def test_operator_changes_are_checked(ledger: Ledger) -> None:
    fn, admin = ledger.fn, ledger.admin
    ledger.expect_error(
        fn.addOperator(rid("nobody"), ledger.stranger), admin, "CharityNotFound", rid("nobody")
    )
    ledger.expect_error(
        fn.addOperator(ledger.charity_a, ledger.op_a),
        admin,
        "OperatorAlreadyAdded",
        ledger.charity_a,
        ledger.op_a,
    )
    ledger.expect_error(
        fn.removeOperator(ledger.charity_a, ledger.stranger),
        admin,
        "OperatorNotFound",
        ledger.charity_a,
        ledger.stranger,
    )


def test_a_removed_operator_can_no_longer_write(ledger: Ledger) -> None:
    receipt = ledger.send(ledger.fn.removeOperator(ledger.charity_a, ledger.op_a), ledger.admin)
    assert ledger.events(receipt, "OperatorRemoved") == [
        {"charityId": ledger.charity_a, "account": ledger.op_a, "removedBy": ledger.admin}
    ]
    ledger.expect_error(
        ledger.fn.recordDonation(ledger.donation(rid("d"), 100)),
        ledger.op_a,
        "NotCharityOperator",
        ledger.charity_a,
        ledger.op_a,
    )


# ------------------------------------------------------------- campaigns


def test_operator_creates_and_closes_a_campaign(ledger: Ledger) -> None:
    campaign = rid("campaign-new")
    receipt = ledger.send(
        ledger.fn.createCampaign(campaign, ledger.charity_a, "Winter coats", b"USD", 5_000_00, rid("m")),
        ledger.op_a,
    )
    [event] = ledger.events(receipt, "CampaignCreated")
    assert event == {
        "campaignId": campaign,
        "charityId": ledger.charity_a,
        "name": "Winter coats",
        "currency": b"USD",
        "goal": 5_000_00,
        "metadataHash": rid("m"),
        "operator": ledger.op_a,
    }
    assert ledger.campaign_view(campaign) == (ledger.charity_a, b"USD", False, 5_000_00, 0, 0, 0, 0, 0, 0)
    receipt = ledger.send(ledger.fn.closeCampaign(campaign), ledger.op_a)
    assert ledger.events(receipt, "CampaignClosed") == [
        {"campaignId": campaign, "charityId": ledger.charity_a, "operator": ledger.op_a}
    ]
    assert ledger.campaign_view(campaign)[2] is True
    ledger.expect_error(ledger.fn.closeCampaign(campaign), ledger.op_a, "CampaignIsClosed", campaign)


def test_campaign_rules(ledger: Ledger) -> None:
    fn, op = ledger.fn, ledger.op_a
    new = rid("c-new")
    ledger.expect_error(
        fn.createCampaign(ledger.campaign_a, ledger.charity_a, "Dup", b"CNY", 1, ZERO),
        op,
        "CampaignAlreadyExists",
        ledger.campaign_a,
    )
    ledger.expect_error(fn.createCampaign(ZERO, ledger.charity_a, "Zero", b"CNY", 1, ZERO), op, "ZeroId")
    ledger.expect_error(
        fn.createCampaign(new, rid("nobody"), "N", b"CNY", 1, ZERO), op, "CharityNotFound", rid("nobody")
    )
    for currency in (b"cny", b"C1Y", b"\x00\x00\x00"):
        ledger.expect_error(
            fn.createCampaign(new, ledger.charity_a, "N", currency, 1, ZERO), op, "InvalidCurrency", currency
        )
    for goal in (0, MAX_GOAL + 1):
        ledger.expect_error(
            fn.createCampaign(new, ledger.charity_a, "N", b"CNY", goal, ZERO),
            op,
            "InvalidAmount",
            goal,
            MAX_GOAL,
        )
    ledger.expect_error(
        fn.createCampaign(new, ledger.charity_a, "", b"CNY", 1, ZERO), op, "InvalidTextLength", 0, 200
    )
    ledger.expect_error(fn.closeCampaign(new), op, "CampaignNotFound", new)


def test_only_the_charitys_operators_manage_its_campaigns(ledger: Ledger) -> None:
    fn = ledger.fn
    for sender in (ledger.stranger, ledger.op_b, ledger.admin):
        ledger.expect_error(
            fn.createCampaign(rid("c"), ledger.charity_a, "N", b"CNY", 1, ZERO),
            sender,
            "NotCharityOperator",
            ledger.charity_a,
            sender,
        )
        ledger.expect_error(
            fn.closeCampaign(ledger.campaign_a), sender, "NotCharityOperator", ledger.charity_a, sender
        )


# ------------------------------------------------------------- donations


def test_operator_records_a_donation(ledger: Ledger) -> None:
    donation = ledger.donation(rid("d1"), 12_345)
    receipt = ledger.send(ledger.fn.recordDonation(donation), ledger.op_a)
    [event] = ledger.events(receipt, "DonationRecorded")
    assert event == {
        "donationId": rid("d1"),
        "campaignId": ledger.campaign_a,
        "amount": 12_345,
        "donorCommitment": commitment("donor"),
        "channel": b"bank".ljust(32, b"\0"),
        "metadataHash": ZERO,
        "operator": ledger.op_a,
    }
    assert ledger.donation_view(rid("d1")) == (ledger.campaign_a, 12_345, 0, 0, 12_345)
    assert ledger.campaign_view(ledger.campaign_a)[4:] == (12_345, 0, 0, 12_345, 1, 0)


def test_donation_rules(ledger: Ledger) -> None:
    fn, op = ledger.fn, ledger.op_a
    ledger.donate("d1", 100)
    ledger.expect_error(
        fn.recordDonation(ledger.donation(rid("d1"), 5)), op, "DonationAlreadyExists", rid("d1")
    )
    ledger.expect_error(fn.recordDonation(ledger.donation(ZERO, 5)), op, "ZeroId")
    for amount in (0, MAX_AMOUNT + 1):
        ledger.expect_error(
            fn.recordDonation(ledger.donation(rid("d2"), amount)), op, "InvalidAmount", amount, MAX_AMOUNT
        )
    no_donor = (rid("d2"), ledger.campaign_a, 5, ZERO, ZERO, ZERO)
    ledger.expect_error(fn.recordDonation(no_donor), op, "ZeroDonorCommitment", rid("d2"))
    ledger.expect_error(
        fn.recordDonation(ledger.donation(rid("d2"), 5, rid("nope"))), op, "CampaignNotFound", rid("nope")
    )
    ledger.send(fn.recordDonation(ledger.donation(rid("d-max"), MAX_AMOUNT)), op)


def test_only_the_charitys_operators_record_its_donations(ledger: Ledger) -> None:
    for sender in (ledger.stranger, ledger.op_b, ledger.admin):
        ledger.expect_error(
            ledger.fn.recordDonation(ledger.donation(rid("d"), 5)),
            sender,
            "NotCharityOperator",
            ledger.charity_a,
            sender,
        )


def test_closed_campaigns_take_no_new_donations(ledger: Ledger) -> None:
    ledger.donate("before", 100)
    ledger.send(ledger.fn.closeCampaign(ledger.campaign_a), ledger.op_a)
    ledger.expect_error(
        ledger.fn.recordDonation(ledger.donation(rid("after"), 5)),
        ledger.op_a,
        "CampaignIsClosed",
        ledger.campaign_a,
    )
    ledger.expect_error(
        ledger.fn.recordDonations([ledger.donation(rid("after"), 5)]),
        ledger.op_a,
        "CampaignIsClosed",
        ledger.campaign_a,
    )
    # Money already received can still be refunded and spent.
    ledger.send(ledger.fn.refundDonation(rid("r"), rid("before"), 10, "donor asked"), ledger.op_a)
    ledger.disburse("x", [(rid("before"), 90)])
    assert ledger.campaign_view(ledger.campaign_a)[4:8] == (100, 10, 90, 0)


def test_batch_records_every_donation_atomically(ledger: Ledger) -> None:
    batch = [ledger.donation(rid(f"b{i}"), 100 + i, donor=f"donor{i}") for i in range(3)]
    receipt = ledger.send(ledger.fn.recordDonations(batch), ledger.op_a)
    events = ledger.events(receipt, "DonationRecorded")
    assert [(e["donationId"], e["amount"], e["donorCommitment"]) for e in events] == [
        (rid(f"b{i}"), 100 + i, commitment(f"donor{i}")) for i in range(3)
    ]
    assert ledger.campaign_view(ledger.campaign_a)[4:] == (303, 0, 0, 303, 3, 0)

    # One bad donation anywhere in a batch rejects the whole batch.
    bad = [ledger.donation(rid("ok-1"), 1), ledger.donation(rid("b1"), 1)]
    ledger.expect_error(ledger.fn.recordDonations(bad), ledger.op_a, "DonationAlreadyExists", rid("b1"))
    twice = [ledger.donation(rid("t"), 1), ledger.donation(rid("t"), 1)]
    ledger.expect_error(ledger.fn.recordDonations(twice), ledger.op_a, "DonationAlreadyExists", rid("t"))
    assert ledger.campaign_view(ledger.campaign_a)[4:] == (303, 0, 0, 303, 3, 0)


def test_batch_size_is_bounded_and_every_campaign_is_checked(ledger: Ledger) -> None:
    fn, op = ledger.fn, ledger.op_a
    ledger.expect_error(fn.recordDonations([]), op, "InvalidListLength", 0, MAX_LIST)
    too_many = [ledger.donation(rid(f"m{i}"), 1) for i in range(MAX_LIST + 1)]
    ledger.expect_error(fn.recordDonations(too_many), op, "InvalidListLength", MAX_LIST + 1, MAX_LIST)
    mixed = [ledger.donation(rid("a1"), 1), ledger.donation(rid("b1"), 1, ledger.campaign_b)]
    ledger.expect_error(fn.recordDonations(mixed), op, "NotCharityOperator", ledger.charity_b, op)
    # A batch may span campaigns of the caller's charity.
    second = rid("campaign-a2")
    ledger.send(fn.createCampaign(second, ledger.charity_a, "A2", b"CNY", 10**6, ZERO), op)
    ledger.send(
        fn.recordDonations([ledger.donation(rid("x1"), 7), ledger.donation(rid("x2"), 8, second)]), op
    )
    assert ledger.donation_view(rid("x2"))[:2] == (second, 8)


# --------------------------------------------------------------- refunds


def test_refunds_never_exceed_what_is_left_of_a_donation(ledger: Ledger) -> None:
    fn, op = ledger.fn, ledger.op_a
    donation = ledger.donate("d", 1_000)
    ledger.disburse("spend", [(donation, 600)])
    ledger.expect_error(
        fn.refundDonation(rid("r1"), donation, 401, "too much"), op, "DonationOverdrawn", donation, 400, 401
    )
    receipt = ledger.send(fn.refundDonation(rid("r1"), donation, 150, "donor asked"), op)
    assert ledger.events(receipt, "DonationRefunded") == [
        {
            "refundId": rid("r1"),
            "donationId": donation,
            "campaignId": ledger.campaign_a,
            "amount": 150,
            "donationRefunded": 150,
            "reason": "donor asked",
            "operator": op,
        }
    ]
    ledger.expect_error(
        fn.refundDonation(rid("r2"), donation, 251, "x"), op, "DonationOverdrawn", donation, 250, 251
    )
    ledger.send(fn.refundDonation(rid("r2"), donation, 250, "rest"), op)
    assert ledger.donation_view(donation) == (ledger.campaign_a, 1_000, 600, 400, 0)
    assert fn.refundOf(rid("r2")).call() == [donation, 250]
    assert ledger.campaign_view(ledger.campaign_a)[4:8] == (1_000, 400, 600, 0)


def test_refund_rules(ledger: Ledger) -> None:
    fn, op = ledger.fn, ledger.op_a
    donation = ledger.donate("d", 100)
    ledger.send(fn.refundDonation(rid("r"), donation, 1, "x"), op)
    ledger.expect_error(fn.refundDonation(rid("r"), donation, 1, "x"), op, "RefundAlreadyExists", rid("r"))
    ledger.expect_error(fn.refundDonation(ZERO, donation, 1, "x"), op, "ZeroId")
    ledger.expect_error(
        fn.refundDonation(rid("r2"), rid("nope"), 1, "x"), op, "DonationNotFound", rid("nope")
    )
    ledger.expect_error(fn.refundDonation(rid("r2"), donation, 0, "x"), op, "InvalidAmount", 0, MAX_AMOUNT)
    ledger.expect_error(fn.refundDonation(rid("r2"), donation, 1, ""), op, "InvalidTextLength", 0, 256)
    for sender in (ledger.op_b, ledger.stranger):
        ledger.expect_error(
            fn.refundDonation(rid("r2"), donation, 1, "x"),
            sender,
            "NotCharityOperator",
            ledger.charity_a,
            sender,
        )


# --------------------------------------------------------- disbursements


def test_disbursement_with_allocations_and_evidence(ledger: Ledger) -> None:
    d1, d2 = ledger.donate("d1", 500), ledger.donate("d2", 300)
    receipt = ledger.disburse("pay", [(d1, 500), (d2, 120)], evidence=rid("invoice"))
    assert ledger.events(receipt, "DisbursementRecorded") == [
        {
            "disbursementId": rid("pay"),
            "campaignId": ledger.campaign_a,
            "amount": 620,
            "recipient": "CN-ORG-1",
            "purpose": "school-meals",
            "allocationCount": 2,
            "operator": ledger.op_a,
        }
    ]
    assert ledger.events(receipt, "DonationAllocated") == [
        {"disbursementId": rid("pay"), "donationId": d1, "amount": 500, "donationAllocated": 500},
        {"disbursementId": rid("pay"), "donationId": d2, "amount": 120, "donationAllocated": 120},
    ]
    assert ledger.events(receipt, "EvidenceAnchored") == [
        {
            "disbursementId": rid("pay"),
            "documentHash": rid("invoice"),
            "evidenceCount": 1,
            "operator": ledger.op_a,
        }
    ]
    assert ledger.fn.disbursementOf(rid("pay")).call() == (ledger.campaign_a, 620, 2, 1)
    assert ledger.donation_view(d1) == (ledger.campaign_a, 500, 500, 0, 0)
    assert ledger.donation_view(d2) == (ledger.campaign_a, 300, 120, 0, 180)
    assert ledger.campaign_view(ledger.campaign_a)[4:] == (800, 0, 620, 180, 2, 1)


def test_allocations_never_exceed_a_donation(ledger: Ledger) -> None:
    d1, d2 = ledger.donate("d1", 500), ledger.donate("d2", 300)
    ledger.send(ledger.fn.refundDonation(rid("r"), d1, 100, "x"), ledger.op_a)
    call = ledger.fn.recordDisbursement(
        rid("p"), ledger.campaign_a, 500, "R", "P", ZERO, [(d1, 401), (d2, 99)]
    )
    ledger.expect_error(call, ledger.op_a, "DonationOverdrawn", d1, 400, 401)
    ledger.disburse("p1", [(d1, 400)])
    call = ledger.fn.recordDisbursement(rid("p2"), ledger.campaign_a, 1, "R", "P", ZERO, [(d1, 1)])
    ledger.expect_error(call, ledger.op_a, "DonationOverdrawn", d1, 0, 1)


def test_allocations_draw_only_on_donations_of_the_same_campaign(ledger: Ledger) -> None:
    other = rid("campaign-a2")
    ledger.send(ledger.fn.createCampaign(other, ledger.charity_a, "A2", b"CNY", 10**6, ZERO), ledger.op_a)
    mine, theirs = ledger.donate("mine", 100), ledger.donate("theirs", 100, other)
    call = ledger.fn.recordDisbursement(
        rid("p"), ledger.campaign_a, 100, "R", "P", ZERO, [(mine, 50), (theirs, 50)]
    )
    ledger.expect_error(call, ledger.op_a, "AllocationCampaignMismatch", theirs, other, ledger.campaign_a)
    b_donation = ledger.donate("b", 100, ledger.campaign_b, sender=ledger.op_b)
    call = ledger.fn.recordDisbursement(rid("p"), ledger.campaign_a, 100, "R", "P", ZERO, [(b_donation, 100)])
    ledger.expect_error(
        call, ledger.op_a, "AllocationCampaignMismatch", b_donation, ledger.campaign_b, ledger.campaign_a
    )


def test_a_campaign_never_pays_out_more_than_it_received_net_of_refunds(ledger: Ledger) -> None:
    d1 = ledger.donate("d1", 1_000)
    ledger.send(ledger.fn.refundDonation(rid("r"), d1, 300, "x"), ledger.op_a)
    ledger.disburse("p1", [(d1, 500)])
    call = ledger.fn.recordDisbursement(rid("p2"), ledger.campaign_a, 201, "R", "P", ZERO, [(d1, 201)])
    ledger.expect_error(call, ledger.op_a, "CampaignOverdrawn", ledger.campaign_a, 200, 201)
    ledger.disburse("p2", [(d1, 200)])
    assert ledger.campaign_view(ledger.campaign_a)[4:8] == (1_000, 300, 700, 0)


def test_disbursement_rules(ledger: Ledger) -> None:
    fn, op, campaign = ledger.fn, ledger.op_a, ledger.campaign_a
    d1, d2 = ledger.donate("d1", 500), ledger.donate("d2", 500)

    def disburse(label: str, amount: int, allocations: list[tuple[bytes, int]], **kw: str) -> object:
        recipient, purpose = kw.get("recipient", "R"), kw.get("purpose", "P")
        return fn.recordDisbursement(
            rid(label), kw.get("campaign", campaign), amount, recipient, purpose, ZERO, allocations
        )

    ledger.expect_error(disburse("p", 300, [(d1, 100), (d2, 100)]), op, "AllocationSumMismatch", 300, 200)
    ledger.expect_error(disburse("p", 200, [(d1, 100), (d1, 100)]), op, "DuplicateAllocation", d1)
    ledger.expect_error(disburse("p", 100, []), op, "InvalidListLength", 0, MAX_LIST)
    ledger.expect_error(disburse("p", 100, [(rid("nope"), 100)]), op, "DonationNotFound", rid("nope"))
    ledger.expect_error(disburse("p", 100, [(d1, 100), (d2, 0)]), op, "InvalidAmount", 0, MAX_AMOUNT)
    ledger.expect_error(disburse("p", 0, [(d1, 0)]), op, "InvalidAmount", 0, MAX_AMOUNT)
    ledger.expect_error(disburse("p", 10, [(d1, 10)], recipient=""), op, "InvalidTextLength", 0, 128)
    ledger.expect_error(disburse("p", 10, [(d1, 10)], purpose="p" * 129), op, "InvalidTextLength", 129, 128)
    ledger.expect_error(
        disburse("p", 10, [(d1, 10)], campaign=rid("nope")), op, "CampaignNotFound", rid("nope")
    )
    too_many = [(d1, 1)] * (MAX_LIST + 1)
    ledger.expect_error(
        disburse("p", MAX_LIST + 1, too_many), op, "InvalidListLength", MAX_LIST + 1, MAX_LIST
    )
    ledger.disburse("p", [(d1, 10)])
    ledger.expect_error(disburse("p", 10, [(d1, 10)]), op, "DisbursementAlreadyExists", rid("p"))
    ledger.expect_error(fn.recordDisbursement(ZERO, campaign, 10, "R", "P", ZERO, [(d1, 10)]), op, "ZeroId")
    for sender in (ledger.op_b, ledger.stranger):
        ledger.expect_error(
            disburse("q", 10, [(d1, 10)]), sender, "NotCharityOperator", ledger.charity_a, sender
        )
    # A duplicate caught in one disbursement leaves no trace for the next one in the block.
    ledger.disburse("after-dup", [(d1, 5), (d2, 5)])


# -------------------------------------------------------------- evidence


def test_evidence_is_anchored_once_per_document_and_only_by_the_charity(ledger: Ledger) -> None:
    fn, op = ledger.fn, ledger.op_a
    donation = ledger.donate("d", 100)
    ledger.disburse("p", [(donation, 100)])
    receipt = ledger.send(fn.anchorEvidence(rid("p"), rid("photo")), op)
    assert ledger.events(receipt, "EvidenceAnchored") == [
        {"disbursementId": rid("p"), "documentHash": rid("photo"), "evidenceCount": 1, "operator": op}
    ]
    ledger.send(fn.anchorEvidence(rid("p"), rid("invoice")), op)
    assert fn.disbursementOf(rid("p")).call()[3] == 2
    assert fn.isEvidenceAnchored(rid("p"), rid("photo")).call()
    ledger.expect_error(
        fn.anchorEvidence(rid("p"), rid("photo")), op, "EvidenceAlreadyAnchored", rid("p"), rid("photo")
    )
    ledger.expect_error(fn.anchorEvidence(rid("p"), ZERO), op, "ZeroId")
    ledger.expect_error(fn.anchorEvidence(rid("nope"), rid("x")), op, "DisbursementNotFound", rid("nope"))
    for sender in (ledger.op_b, ledger.stranger):
        ledger.expect_error(
            fn.anchorEvidence(rid("p"), rid("x")), sender, "NotCharityOperator", ledger.charity_a, sender
        )


def test_a_redacted_copy_is_linked_to_an_anchored_original_once(ledger: Ledger) -> None:
    fn, op = ledger.fn, ledger.op_a
    donation = ledger.donate("d", 100)
    ledger.disburse("p", [(donation, 100)])
    ledger.send(fn.anchorEvidence(rid("p"), rid("original")), op)
    receipt = ledger.send(fn.linkRedactedCopy(rid("p"), rid("original"), rid("copy")), op)
    # The copy is anchored by the link itself, then linked.
    assert ledger.events(receipt, "EvidenceAnchored") == [
        {"disbursementId": rid("p"), "documentHash": rid("copy"), "evidenceCount": 2, "operator": op}
    ]
    assert ledger.events(receipt, "RedactedCopyLinked") == [
        {"disbursementId": rid("p"), "originalHash": rid("original"), "copyHash": rid("copy"), "operator": op}
    ]
    assert tuple(fn.evidenceStatus(rid("p"), rid("copy")).call()) == (True, False, rid("original"))
    assert tuple(fn.evidenceStatus(rid("p"), rid("original")).call()) == (True, False, ZERO)
    assert tuple(fn.evidenceStatus(rid("p"), rid("other")).call()) == (False, False, ZERO)
    # A copy already anchored on its own can be linked afterwards; an original may have two copies.
    ledger.send(fn.anchorEvidence(rid("p"), rid("copy-2")), op)
    ledger.send(fn.linkRedactedCopy(rid("p"), rid("original"), rid("copy-2")), op)
    assert fn.disbursementOf(rid("p")).call()[3] == 3
    ledger.expect_error(
        fn.linkRedactedCopy(rid("p"), rid("copy-2"), rid("copy")),
        op,
        "RedactedCopyAlreadyLinked",
        rid("p"),
        rid("copy"),
    )
    ledger.expect_error(
        fn.linkRedactedCopy(rid("p"), rid("original"), rid("original")),
        op,
        "RedactedCopyAlreadyLinked",
        rid("p"),
        rid("original"),
    )
    ledger.expect_error(
        fn.linkRedactedCopy(rid("p"), rid("unanchored"), rid("c3")),
        op,
        "EvidenceNotAnchored",
        rid("p"),
        rid("unanchored"),
    )
    ledger.expect_error(fn.linkRedactedCopy(rid("p"), rid("original"), ZERO), op, "ZeroId")
    ledger.expect_error(
        fn.linkRedactedCopy(rid("nope"), rid("original"), rid("c3")), op, "DisbursementNotFound", rid("nope")
    )
    for sender in (ledger.op_b, ledger.stranger):
        ledger.expect_error(
            fn.linkRedactedCopy(rid("p"), rid("original"), rid("c3")),
            sender,
            "NotCharityOperator",
            ledger.charity_a,
            sender,
        )


def test_a_withdrawal_keeps_the_anchor_and_happens_once_with_a_reason(ledger: Ledger) -> None:
    fn, op = ledger.fn, ledger.op_a
    donation = ledger.donate("d", 100)
    ledger.disburse("p", [(donation, 100)])
    ledger.send(fn.anchorEvidence(rid("p"), rid("list")), op)
    receipt = ledger.send(fn.withdrawEvidence(rid("p"), rid("list"), "PIPL erasure request"), op)
    assert ledger.events(receipt, "EvidenceWithdrawn") == [
        {
            "disbursementId": rid("p"),
            "documentHash": rid("list"),
            "reason": "PIPL erasure request",
            "operator": op,
        }
    ]
    assert fn.isEvidenceAnchored(rid("p"), rid("list")).call()  # the anchor stays
    assert tuple(fn.evidenceStatus(rid("p"), rid("list")).call()) == (True, True, ZERO)
    assert fn.disbursementOf(rid("p")).call()[3] == 1
    ledger.expect_error(
        fn.withdrawEvidence(rid("p"), rid("list"), "again"),
        op,
        "EvidenceAlreadyWithdrawn",
        rid("p"),
        rid("list"),
    )
    ledger.expect_error(
        fn.withdrawEvidence(rid("p"), rid("never"), "x"), op, "EvidenceNotAnchored", rid("p"), rid("never")
    )
    ledger.send(fn.anchorEvidence(rid("p"), rid("photo")), op)
    ledger.expect_error(fn.withdrawEvidence(rid("p"), rid("photo"), ""), op, "InvalidTextLength", 0, 256)
    ledger.expect_error(
        fn.withdrawEvidence(rid("p"), rid("photo"), "r" * 257), op, "InvalidTextLength", 257, 256
    )
    for sender in (ledger.op_b, ledger.stranger):
        ledger.expect_error(
            fn.withdrawEvidence(rid("p"), rid("photo"), "x"),
            sender,
            "NotCharityOperator",
            ledger.charity_a,
            sender,
        )


def test_the_access_log_is_sealed_once_a_day_by_the_log_sealer_only(ledger: Ledger) -> None:
    fn, admin = ledger.fn, ledger.admin
    sealer_role = keccak(text="LOG_SEALER_ROLE")
    assert fn.hasRole(sealer_role, admin).call()
    receipt = ledger.send(fn.sealAccessLog(20_000, rid("root"), 7, rid("last")), admin)
    assert ledger.events(receipt, "AccessLogSealed") == [
        {"day": 20_000, "root": rid("root"), "rowCount": 7, "lastRowHash": rid("last"), "sealer": admin}
    ]
    assert tuple(fn.accessLogSeal(20_000).call()) == (rid("root"), 7, rid("last"))
    assert tuple(fn.accessLogSeal(20_001).call()) == (ZERO, 0, ZERO)
    ledger.expect_error(
        fn.sealAccessLog(20_000, rid("other"), 8, rid("l")), admin, "AccessLogAlreadySealed", 20_000
    )
    ledger.expect_error(fn.sealAccessLog(20_001, ZERO, 8, rid("l")), admin, "InvalidAccessLogSeal", 20_001)
    ledger.expect_error(
        fn.sealAccessLog(20_001, rid("r"), 0, rid("l")), admin, "InvalidAccessLogSeal", 20_001
    )
    for sender in (ledger.op_a, ledger.stranger):
        ledger.expect_error(
            fn.sealAccessLog(20_001, rid("r"), 1, rid("l")),
            sender,
            "AccessControlUnauthorizedAccount",
            sender,
            sealer_role,
        )


# ----------------------------------------------------------- corrections


def test_corrections_reference_an_existing_record_of_the_charity(ledger: Ledger) -> None:
    fn, op = ledger.fn, ledger.op_a
    wrong, right = ledger.donate("wrong", 1_000), ledger.donate("right", 100)
    receipt = ledger.send(
        fn.recordCorrection(rid("c1"), ledger.charity_a, DONATION, wrong, right, "amount mis-keyed"), op
    )
    assert ledger.events(receipt, "CorrectionRecorded") == [
        {
            "correctionId": rid("c1"),
            "charityId": ledger.charity_a,
            "originalId": wrong,
            "originalKind": DONATION,
            "replacementId": right,
            "reason": "amount mis-keyed",
            "operator": op,
        }
    ]
    a = ledger.charity_a
    ledger.expect_error(
        fn.recordCorrection(rid("c1"), a, DONATION, wrong, ZERO, "x"),
        op,
        "CorrectionAlreadyExists",
        rid("c1"),
    )
    ledger.expect_error(
        fn.recordCorrection(rid("c2"), a, DONATION, rid("nope"), ZERO, "x"),
        op,
        "RecordNotFound",
        DONATION,
        rid("nope"),
    )
    ledger.expect_error(
        fn.recordCorrection(rid("c2"), a, DONATION, wrong, rid("nope"), "x"),
        op,
        "RecordNotFound",
        DONATION,
        rid("nope"),
    )
    ledger.expect_error(
        fn.recordCorrection(rid("c2"), a, REFUND, wrong, ZERO, "x"), op, "RecordNotFound", REFUND, wrong
    )
    theirs = ledger.donate("theirs", 5, ledger.campaign_b, sender=ledger.op_b)
    ledger.expect_error(
        fn.recordCorrection(rid("c2"), a, DONATION, theirs, ZERO, "x"), op, "RecordNotFound", DONATION, theirs
    )
    ledger.expect_error(
        fn.recordCorrection(rid("c2"), ledger.charity_b, DONATION, theirs, ZERO, "x"),
        op,
        "NotCharityOperator",
        ledger.charity_b,
        op,
    )
    ledger.send(fn.recordCorrection(rid("c3"), a, CAMPAIGN_KIND, ledger.campaign_a, ZERO, "goal typo"), op)
    ledger.send(fn.refundDonation(rid("r"), wrong, 900, "correction: amount mis-keyed"), op)
    ledger.send(fn.recordCorrection(rid("c4"), a, REFUND, rid("r"), ZERO, "reason text"), op)
    ledger.disburse("p", [(right, 100)])
    ledger.send(fn.recordCorrection(rid("c5"), a, DISBURSEMENT, rid("p"), ZERO, "wrong purpose"), op)


# ----------------------------------------------------------------- pause


def test_a_paused_contract_takes_no_writes(ledger: Ledger) -> None:
    fn, op = ledger.fn, ledger.op_a
    donation = ledger.donate("d", 100)
    ledger.disburse("p", [(donation, 10)])
    ledger.expect_error(
        fn.pause(), ledger.stranger, "AccessControlUnauthorizedAccount", ledger.stranger, PAUSER_ROLE
    )
    ledger.expect_error(fn.pause(), op, "AccessControlUnauthorizedAccount", op, PAUSER_ROLE)
    ledger.send(fn.pause(), ledger.admin)
    assert fn.paused().call()
    writes = [
        (fn.registerCharity(rid("c"), "C", ZERO), ledger.admin),
        (fn.addOperator(ledger.charity_a, ledger.stranger), ledger.admin),
        (fn.removeOperator(ledger.charity_a, op), ledger.admin),
        (fn.createCampaign(rid("k"), ledger.charity_a, "K", b"CNY", 1, ZERO), op),
        (fn.closeCampaign(ledger.campaign_a), op),
        (fn.recordDonation(ledger.donation(rid("d2"), 1)), op),
        (fn.recordDonations([ledger.donation(rid("d2"), 1)]), op),
        (fn.refundDonation(rid("r"), donation, 1, "x"), op),
        (fn.recordDisbursement(rid("q"), ledger.campaign_a, 1, "R", "P", ZERO, [(donation, 1)]), op),
        (fn.anchorEvidence(rid("p"), rid("doc")), op),
        (fn.linkRedactedCopy(rid("p"), rid("doc"), rid("copy")), op),
        (fn.withdrawEvidence(rid("p"), rid("doc"), "x"), op),
        (fn.sealAccessLog(1, rid("root"), 1, rid("last")), ledger.admin),
        (fn.recordCorrection(rid("c"), ledger.charity_a, DONATION, donation, ZERO, "x"), op),
    ]
    for call, sender in writes:
        ledger.expect_error(call, sender, "EnforcedPause")
    # Reads still work while paused.
    assert ledger.donation_view(donation) == (ledger.campaign_a, 100, 10, 0, 90)
    ledger.send(fn.unpause(), ledger.admin)
    ledger.donate("d3", 1)


# ----------------------------------------------------------------- views


def test_views_reject_unknown_records(ledger: Ledger) -> None:
    for call, error in (
        (ledger.fn.donationOf(rid("nope")), ("DonationNotFound", rid("nope"))),
        (ledger.fn.campaignOf(rid("nope")), ("CampaignNotFound", rid("nope"))),
        (ledger.fn.disbursementOf(rid("nope")), ("DisbursementNotFound", rid("nope"))),
        (ledger.fn.refundOf(rid("nope")), ("RecordNotFound", REFUND, rid("nope"))),
    ):
        ledger.expect_view_error(call, *error)
