// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {ICharityLedger} from "../../contracts/ICharityLedger.sol";
import {LedgerTest} from "./LedgerTest.sol";

/// @notice Every rule of the ledger, each with its exact custom error and arguments (the
/// Solidity twin of tests/contracts/test_rules.py).
contract CharityLedgerRulesTest is LedgerTest {
    bytes32 private constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    bytes32 private constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    // ------------------------------------------------------------ deployment

    function test_DeploymentBlockIsWhereTheContractWasCreated() public view {
        vm.assertEq(ledger.deploymentBlock(), block.number, "deployment block");
        vm.assertTrue(ledger.hasRole(REGISTRAR_ROLE, admin), "admin is registrar");
        vm.assertTrue(ledger.hasRole(PAUSER_ROLE, admin), "admin is pauser");
    }

    // ---------------------------------------------- charities and operators

    function test_RegistrarRegistersACharityWithItsOperator() public {
        bytes32 charity = _id("charity-c");
        vm.expectEmit();
        emit ICharityLedger.CharityRegistered(charity, "Charity C", _id("meta"), admin, false);
        vm.prank(admin);
        ledger.registerCharity(charity, "Charity C", _id("meta"));

        vm.expectEmit();
        emit ICharityLedger.OperatorAdded(charity, stranger, admin, false);
        vm.prank(admin);
        ledger.addOperator(charity, stranger);
        vm.assertTrue(ledger.isCharityRegistered(charity), "registered");
        vm.assertTrue(ledger.isOperator(charity, stranger), "operator of C");
        vm.assertFalse(ledger.isOperator(CHARITY_A, stranger), "not operator of A");
    }

    function test_OnlyRegistrarsRegisterCharitiesAndOperators() public {
        address[2] memory senders = [stranger, opA];
        for (uint256 i = 0; i < senders.length; ++i) {
            bytes memory denied = abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector,
                senders[i],
                REGISTRAR_ROLE
            );
            vm.prank(senders[i]);
            _expectError(denied);
            ledger.registerCharity(_id("x"), "X", bytes32(0));
            vm.prank(senders[i]);
            _expectError(denied);
            ledger.addOperator(CHARITY_A, senders[i]);
            vm.prank(senders[i]);
            _expectError(denied);
            ledger.removeOperator(CHARITY_A, opA);
        }
    }

    function test_CharityIdsAreUniqueAndNonZeroAndNamesBounded() public {
        vm.startPrank(admin);
        _expectError(abi.encodeWithSelector(ICharityLedger.CharityAlreadyRegistered.selector, CHARITY_A));
        ledger.registerCharity(CHARITY_A, "Again", bytes32(0));
        _expectError(abi.encodeWithSelector(ICharityLedger.ZeroId.selector));
        ledger.registerCharity(bytes32(0), "Zero", bytes32(0));
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidTextLength.selector, 0, 200));
        ledger.registerCharity(_id("e"), "", bytes32(0));
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidTextLength.selector, 201, 200));
        ledger.registerCharity(_id("l"), string(new bytes(201)), bytes32(0));
        ledger.registerCharity(_id("l"), string(new bytes(200)), bytes32(0));
        vm.stopPrank();
    }

    function test_OperatorChangesAreChecked() public {
        vm.startPrank(admin);
        _expectError(abi.encodeWithSelector(ICharityLedger.CharityNotFound.selector, _id("nobody")));
        ledger.addOperator(_id("nobody"), stranger);
        _expectError(abi.encodeWithSelector(ICharityLedger.CharityNotFound.selector, _id("nobody")));
        ledger.removeOperator(_id("nobody"), stranger);
        _expectError(abi.encodeWithSelector(ICharityLedger.OperatorAlreadyAdded.selector, CHARITY_A, opA));
        ledger.addOperator(CHARITY_A, opA);
        _expectError(abi.encodeWithSelector(ICharityLedger.OperatorNotFound.selector, CHARITY_A, stranger));
        ledger.removeOperator(CHARITY_A, stranger);
        vm.stopPrank();
    }

    function test_ARemovedOperatorCanNoLongerWrite() public {
        vm.expectEmit();
        emit ICharityLedger.OperatorRemoved(CHARITY_A, opA, admin);
        vm.prank(admin);
        ledger.removeOperator(CHARITY_A, opA);
        vm.assertFalse(ledger.isOperator(CHARITY_A, opA), "removed");
        vm.prank(opA);
        _expectError(abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, CHARITY_A, opA));
        ledger.recordDonation(_input(_id("d"), 100));
    }

    // ------------------------------------------------------------- campaigns

    function test_OperatorCreatesAndClosesACampaign() public {
        bytes32 campaign = _id("campaign-new");
        vm.expectEmit();
        emit ICharityLedger.CampaignCreated(campaign, CHARITY_A, "Winter coats", "USD", 5_000_00, _id("m"), opA);
        vm.prank(opA);
        ledger.createCampaign(campaign, CHARITY_A, "Winter coats", "USD", 5_000_00, _id("m"));
        ICharityLedger.CampaignView memory view_ = ledger.campaignOf(campaign);
        vm.assertEq(view_.charityId, CHARITY_A, "charity");
        vm.assertEq(bytes32(view_.currency), bytes32(bytes3("USD")), "currency");
        vm.assertEq(view_.goal, 5_000_00, "goal");
        vm.assertFalse(view_.closed, "open");
        _assertCampaign(campaign, [uint256(0), 0, 0, 0, 0, 0]);

        vm.expectEmit();
        emit ICharityLedger.CampaignClosed(campaign, CHARITY_A, opA);
        vm.prank(opA);
        ledger.closeCampaign(campaign);
        vm.assertTrue(ledger.campaignOf(campaign).closed, "closed");
        vm.prank(opA);
        _expectError(abi.encodeWithSelector(ICharityLedger.CampaignIsClosed.selector, campaign));
        ledger.closeCampaign(campaign);
    }

    function test_CampaignRules() public {
        bytes32 fresh = _id("c-new");
        vm.startPrank(opA);
        _expectError(abi.encodeWithSelector(ICharityLedger.CampaignAlreadyExists.selector, CAMPAIGN_A));
        ledger.createCampaign(CAMPAIGN_A, CHARITY_A, "Dup", "CNY", 1, bytes32(0));
        _expectError(abi.encodeWithSelector(ICharityLedger.ZeroId.selector));
        ledger.createCampaign(bytes32(0), CHARITY_A, "Zero", "CNY", 1, bytes32(0));
        _expectError(abi.encodeWithSelector(ICharityLedger.CharityNotFound.selector, _id("nobody")));
        ledger.createCampaign(fresh, _id("nobody"), "N", "CNY", 1, bytes32(0));
        bytes3[3] memory bad = [bytes3("cny"), bytes3("C1Y"), bytes3(0)];
        for (uint256 i = 0; i < bad.length; ++i) {
            _expectError(abi.encodeWithSelector(ICharityLedger.InvalidCurrency.selector, bad[i]));
            ledger.createCampaign(fresh, CHARITY_A, "N", bad[i], 1, bytes32(0));
        }
        uint256[2] memory goals = [uint256(0), MAX_GOAL + 1];
        for (uint256 i = 0; i < goals.length; ++i) {
            _expectError(abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, goals[i], MAX_GOAL));
            ledger.createCampaign(fresh, CHARITY_A, "N", "CNY", goals[i], bytes32(0));
        }
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidTextLength.selector, 0, 200));
        ledger.createCampaign(fresh, CHARITY_A, "", "CNY", 1, bytes32(0));
        _expectError(abi.encodeWithSelector(ICharityLedger.CampaignNotFound.selector, fresh));
        ledger.closeCampaign(fresh);
        ledger.createCampaign(fresh, CHARITY_A, "N", "CNY", MAX_GOAL, bytes32(0));
        vm.stopPrank();
    }

    function test_OnlyTheCharitysOperatorsManageItsCampaigns() public {
        address[3] memory senders = [stranger, opB, admin];
        for (uint256 i = 0; i < senders.length; ++i) {
            bytes memory denied = abi.encodeWithSelector(
                ICharityLedger.NotCharityOperator.selector,
                CHARITY_A,
                senders[i]
            );
            vm.prank(senders[i]);
            _expectError(denied);
            ledger.createCampaign(_id("c"), CHARITY_A, "N", "CNY", 1, bytes32(0));
            vm.prank(senders[i]);
            _expectError(denied);
            ledger.closeCampaign(CAMPAIGN_A);
        }
    }

    // ------------------------------------------------------------- donations

    function test_OperatorRecordsADonation() public {
        vm.expectEmit();
        emit ICharityLedger.DonationRecorded(_id("d1"), CAMPAIGN_A, 12_345, DONOR, "bank", bytes32(0), opA);
        _donate("d1", 12_345);
        _assertDonation(_id("d1"), CAMPAIGN_A, 12_345, 0, 0);
        _assertCampaign(CAMPAIGN_A, [uint256(12_345), 0, 0, 12_345, 1, 0]);
    }

    function test_DonationRules() public {
        _donate("d1", 100);
        vm.startPrank(opA);
        _expectError(abi.encodeWithSelector(ICharityLedger.DonationAlreadyExists.selector, _id("d1")));
        ledger.recordDonation(_input(_id("d1"), 5));
        _expectError(abi.encodeWithSelector(ICharityLedger.ZeroId.selector));
        ledger.recordDonation(_input(bytes32(0), 5));
        uint256[2] memory amounts = [uint256(0), MAX_AMOUNT + 1];
        for (uint256 i = 0; i < amounts.length; ++i) {
            _expectError(abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, amounts[i], MAX_AMOUNT));
            ledger.recordDonation(_input(_id("d2"), amounts[i]));
        }
        ICharityLedger.DonationInput memory noDonor = _input(_id("d2"), 5);
        noDonor.donorCommitment = bytes32(0);
        _expectError(abi.encodeWithSelector(ICharityLedger.ZeroDonorCommitment.selector, _id("d2")));
        ledger.recordDonation(noDonor);
        _expectError(abi.encodeWithSelector(ICharityLedger.CampaignNotFound.selector, _id("nope")));
        ledger.recordDonation(_input(_id("d2"), 5, _id("nope")));
        ledger.recordDonation(_input(_id("d-max"), MAX_AMOUNT));
        vm.stopPrank();
    }

    function test_OnlyTheCharitysOperatorsRecordItsDonations() public {
        address[3] memory senders = [stranger, opB, admin];
        for (uint256 i = 0; i < senders.length; ++i) {
            vm.prank(senders[i]);
            _expectError(abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, CHARITY_A, senders[i]));
            ledger.recordDonation(_input(_id("d"), 5));
        }
    }

    function test_ClosedCampaignsTakeNoNewDonationsButStillRefundAndSpend() public {
        bytes32 before = _donate("before", 100);
        vm.startPrank(opA);
        ledger.closeCampaign(CAMPAIGN_A);
        _expectError(abi.encodeWithSelector(ICharityLedger.CampaignIsClosed.selector, CAMPAIGN_A));
        ledger.recordDonation(_input(_id("after"), 5));
        ICharityLedger.DonationInput[] memory batch = new ICharityLedger.DonationInput[](1);
        batch[0] = _input(_id("after"), 5);
        _expectError(abi.encodeWithSelector(ICharityLedger.CampaignIsClosed.selector, CAMPAIGN_A));
        ledger.recordDonations(batch);
        ledger.refundDonation(_id("r"), before, 10, "donor asked");
        vm.stopPrank();
        _disburse("x", _alloc(before, 90));
        _assertCampaign(CAMPAIGN_A, [uint256(100), 10, 90, 0, 1, 1]);
    }

    function test_BatchRecordsEveryDonationAtomically() public {
        ICharityLedger.DonationInput[] memory batch = new ICharityLedger.DonationInput[](3);
        for (uint256 i = 0; i < 3; ++i) {
            batch[i] = _input(_id("b", i), 100 + i);
            vm.expectEmit();
            emit ICharityLedger.DonationRecorded(_id("b", i), CAMPAIGN_A, 100 + i, DONOR, "bank", bytes32(0), opA);
        }
        vm.startPrank(opA);
        ledger.recordDonations(batch);
        _assertCampaign(CAMPAIGN_A, [uint256(303), 0, 0, 303, 3, 0]);

        // One bad donation anywhere in a batch rejects the whole batch.
        ICharityLedger.DonationInput[] memory bad = new ICharityLedger.DonationInput[](2);
        bad[0] = _input(_id("ok-1"), 1);
        bad[1] = _input(_id("b", 1), 1);
        _expectError(abi.encodeWithSelector(ICharityLedger.DonationAlreadyExists.selector, _id("b", 1)));
        ledger.recordDonations(bad);
        bad[0] = _input(_id("t"), 1);
        bad[1] = _input(_id("t"), 1);
        _expectError(abi.encodeWithSelector(ICharityLedger.DonationAlreadyExists.selector, _id("t")));
        ledger.recordDonations(bad);
        vm.stopPrank();
        _assertCampaign(CAMPAIGN_A, [uint256(303), 0, 0, 303, 3, 0]);
        _expectError(abi.encodeWithSelector(ICharityLedger.DonationNotFound.selector, _id("ok-1")));
        ledger.donationOf(_id("ok-1"));
    }

    function test_BatchSizeIsBoundedAndEveryCampaignIsChecked() public {
        vm.startPrank(opA);
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidListLength.selector, 0, MAX_LIST));
        ledger.recordDonations(new ICharityLedger.DonationInput[](0));
        ICharityLedger.DonationInput[] memory tooMany = new ICharityLedger.DonationInput[](MAX_LIST + 1);
        for (uint256 i = 0; i < tooMany.length; ++i) tooMany[i] = _input(_id("m", i), 1);
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidListLength.selector, MAX_LIST + 1, MAX_LIST));
        ledger.recordDonations(tooMany);

        ICharityLedger.DonationInput[] memory mixed = new ICharityLedger.DonationInput[](2);
        mixed[0] = _input(_id("a1"), 1);
        mixed[1] = _input(_id("b1"), 1, CAMPAIGN_B);
        _expectError(abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, CHARITY_B, opA));
        ledger.recordDonations(mixed);

        // A batch may span campaigns of the caller's charity.
        bytes32 second = _id("campaign-a2");
        ledger.createCampaign(second, CHARITY_A, "A2", "CNY", 1e6, bytes32(0));
        mixed[0] = _input(_id("x1"), 7);
        mixed[1] = _input(_id("x2"), 8, second);
        ledger.recordDonations(mixed);
        vm.stopPrank();
        _assertDonation(_id("x2"), second, 8, 0, 0);
        _assertDonation(_id("x1"), CAMPAIGN_A, 7, 0, 0);
    }

    // --------------------------------------------------------------- refunds

    function test_RefundsNeverExceedWhatIsLeftOfADonation() public {
        bytes32 donation = _donate("d", 1_000);
        _disburse("spend", _alloc(donation, 600));
        vm.startPrank(opA);
        _expectError(abi.encodeWithSelector(ICharityLedger.DonationOverdrawn.selector, donation, 400, 401));
        ledger.refundDonation(_id("r1"), donation, 401, "too much");
        vm.expectEmit();
        emit ICharityLedger.DonationRefunded(_id("r1"), donation, CAMPAIGN_A, 150, 150, "donor asked", opA);
        ledger.refundDonation(_id("r1"), donation, 150, "donor asked");
        _expectError(abi.encodeWithSelector(ICharityLedger.DonationOverdrawn.selector, donation, 250, 251));
        ledger.refundDonation(_id("r2"), donation, 251, "x");
        ledger.refundDonation(_id("r2"), donation, 250, "rest");
        vm.stopPrank();
        _assertDonation(donation, CAMPAIGN_A, 1_000, 600, 400);
        (bytes32 refunded, uint256 amount) = ledger.refundOf(_id("r2"));
        vm.assertEq(refunded, donation, "refund's donation");
        vm.assertEq(amount, 250, "refund's amount");
        _assertCampaign(CAMPAIGN_A, [uint256(1_000), 400, 600, 0, 1, 1]);
    }

    function test_RefundRules() public {
        bytes32 donation = _donate("d", 100);
        vm.startPrank(opA);
        ledger.refundDonation(_id("r"), donation, 1, "x");
        _expectError(abi.encodeWithSelector(ICharityLedger.RefundAlreadyExists.selector, _id("r")));
        ledger.refundDonation(_id("r"), donation, 1, "x");
        _expectError(abi.encodeWithSelector(ICharityLedger.ZeroId.selector));
        ledger.refundDonation(bytes32(0), donation, 1, "x");
        _expectError(abi.encodeWithSelector(ICharityLedger.DonationNotFound.selector, _id("nope")));
        ledger.refundDonation(_id("r2"), _id("nope"), 1, "x");
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, 0, MAX_AMOUNT));
        ledger.refundDonation(_id("r2"), donation, 0, "x");
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidTextLength.selector, 0, 256));
        ledger.refundDonation(_id("r2"), donation, 1, "");
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidTextLength.selector, 257, 256));
        ledger.refundDonation(_id("r2"), donation, 1, string(new bytes(257)));
        vm.stopPrank();
        address[2] memory senders = [opB, stranger];
        for (uint256 i = 0; i < senders.length; ++i) {
            vm.prank(senders[i]);
            _expectError(abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, CHARITY_A, senders[i]));
            ledger.refundDonation(_id("r2"), donation, 1, "x");
        }
    }

    // --------------------------------------------------------- disbursements

    function test_DisbursementWithAllocationsAndEvidence() public {
        bytes32 d1 = _donate("d1", 500);
        bytes32 d2 = _donate("d2", 300);
        bytes32 pay = _id("pay");
        vm.expectEmit();
        emit ICharityLedger.DisbursementRecorded(pay, CAMPAIGN_A, 620, "CN-ORG-1", "school-meals", 2, opA);
        vm.expectEmit();
        emit ICharityLedger.DonationAllocated(pay, d1, 500, 500);
        vm.expectEmit();
        emit ICharityLedger.DonationAllocated(pay, d2, 120, 120);
        vm.expectEmit();
        emit ICharityLedger.EvidenceAnchored(pay, _id("invoice"), 1, opA);
        vm.prank(opA);
        ledger.recordDisbursement(pay, CAMPAIGN_A, 620, "CN-ORG-1", "school-meals", _id("invoice"), _alloc(d1, 500, d2, 120));

        ICharityLedger.DisbursementView memory view_ = ledger.disbursementOf(pay);
        vm.assertEq(view_.campaignId, CAMPAIGN_A, "disbursement's campaign");
        vm.assertEq(view_.amount, 620, "disbursement's amount");
        vm.assertEq(view_.allocationCount, 2, "allocationCount");
        vm.assertEq(view_.evidenceCount, 1, "evidenceCount");
        _assertDonation(d1, CAMPAIGN_A, 500, 500, 0);
        _assertDonation(d2, CAMPAIGN_A, 300, 120, 0);
        _assertCampaign(CAMPAIGN_A, [uint256(800), 0, 620, 180, 2, 1]);
    }

    function test_AllocationsNeverExceedADonation() public {
        bytes32 d1 = _donate("d1", 500);
        bytes32 d2 = _donate("d2", 300);
        vm.prank(opA);
        ledger.refundDonation(_id("r"), d1, 100, "x");
        vm.prank(opA);
        _expectError(abi.encodeWithSelector(ICharityLedger.DonationOverdrawn.selector, d1, 400, 401));
        ledger.recordDisbursement(_id("p"), CAMPAIGN_A, 500, "R", "P", bytes32(0), _alloc(d1, 401, d2, 99));
        _disburse("p1", _alloc(d1, 400));
        vm.prank(opA);
        _expectError(abi.encodeWithSelector(ICharityLedger.DonationOverdrawn.selector, d1, 0, 1));
        ledger.recordDisbursement(_id("p2"), CAMPAIGN_A, 1, "R", "P", bytes32(0), _alloc(d1, 1));
    }

    function test_AllocationsDrawOnlyOnDonationsOfTheSameCampaign() public {
        bytes32 other = _id("campaign-a2");
        vm.prank(opA);
        ledger.createCampaign(other, CHARITY_A, "A2", "CNY", 1e6, bytes32(0));
        bytes32 mine = _donate("mine", 100);
        bytes32 theirs = _donate("theirs", 100, other, opA);
        vm.prank(opA);
        _expectError(abi.encodeWithSelector(ICharityLedger.AllocationCampaignMismatch.selector, theirs, other, CAMPAIGN_A));
        ledger.recordDisbursement(_id("p"), CAMPAIGN_A, 100, "R", "P", bytes32(0), _alloc(mine, 50, theirs, 50));
        bytes32 bDonation = _donate("b", 100, CAMPAIGN_B, opB);
        vm.prank(opA);
        _expectError(
            abi.encodeWithSelector(ICharityLedger.AllocationCampaignMismatch.selector, bDonation, CAMPAIGN_B, CAMPAIGN_A)
        );
        ledger.recordDisbursement(_id("p"), CAMPAIGN_A, 100, "R", "P", bytes32(0), _alloc(bDonation, 100));
    }

    function test_ACampaignNeverPaysOutMoreThanItReceivedNetOfRefunds() public {
        bytes32 d1 = _donate("d1", 1_000);
        vm.prank(opA);
        ledger.refundDonation(_id("r"), d1, 300, "x");
        _disburse("p1", _alloc(d1, 500));
        vm.prank(opA);
        _expectError(abi.encodeWithSelector(ICharityLedger.CampaignOverdrawn.selector, CAMPAIGN_A, 200, 201));
        ledger.recordDisbursement(_id("p2"), CAMPAIGN_A, 201, "R", "P", bytes32(0), _alloc(d1, 201));
        _disburse("p2", _alloc(d1, 200));
        _assertCampaign(CAMPAIGN_A, [uint256(1_000), 300, 700, 0, 1, 2]);
    }

    function test_DisbursementRules() public {
        bytes32 d1 = _donate("d1", 500);
        bytes32 d2 = _donate("d2", 500);
        bytes32 p = _id("p");
        vm.startPrank(opA);
        _expectError(abi.encodeWithSelector(ICharityLedger.AllocationSumMismatch.selector, 300, 200));
        ledger.recordDisbursement(p, CAMPAIGN_A, 300, "R", "P", bytes32(0), _alloc(d1, 100, d2, 100));
        _expectError(abi.encodeWithSelector(ICharityLedger.DuplicateAllocation.selector, d1));
        ledger.recordDisbursement(p, CAMPAIGN_A, 200, "R", "P", bytes32(0), _alloc(d1, 100, d1, 100));
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidListLength.selector, 0, MAX_LIST));
        ledger.recordDisbursement(p, CAMPAIGN_A, 100, "R", "P", bytes32(0), new ICharityLedger.Allocation[](0));
        _expectError(abi.encodeWithSelector(ICharityLedger.DonationNotFound.selector, _id("nope")));
        ledger.recordDisbursement(p, CAMPAIGN_A, 100, "R", "P", bytes32(0), _alloc(_id("nope"), 100));
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, 0, MAX_AMOUNT));
        ledger.recordDisbursement(p, CAMPAIGN_A, 100, "R", "P", bytes32(0), _alloc(d1, 100, d2, 0));
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, 0, MAX_AMOUNT));
        ledger.recordDisbursement(p, CAMPAIGN_A, 0, "R", "P", bytes32(0), _alloc(d1, 0));
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidTextLength.selector, 0, 128));
        ledger.recordDisbursement(p, CAMPAIGN_A, 10, "", "P", bytes32(0), _alloc(d1, 10));
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidTextLength.selector, 129, 128));
        ledger.recordDisbursement(p, CAMPAIGN_A, 10, "R", string(new bytes(129)), bytes32(0), _alloc(d1, 10));
        _expectError(abi.encodeWithSelector(ICharityLedger.CampaignNotFound.selector, _id("nope")));
        ledger.recordDisbursement(p, _id("nope"), 10, "R", "P", bytes32(0), _alloc(d1, 10));
        ICharityLedger.Allocation[] memory tooMany = new ICharityLedger.Allocation[](MAX_LIST + 1);
        for (uint256 i = 0; i < tooMany.length; ++i) tooMany[i] = ICharityLedger.Allocation(d1, 1);
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidListLength.selector, MAX_LIST + 1, MAX_LIST));
        ledger.recordDisbursement(p, CAMPAIGN_A, MAX_LIST + 1, "R", "P", bytes32(0), tooMany);
        ledger.recordDisbursement(p, CAMPAIGN_A, 10, "R", "P", bytes32(0), _alloc(d1, 10));
        _expectError(abi.encodeWithSelector(ICharityLedger.DisbursementAlreadyExists.selector, p));
        ledger.recordDisbursement(p, CAMPAIGN_A, 10, "R", "P", bytes32(0), _alloc(d1, 10));
        _expectError(abi.encodeWithSelector(ICharityLedger.ZeroId.selector));
        ledger.recordDisbursement(bytes32(0), CAMPAIGN_A, 10, "R", "P", bytes32(0), _alloc(d1, 10));
        vm.stopPrank();
        address[2] memory senders = [opB, stranger];
        for (uint256 i = 0; i < senders.length; ++i) {
            vm.prank(senders[i]);
            _expectError(abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, CHARITY_A, senders[i]));
            ledger.recordDisbursement(_id("q"), CAMPAIGN_A, 10, "R", "P", bytes32(0), _alloc(d1, 10));
        }
    }

    /// @notice The transient-storage guard against a donation named twice is cleared: a
    /// rejected duplicate, and an accepted disbursement, leave no trace for the next one in
    /// the same transaction.
    function test_TheDuplicateGuardLeavesNoTraceWithinATransaction() public {
        bytes32 d1 = _donate("d1", 500);
        bytes32 d2 = _donate("d2", 500);
        vm.startPrank(opA);
        _expectError(abi.encodeWithSelector(ICharityLedger.DuplicateAllocation.selector, d1));
        ledger.recordDisbursement(_id("dup"), CAMPAIGN_A, 200, "R", "P", bytes32(0), _alloc(d1, 100, d1, 100));
        ledger.recordDisbursement(_id("p1"), CAMPAIGN_A, 10, "R", "P", bytes32(0), _alloc(d1, 5, d2, 5));
        ledger.recordDisbursement(_id("p2"), CAMPAIGN_A, 10, "R", "P", bytes32(0), _alloc(d1, 5, d2, 5));
        vm.stopPrank();
        _assertDonation(d1, CAMPAIGN_A, 500, 10, 0);
        _assertDonation(d2, CAMPAIGN_A, 500, 10, 0);
    }

    // -------------------------------------------------------------- evidence

    function test_ARedactedCopyLinksToAnAnchoredOriginalAndAWithdrawalKeepsTheAnchor() public {
        bytes32 donation = _donate("d", 100);
        bytes32 p = _disburse("p", _alloc(donation, 100));
        vm.startPrank(opA);
        ledger.anchorEvidence(p, _id("original"));
        vm.expectEmit();
        emit ICharityLedger.RedactedCopyLinked(p, _id("original"), _id("copy"), opA);
        ledger.linkRedactedCopy(p, _id("original"), _id("copy"));
        (bool anchored, bool withdrawn, bytes32 original) = ledger.evidenceStatus(p, _id("copy"));
        vm.assertTrue(anchored && !withdrawn && original == _id("original"), "copy linked");
        _expectError(abi.encodeWithSelector(ICharityLedger.RedactedCopyAlreadyLinked.selector, p, _id("copy")));
        ledger.linkRedactedCopy(p, _id("original"), _id("copy"));
        _expectError(abi.encodeWithSelector(ICharityLedger.EvidenceNotAnchored.selector, p, _id("none")));
        ledger.linkRedactedCopy(p, _id("none"), _id("copy-2"));
        vm.expectEmit();
        emit ICharityLedger.EvidenceWithdrawn(p, _id("original"), "PIPL erasure", opA);
        ledger.withdrawEvidence(p, _id("original"), "PIPL erasure");
        (anchored, withdrawn, original) = ledger.evidenceStatus(p, _id("original"));
        vm.assertTrue(anchored && withdrawn && original == bytes32(0), "original withdrawn, still anchored");
        _expectError(
            abi.encodeWithSelector(ICharityLedger.EvidenceAlreadyWithdrawn.selector, p, _id("original"))
        );
        ledger.withdrawEvidence(p, _id("original"), "again");
        vm.stopPrank();
        vm.prank(stranger);
        _expectError(abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, CHARITY_A, stranger));
        ledger.withdrawEvidence(p, _id("copy"), "x");
    }

    function test_TheAccessLogIsSealedOnceADayByTheSealer() public {
        vm.prank(admin);
        ledger.sealAccessLog(20_000, _id("root"), 3, _id("last"));
        (bytes32 root, uint64 rows, bytes32 last) = ledger.accessLogSeal(20_000);
        vm.assertTrue(root == _id("root") && rows == 3 && last == _id("last"), "sealed");
        vm.prank(admin);
        _expectError(abi.encodeWithSelector(ICharityLedger.AccessLogAlreadySealed.selector, uint64(20_000)));
        ledger.sealAccessLog(20_000, _id("root-2"), 3, _id("last"));
        bytes32 role = ledger.LOG_SEALER_ROLE();
        vm.prank(opA);
        _expectError(abi.encodeWithSignature("AccessControlUnauthorizedAccount(address,bytes32)", opA, role));
        ledger.sealAccessLog(20_001, _id("root"), 1, _id("last"));
    }

    function test_EvidenceIsAnchoredOncePerDocumentAndOnlyByTheCharity() public {
        bytes32 donation = _donate("d", 100);
        bytes32 p = _disburse("p", _alloc(donation, 100));
        vm.startPrank(opA);
        vm.expectEmit();
        emit ICharityLedger.EvidenceAnchored(p, _id("photo"), 1, opA);
        ledger.anchorEvidence(p, _id("photo"));
        ledger.anchorEvidence(p, _id("invoice"));
        vm.assertEq(ledger.disbursementOf(p).evidenceCount, 2, "evidenceCount");
        vm.assertTrue(ledger.isEvidenceAnchored(p, _id("photo")), "photo anchored");
        vm.assertFalse(ledger.isEvidenceAnchored(p, _id("video")), "video not anchored");
        _expectError(abi.encodeWithSelector(ICharityLedger.EvidenceAlreadyAnchored.selector, p, _id("photo")));
        ledger.anchorEvidence(p, _id("photo"));
        _expectError(abi.encodeWithSelector(ICharityLedger.ZeroId.selector));
        ledger.anchorEvidence(p, bytes32(0));
        _expectError(abi.encodeWithSelector(ICharityLedger.DisbursementNotFound.selector, _id("nope")));
        ledger.anchorEvidence(_id("nope"), _id("x"));
        vm.stopPrank();
        address[2] memory senders = [opB, stranger];
        for (uint256 i = 0; i < senders.length; ++i) {
            vm.prank(senders[i]);
            _expectError(abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, CHARITY_A, senders[i]));
            ledger.anchorEvidence(p, _id("x"));
        }
    }

    // ----------------------------------------------------------- corrections

    function test_CorrectionsReferenceAnExistingRecordOfTheCharity() public {
        bytes32 wrong = _donate("wrong", 1_000);
        bytes32 right = _donate("right", 100);
        ICharityLedger.RecordKind donation = ICharityLedger.RecordKind.Donation;
        ICharityLedger.RecordKind refund = ICharityLedger.RecordKind.Refund;
        vm.startPrank(opA);
        vm.expectEmit();
        emit ICharityLedger.CorrectionRecorded(_id("c1"), CHARITY_A, wrong, donation, right, "amount mis-keyed", opA);
        ledger.recordCorrection(_id("c1"), CHARITY_A, donation, wrong, right, "amount mis-keyed");
        _expectError(abi.encodeWithSelector(ICharityLedger.CorrectionAlreadyExists.selector, _id("c1")));
        ledger.recordCorrection(_id("c1"), CHARITY_A, donation, wrong, bytes32(0), "x");
        _expectError(abi.encodeWithSelector(ICharityLedger.ZeroId.selector));
        ledger.recordCorrection(bytes32(0), CHARITY_A, donation, wrong, bytes32(0), "x");
        _expectError(abi.encodeWithSelector(ICharityLedger.CharityNotFound.selector, _id("nobody")));
        ledger.recordCorrection(_id("c2"), _id("nobody"), donation, wrong, bytes32(0), "x");
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidTextLength.selector, 0, 256));
        ledger.recordCorrection(_id("c2"), CHARITY_A, donation, wrong, bytes32(0), "");
        _expectError(abi.encodeWithSelector(ICharityLedger.RecordNotFound.selector, donation, _id("nope")));
        ledger.recordCorrection(_id("c2"), CHARITY_A, donation, _id("nope"), bytes32(0), "x");
        _expectError(abi.encodeWithSelector(ICharityLedger.RecordNotFound.selector, donation, _id("nope")));
        ledger.recordCorrection(_id("c2"), CHARITY_A, donation, wrong, _id("nope"), "x");
        _expectError(abi.encodeWithSelector(ICharityLedger.RecordNotFound.selector, refund, wrong));
        ledger.recordCorrection(_id("c2"), CHARITY_A, refund, wrong, bytes32(0), "x");
        vm.stopPrank();

        bytes32 theirs = _donate("theirs", 5, CAMPAIGN_B, opB);
        vm.startPrank(opA);
        _expectError(abi.encodeWithSelector(ICharityLedger.RecordNotFound.selector, donation, theirs));
        ledger.recordCorrection(_id("c2"), CHARITY_A, donation, theirs, bytes32(0), "x");
        _expectError(abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, CHARITY_B, opA));
        ledger.recordCorrection(_id("c2"), CHARITY_B, donation, theirs, bytes32(0), "x");
        ledger.recordCorrection(_id("c3"), CHARITY_A, ICharityLedger.RecordKind.Campaign, CAMPAIGN_A, bytes32(0), "goal typo");
        ledger.refundDonation(_id("r"), wrong, 900, "correction: amount mis-keyed");
        ledger.recordCorrection(_id("c4"), CHARITY_A, refund, _id("r"), bytes32(0), "reason text");
        vm.stopPrank();
        bytes32 p = _disburse("p", _alloc(right, 100));
        vm.prank(opA);
        ledger.recordCorrection(_id("c5"), CHARITY_A, ICharityLedger.RecordKind.Disbursement, p, bytes32(0), "wrong purpose");
        // Corrections never change balances.
        _assertDonation(wrong, CAMPAIGN_A, 1_000, 0, 900);
        _assertCampaign(CAMPAIGN_A, [uint256(1_100), 900, 100, 100, 2, 1]);
    }

    // ----------------------------------------------------------------- pause

    function test_APausedContractTakesNoWrites() public {
        bytes32 donation = _donate("d", 100);
        bytes32 p = _disburse("p", _alloc(donation, 10));
        address[2] memory senders = [stranger, opA];
        for (uint256 i = 0; i < senders.length; ++i) {
            vm.prank(senders[i]);
            _expectError(
                abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, senders[i], PAUSER_ROLE)
            );
            ledger.pause();
        }
        vm.prank(admin);
        ledger.pause();
        vm.assertTrue(ledger.paused(), "paused");

        bytes memory paused = abi.encodeWithSelector(Pausable.EnforcedPause.selector);
        vm.startPrank(admin);
        _expectError(paused);
        ledger.registerCharity(_id("c"), "C", bytes32(0));
        _expectError(paused);
        ledger.addOperator(CHARITY_A, stranger);
        _expectError(paused);
        ledger.removeOperator(CHARITY_A, opA);
        vm.stopPrank();
        ICharityLedger.DonationInput[] memory batch = new ICharityLedger.DonationInput[](1);
        batch[0] = _input(_id("d2"), 1);
        vm.startPrank(opA);
        _expectError(paused);
        ledger.createCampaign(_id("k"), CHARITY_A, "K", "CNY", 1, bytes32(0));
        _expectError(paused);
        ledger.closeCampaign(CAMPAIGN_A);
        _expectError(paused);
        ledger.recordDonation(batch[0]);
        _expectError(paused);
        ledger.recordDonations(batch);
        _expectError(paused);
        ledger.refundDonation(_id("r"), donation, 1, "x");
        _expectError(paused);
        ledger.recordDisbursement(_id("q"), CAMPAIGN_A, 1, "R", "P", bytes32(0), _alloc(donation, 1));
        _expectError(paused);
        ledger.anchorEvidence(p, _id("doc"));
        _expectError(paused);
        ledger.recordCorrection(_id("c"), CHARITY_A, ICharityLedger.RecordKind.Donation, donation, bytes32(0), "x");
        vm.stopPrank();

        // Reads still work while paused; writes again after unpausing.
        _assertDonation(donation, CAMPAIGN_A, 100, 10, 0);
        vm.prank(admin);
        ledger.unpause();
        _donate("d3", 1);
    }

    // ----------------------------------------------------------------- views

    function test_ViewsRejectUnknownRecords() public {
        _expectError(abi.encodeWithSelector(ICharityLedger.DonationNotFound.selector, _id("nope")));
        ledger.donationOf(_id("nope"));
        _expectError(abi.encodeWithSelector(ICharityLedger.CampaignNotFound.selector, _id("nope")));
        ledger.campaignOf(_id("nope"));
        _expectError(abi.encodeWithSelector(ICharityLedger.DisbursementNotFound.selector, _id("nope")));
        ledger.disbursementOf(_id("nope"));
        _expectError(
            abi.encodeWithSelector(ICharityLedger.RecordNotFound.selector, ICharityLedger.RecordKind.Refund, _id("nope"))
        );
        ledger.refundOf(_id("nope"));
    }
}
