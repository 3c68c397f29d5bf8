// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ICharityLedger} from "../../contracts/ICharityLedger.sol";
import {LedgerTest} from "./LedgerTest.sol";

/// @notice Contract 2.2.0's money across organisations: grants to campaigns on the ledger,
/// approvals before payout, recipient confirmations. The rules here, with their exact
/// errors; tests/contracts/ holds the same rules on eth-tester and anvil, and the random
/// sequences of test_organisations_invariants.py. CharityLedgerGasTest measures the gas.
contract CharityLedgerOrganisationsTest is LedgerTest {
    address internal immutable boardMember = _account("board member");
    address internal immutable financeOfficer = _account("finance officer");
    address internal immutable supervisor = _account("community supervisor");
    address internal immutable supplierKey = _account("supplier");
    bytes32 internal constant SUPPLIER = keccak256("supplier");
    bytes32 internal constant CAMPAIGN_A_EUR = keccak256("campaign-a-eur");

    function setUp() public override {
        super.setUp();
        vm.prank(admin);
        ledger.registerRecipient(SUPPLIER, "91350100M000100Y43", "Rice supplier", supplierKey);
        vm.prank(opA);
        ledger.createCampaign(CAMPAIGN_A_EUR, CHARITY_A, "Campaign A (EUR)", "EUR", 1e9, bytes32(0));
        _donate("a1", 10_000);
        _donate("b1", 10_000, CAMPAIGN_B, opB);
    }

    function _disbursement(
        string memory label,
        bytes32 campaign,
        bytes32 donation,
        uint256 amount,
        bytes32 toCampaign,
        bytes32 toOrg
    ) internal pure returns (ICharityLedger.DisbursementInput memory) {
        return
            ICharityLedger.DisbursementInput({
                disbursementId: _id(label),
                campaignId: campaign,
                amount: amount,
                recipient: "CN-ORG-1",
                purpose: "school-meals",
                evidenceHash: bytes32(0),
                recipientCampaignId: toCampaign,
                recipientOrgId: toOrg,
                allocations: _alloc(donation, amount)
            });
    }

    function _approvers() internal view returns (address[] memory list) {
        list = new address[](3);
        list[0] = boardMember;
        list[1] = financeOfficer;
        list[2] = supervisor;
    }

    function _ruleOnB() internal {
        vm.prank(opB);
        ledger.setApprovalRule(CAMPAIGN_B, _approvers(), 2, 7 days);
    }

    // ------------------------------------------------------------------ grants

    function test_AGrantIsRecordedByTheReceivingCharityUpToItsAmount() public {
        vm.prank(opA);
        ledger.disburse(_disbursement("g", CAMPAIGN_A, _id("a1"), 3_000, CAMPAIGN_B, bytes32(0)));
        (bytes32 to, uint256 received) = ledger.grantOf(_id("g"));
        vm.assertEq(to, CAMPAIGN_B, "grant campaign");
        vm.assertEq(received, 0, "nothing received yet");

        vm.prank(opB);
        ledger.recordGrantDonation(_input(_id("in1"), 2_000, CAMPAIGN_B), _id("g"));
        _expectError(abi.encodeWithSelector(ICharityLedger.GrantOverdrawn.selector, _id("g"), 1_000, 1_001));
        vm.prank(opB);
        ledger.recordGrantDonation(_input(_id("in2"), 1_001, CAMPAIGN_B), _id("g"));
        vm.prank(opB);
        ledger.recordGrantDonation(_input(_id("in2"), 1_000, CAMPAIGN_B), _id("g"));
        (, received) = ledger.grantOf(_id("g"));
        vm.assertEq(received, 3_000, "received in full");
        vm.assertEq(ledger.grantSourceOf(_id("in2")), _id("g"), "source");
        // The incoming money is campaign B's to spend like any donation.
        _assertCampaign(CAMPAIGN_B, [uint256(13_000), 0, 0, 13_000, 3, 0]);
    }

    function test_AGrantGoesOnlyWhereItWasAddressed() public {
        vm.prank(opA);
        ledger.disburse(_disbursement("g", CAMPAIGN_A, _id("a1"), 3_000, CAMPAIGN_B, bytes32(0)));
        // Not into another campaign, not from a plain disbursement, not by another charity.
        _expectError(abi.encodeWithSelector(ICharityLedger.GrantNotAddressed.selector, _id("g"), CAMPAIGN_A));
        vm.prank(opA);
        ledger.recordGrantDonation(_input(_id("in"), 1, CAMPAIGN_A), _id("g"));
        bytes32 plain = _disburse("plain", _alloc(_id("a1"), 100));
        _expectError(abi.encodeWithSelector(ICharityLedger.GrantNotAddressed.selector, plain, CAMPAIGN_B));
        vm.prank(opB);
        ledger.recordGrantDonation(_input(_id("in"), 1, CAMPAIGN_B), plain);
        _expectError(abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, CHARITY_B, opA));
        vm.prank(opA);
        ledger.recordGrantDonation(_input(_id("in"), 1, CAMPAIGN_B), _id("g"));
    }

    function test_AGrantNeedsAnotherCampaignInTheSameCurrency() public {
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidGrantRecipient.selector, _id("g"), CAMPAIGN_A));
        vm.prank(opA);
        ledger.disburse(_disbursement("g", CAMPAIGN_A, _id("a1"), 1, CAMPAIGN_A, bytes32(0)));
        _expectError(abi.encodeWithSelector(ICharityLedger.GrantCurrencyMismatch.selector, CAMPAIGN_A, CAMPAIGN_A_EUR));
        vm.prank(opA);
        ledger.disburse(_disbursement("g", CAMPAIGN_A, _id("a1"), 1, CAMPAIGN_A_EUR, bytes32(0)));
        _expectError(abi.encodeWithSelector(ICharityLedger.CampaignNotFound.selector, _id("nowhere")));
        vm.prank(opA);
        ledger.disburse(_disbursement("g", CAMPAIGN_A, _id("a1"), 1, _id("nowhere"), bytes32(0)));
    }

    // --------------------------------------------------------------- approvals

    function test_ADisbursementUnderARuleNeedsItsApprovalsAndIsDrawnOnlyWhenExecuted() public {
        _ruleOnB();
        ICharityLedger.DisbursementInput memory input = _disbursement("p", CAMPAIGN_B, _id("b1"), 4_000, bytes32(0), SUPPLIER);
        _expectError(abi.encodeWithSelector(ICharityLedger.ApprovalRequired.selector, CAMPAIGN_B));
        vm.prank(opB);
        ledger.disburse(input);
        _expectError(abi.encodeWithSelector(ICharityLedger.ApprovalRequired.selector, CAMPAIGN_B));
        vm.prank(opB);
        ledger.recordDisbursement(_id("p"), CAMPAIGN_B, 4_000, "CN-ORG-1", "school-meals", bytes32(0), _alloc(_id("b1"), 4_000));

        vm.prank(opB);
        ledger.proposeDisbursement(input);
        _assertCampaign(CAMPAIGN_B, [uint256(10_000), 0, 0, 10_000, 1, 0]);
        vm.prank(boardMember);
        ledger.approveDisbursement(_id("p"));
        _expectError(abi.encodeWithSelector(ICharityLedger.ApprovalsMissing.selector, _id("p"), 1, 2));
        ledger.executeDisbursement(input);
        _expectError(abi.encodeWithSelector(ICharityLedger.AlreadyApproved.selector, _id("p"), boardMember));
        vm.prank(boardMember);
        ledger.approveDisbursement(_id("p"));
        vm.prank(supervisor);
        ledger.approveDisbursement(_id("p"));

        // Anyone executes, with exactly the input proposed; the disbursement is the proposer's.
        input.amount = 4_001;
        input.allocations[0].amount = 4_001;
        bytes32 given = keccak256(abi.encode(input));
        input.amount = 4_000;
        input.allocations[0].amount = 4_000;
        bytes32 proposed = keccak256(abi.encode(input));
        input.amount = 4_001;
        input.allocations[0].amount = 4_001;
        _expectError(abi.encodeWithSelector(ICharityLedger.ProposalMismatch.selector, _id("p"), proposed, given));
        vm.prank(stranger);
        ledger.executeDisbursement(input);
        input.amount = 4_000;
        input.allocations[0].amount = 4_000;
        vm.prank(stranger);
        ledger.executeDisbursement(input);
        _assertCampaign(CAMPAIGN_B, [uint256(10_000), 0, 4_000, 6_000, 1, 1]);
        vm.assertEq(uint256(ledger.proposalOf(_id("p")).status), uint256(ICharityLedger.ProposalStatus.Executed), "executed");
        _expectError(abi.encodeWithSelector(ICharityLedger.ProposalNotPending.selector, _id("p"), ICharityLedger.ProposalStatus.Executed));
        ledger.executeDisbursement(input);
    }

    /// @notice The attack that broke Allo's milestone payouts: a rejected milestone could still
    /// be paid out. Here a proposal rejected after it reached its approvals is never paid,
    /// never approved again, and never proposed again under its ID.
    function test_ARejectedProposalIsNeverPaidEvenWithItsApprovals() public {
        _ruleOnB();
        ICharityLedger.DisbursementInput memory input = _disbursement("p", CAMPAIGN_B, _id("b1"), 4_000, bytes32(0), bytes32(0));
        vm.prank(opB);
        ledger.proposeDisbursement(input);
        vm.prank(boardMember);
        ledger.approveDisbursement(_id("p"));
        vm.prank(financeOfficer);
        ledger.approveDisbursement(_id("p"));
        vm.prank(supervisor);
        ledger.rejectDisbursement(_id("p"), "the supplier's invoice is for another school");

        bytes memory rejected = abi.encodeWithSelector(
            ICharityLedger.ProposalNotPending.selector,
            _id("p"),
            ICharityLedger.ProposalStatus.Rejected
        );
        _expectError(rejected);
        ledger.executeDisbursement(input);
        _expectError(rejected);
        vm.prank(supervisor);
        ledger.approveDisbursement(_id("p"));
        _expectError(abi.encodeWithSelector(ICharityLedger.DisbursementAlreadyExists.selector, _id("p")));
        vm.prank(opB);
        ledger.proposeDisbursement(input);
        _assertCampaign(CAMPAIGN_B, [uint256(10_000), 0, 0, 10_000, 1, 0]);
    }

    function test_AnExpiredProposalIsNeverApprovedOrPaid() public {
        _ruleOnB();
        ICharityLedger.DisbursementInput memory input = _disbursement("p", CAMPAIGN_B, _id("b1"), 4_000, bytes32(0), bytes32(0));
        vm.prank(opB);
        ledger.proposeDisbursement(input);
        uint256 expiresAt = block.timestamp + 7 days;
        vm.prank(boardMember);
        ledger.approveDisbursement(_id("p"));
        vm.warp(expiresAt + 1);
        bytes memory expired = abi.encodeWithSelector(ICharityLedger.ProposalExpired.selector, _id("p"), expiresAt);
        _expectError(expired);
        vm.prank(financeOfficer);
        ledger.approveDisbursement(_id("p"));
        _expectError(expired);
        ledger.executeDisbursement(input);
    }

    function test_TheProposerNeverApprovesAndStrangersNeverVote() public {
        address[] memory approvers = _approvers();
        approvers[2] = opB; // the charity's operator is also one of the approvers
        vm.prank(opB);
        ledger.setApprovalRule(CAMPAIGN_B, approvers, 2, 7 days);
        vm.prank(opB);
        ledger.proposeDisbursement(_disbursement("p", CAMPAIGN_B, _id("b1"), 4_000, bytes32(0), bytes32(0)));
        _expectError(abi.encodeWithSelector(ICharityLedger.ProposerCannotApprove.selector, _id("p"), opB));
        vm.prank(opB);
        ledger.approveDisbursement(_id("p"));
        _expectError(abi.encodeWithSelector(ICharityLedger.NotApprover.selector, _id("p"), stranger));
        vm.prank(stranger);
        ledger.approveDisbursement(_id("p"));
        _expectError(abi.encodeWithSelector(ICharityLedger.NotApprover.selector, _id("p"), stranger));
        vm.prank(stranger);
        ledger.rejectDisbursement(_id("p"), "no");
    }

    /// @notice A rule changed while a proposal is under way applies to later proposals only:
    /// lowering the threshold or replacing the approvers lets it pass no sooner.
    function test_ARuleChangeNeverShortensAProposalUnderWay() public {
        _ruleOnB();
        ICharityLedger.DisbursementInput memory input = _disbursement("p", CAMPAIGN_B, _id("b1"), 4_000, bytes32(0), bytes32(0));
        vm.prank(opB);
        ledger.proposeDisbursement(input);
        vm.prank(boardMember);
        ledger.approveDisbursement(_id("p"));

        address[] memory accomplice = new address[](1);
        accomplice[0] = stranger;
        vm.prank(opB);
        ledger.setApprovalRule(CAMPAIGN_B, accomplice, 1, 1 hours);
        (uint64 version, uint8 threshold, , ) = ledger.approvalRuleOf(CAMPAIGN_B);
        vm.assertEq(version, 2, "rule version");
        vm.assertEq(threshold, 1, "new threshold");

        _expectError(abi.encodeWithSelector(ICharityLedger.NotApprover.selector, _id("p"), stranger));
        vm.prank(stranger);
        ledger.approveDisbursement(_id("p"));
        _expectError(abi.encodeWithSelector(ICharityLedger.ApprovalsMissing.selector, _id("p"), 1, 2));
        ledger.executeDisbursement(input);
        // Still the old rule's validity: a week, not the new hour.
        vm.warp(block.timestamp + 2 hours);
        vm.prank(financeOfficer);
        ledger.approveDisbursement(_id("p"));
        ledger.executeDisbursement(input);
        // A rule is never removed: no threshold of zero, no empty list.
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidApprovalRule.selector, CAMPAIGN_B));
        vm.prank(opB);
        ledger.setApprovalRule(CAMPAIGN_B, new address[](0), 0, 1 hours);
    }

    // ------------------------------------------------------------ confirmations

    function test_TheNamedRecipientConfirmsInPartsUpToTheAmount() public {
        vm.prank(opA);
        ledger.disburse(_disbursement("d", CAMPAIGN_A, _id("a1"), 1_800, bytes32(0), SUPPLIER));
        vm.prank(supplierKey);
        ledger.confirmReceipt(_id("c1"), _id("d"), 1_000, "received CNY 1,000.00 for rice, March", bytes32(0));
        _expectError(abi.encodeWithSelector(ICharityLedger.ConfirmationExceedsDisbursement.selector, _id("d"), 800, 801));
        vm.prank(supplierKey);
        ledger.confirmReceipt(_id("c2"), _id("d"), 801, "the rest", bytes32(0));
        vm.prank(supplierKey);
        ledger.confirmReceipt(_id("c2"), _id("d"), 800, "the rest", keccak256("delivery note"));
        (bytes32 recipient, uint256 confirmed) = ledger.recipientOf(_id("d"));
        vm.assertEq(recipient, SUPPLIER, "recipient");
        vm.assertEq(confirmed, 1_800, "confirmed in full");
        _expectError(abi.encodeWithSelector(ICharityLedger.ConfirmationAlreadyExists.selector, _id("c2")));
        vm.prank(supplierKey);
        ledger.confirmReceipt(_id("c2"), _id("d"), 1, "again", bytes32(0));
    }

    function test_OnlyTheRecipientsOwnKeyConfirmsOrMovesIt() public {
        vm.prank(opA);
        ledger.disburse(_disbursement("d", CAMPAIGN_A, _id("a1"), 1_800, bytes32(0), SUPPLIER));
        bytes32 plain = _disburse("plain", _alloc(_id("a1"), 100));
        // Not the charity, not the registrar, not a recipient the disbursement does not name.
        _expectError(abi.encodeWithSelector(ICharityLedger.NotRecipient.selector, _id("d"), opA));
        vm.prank(opA);
        ledger.confirmReceipt(_id("c"), _id("d"), 1, "forged", bytes32(0));
        _expectError(abi.encodeWithSelector(ICharityLedger.NotRecipient.selector, plain, supplierKey));
        vm.prank(supplierKey);
        ledger.confirmReceipt(_id("c"), plain, 1, "not mine", bytes32(0));
        _expectError(abi.encodeWithSelector(ICharityLedger.NotRecipient.selector, bytes32(0), admin));
        vm.prank(admin);
        ledger.setRecipientAccount(SUPPLIER, admin);

        address newKey = _account("supplier's new key");
        vm.prank(supplierKey);
        ledger.setRecipientAccount(SUPPLIER, newKey);
        vm.assertEq(ledger.recipientAccount(SUPPLIER), newKey, "moved");
        vm.prank(newKey);
        ledger.confirmReceipt(_id("c"), _id("d"), 1_800, "received", bytes32(0));
        _expectError(abi.encodeWithSelector(ICharityLedger.RecipientNotFound.selector, _id("nobody")));
        vm.prank(opA);
        ledger.disburse(_disbursement("d2", CAMPAIGN_A, _id("a1"), 1, bytes32(0), _id("nobody")));
    }
}
