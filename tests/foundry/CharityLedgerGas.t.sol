// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ICharityLedger} from "../../contracts/ICharityLedger.sol";
import {CharityLedger} from "../../contracts/CharityLedger.sol";
import {SignedCallTest} from "./SignedCallTest.sol";

/// @notice The ledger's main writes, one per test, each on a ledger that setUp prepared, so
/// a test's gas in .gas-snapshot is that write's execution gas (without the 21,000 base
/// and calldata that scripts/gas_report.py's transaction totals include). Each test also
/// logs the gas of the call alone (`forge test --match-contract Gas -vv`) and holds it to a
/// bound, so a storage layout change that undoes the packing fails here, not only in the
/// snapshot. `forge snapshot --match-contract CharityLedgerGasTest` writes .gas-snapshot;
/// tests/contracts/test_forge.py checks it is current.
contract CharityLedgerGasTest is SignedCallTest {
    /// @dev forge shows these with -vv (the DSTest log event forge decodes).
    event log_named_uint(string key, uint256 val);


    function setUp() public override {
        super.setUp();
        vm.startPrank(opA);
        // Donations to spend from, refund and correct, recorded before the measured calls.
        for (uint256 i = 0; i < 32; ++i) ledger.recordDonation(_input(_id("s", i), 10_000));
        ledger.recordDisbursement(_id("p0"), CAMPAIGN_A, 100, "CN-USCC-1", "food", bytes32(0), _alloc(_id("s", 31), 100));
        vm.stopPrank();
        // The self-custody charity's campaign has received donations too, so a relayed donation
        // updates warm totals as a direct one does (the comparison is of the relaying alone).
        vm.prank(charityKey);
        ledger.recordDonation(_scDonation(_id("sc-s"), 10_000));

        // Contract 2.2.0: campaign B under a two-of-three rule with a proposal that has one
        // approval and one that has both; a grant from A to B; a recipient organisation.
        vm.prank(admin);
        ledger.registerRecipient(SUPPLIER, "91350100M000100Y43", "Rice supplier", supplierKey);
        vm.startPrank(opB);
        for (uint256 i = 0; i < 4; ++i) ledger.recordDonation(_input(_id("b", i), 10_000, CAMPAIGN_B));
        address[] memory approvers = new address[](3);
        approvers[0] = _account("board member");
        approvers[1] = _account("finance officer");
        approvers[2] = _account("supervisor");
        ledger.setApprovalRule(CAMPAIGN_B, approvers, 2, 7 days);
        ledger.proposeDisbursement(_input2("q0", CAMPAIGN_B, _id("b", 0), 1_000, bytes32(0), bytes32(0)));
        ledger.proposeDisbursement(_input2("q1", CAMPAIGN_B, _id("b", 1), 1_000, bytes32(0), SUPPLIER));
        vm.stopPrank();
        vm.prank(approvers[0]);
        ledger.approveDisbursement(_id("q0"));
        vm.prank(approvers[0]);
        ledger.approveDisbursement(_id("q1"));
        vm.prank(approvers[1]);
        ledger.approveDisbursement(_id("q1"));
        vm.startPrank(opA);
        ledger.disburse(_input2("g0", CAMPAIGN_A, _id("s", 28), 5_000, CAMPAIGN_B, bytes32(0)));
        ledger.disburse(_input2("to-supplier", CAMPAIGN_A, _id("s", 27), 1_800, bytes32(0), SUPPLIER));
        vm.stopPrank();
    }

    bytes32 internal constant SUPPLIER = keccak256("supplier");
    address internal immutable supplierKey = _account("supplier");

    function _input2(
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
                recipient: "CN-USCC-1",
                purpose: "food",
                evidenceHash: bytes32(0),
                recipientCampaignId: toCampaign,
                recipientOrgId: toOrg,
                allocations: _alloc(donation, amount)
            });
    }

    function test_GasProposeDisbursement() public {
        ICharityLedger.DisbursementInput memory input = _input2("q2", CAMPAIGN_B, _id("b", 2), 1_000, bytes32(0), bytes32(0));
        vm.prank(opB);
        uint256 before = gasleft();
        ledger.proposeDisbursement(input);
        _measured("propose a disbursement (1 allocation)", before, 110_000);
    }

    function test_GasApproveDisbursement() public {
        vm.prank(_account("finance officer"));
        uint256 before = gasleft();
        ledger.approveDisbursement(_id("q0"));
        _measured("approve a proposal", before, 50_000);
    }

    function test_GasExecuteApprovedDisbursement() public {
        ICharityLedger.DisbursementInput memory input = _input2("q1", CAMPAIGN_B, _id("b", 1), 1_000, bytes32(0), SUPPLIER);
        vm.prank(stranger);
        uint256 before = gasleft();
        ledger.executeDisbursement(input);
        _measured("execute an approved proposal (1 allocation)", before, 110_000);
    }

    function test_GasDisburseGrant() public {
        ICharityLedger.DisbursementInput memory input = _input2("g1", CAMPAIGN_A, _id("s", 26), 1_000, CAMPAIGN_B, bytes32(0));
        vm.prank(opA);
        uint256 before = gasleft();
        ledger.disburse(input);
        _measured("grant to a campaign on the ledger (1 allocation)", before, 100_000);
    }

    function test_GasRecordGrantDonation() public {
        ICharityLedger.DonationInput memory donation = _input(_id("in"), 5_000, CAMPAIGN_B);
        vm.prank(opB);
        uint256 before = gasleft();
        ledger.recordGrantDonation(donation, _id("g0"));
        _measured("linked incoming donation (a grant recorded)", before, 90_000);
    }

    function test_GasConfirmReceipt() public {
        vm.prank(supplierKey);
        uint256 before = gasleft();
        ledger.confirmReceipt(_id("c"), _id("to-supplier"), 1_800, "received CNY 1,800.00 for rice, March", bytes32(0));
        _measured("recipient confirms receipt", before, 60_000);
    }

    function _measured(string memory what, uint256 gasBefore, uint256 bound) private {
        uint256 used = gasBefore - gasleft();
        emit log_named_uint(what, used);
        vm.assertLe(used, bound, what);
    }

    function test_GasRecordDonation() public {
        ICharityLedger.DonationInput memory donation = _input(_id("d0"), 10_000);
        vm.prank(opA);
        uint256 before = gasleft();
        ledger.recordDonation(donation);
        _measured("record donation", before, 60_000);
    }

    function test_GasRecordDonationsBatchOf100() public {
        // Built here, in memory: copying it from storage would cost more than recording it.
        ICharityLedger.DonationInput[] memory batch = new ICharityLedger.DonationInput[](100);
        for (uint256 i = 0; i < 100; ++i) {
            batch[i] = ICharityLedger.DonationInput({
                donationId: bytes32(i + 1),
                campaignId: CAMPAIGN_A,
                amount: 10_000 + i,
                donorCommitment: bytes32(~i),
                channel: "bank",
                metadataHash: bytes32(0)
            });
        }
        vm.prank(opA);
        uint256 before = gasleft();
        ledger.recordDonations(batch);
        // About 30,000 a donation (README: one storage slot each, campaign totals once warm).
        _measured("record donations (batch of 100)", before, 100 * 30_000);
    }

    function test_GasDisburseWith10Allocations() public {
        ICharityLedger.Allocation[] memory allocations = new ICharityLedger.Allocation[](10);
        for (uint256 i = 0; i < 10; ++i) allocations[i] = ICharityLedger.Allocation(_id("s", i), 5_000);
        vm.prank(opA);
        uint256 before = gasleft();
        ledger.recordDisbursement(_id("p"), CAMPAIGN_A, 50_000, "CN-USCC-12345", "school-meals", _id("inv"), allocations);
        _measured("disburse with 10 allocations", before, 200_000);
    }

    function test_GasDisburseWith1Allocation() public {
        ICharityLedger.Allocation[] memory allocations = _alloc(_id("s", 20), 100);
        vm.prank(opA);
        uint256 before = gasleft();
        ledger.recordDisbursement(_id("p1"), CAMPAIGN_A, 100, "CN-USCC-1", "food", bytes32(0), allocations);
        _measured("disburse with 1 allocation", before, 75_000);
    }

    function test_GasRefundPartOfADonation() public {
        vm.prank(opA);
        uint256 before = gasleft();
        ledger.refundDonation(_id("r"), _id("s", 30), 1_000, "donor asked");
        _measured("refund (part of a donation)", before, 90_000);
    }

    function test_GasAnchorEvidence() public {
        vm.prank(opA);
        uint256 before = gasleft();
        ledger.anchorEvidence(_id("p0"), _id("photo"));
        _measured("anchor evidence", before, 55_000);
    }

    function test_GasRecordCorrection() public {
        vm.prank(opA);
        uint256 before = gasleft();
        ledger.recordCorrection(_id("x"), CHARITY_A, ICharityLedger.RecordKind.Donation, _id("s", 29), bytes32(0), "amount mis-keyed");
        _measured("record correction", before, 55_000);
    }

    function test_GasCloseCampaign() public {
        vm.prank(opA);
        uint256 before = gasleft();
        ledger.closeCampaign(CAMPAIGN_A);
        _measured("close campaign", before, 25_000);
    }

    /// @dev A donation the charity signed, relayed by the stranger: the EIP-712 hashing,
    /// the signature check, the nonce and the self-call on top of a direct recordDonation.
    function test_GasRelayedSignedDonation() public {
        ICharityLedger.SignedCall memory call = _signedCall(
            charityKey,
            abi.encodeCall(CharityLedger.recordDonation, (_scDonation(_id("sd0"), 10_000))),
            keccak256("gas-1"),
            block.timestamp + 1 hours
        );
        bytes memory signature = _sign(CHARITY_PK, call);
        vm.prank(stranger);
        uint256 before = gasleft();
        ledger.execute(call, signature);
        _measured("relayed signed donation", before, 90_000);
    }

    function test_GasRelayedSignedBatchOf100() public {
        ICharityLedger.DonationInput[] memory batch = new ICharityLedger.DonationInput[](100);
        for (uint256 i = 0; i < 100; ++i) {
            batch[i] = ICharityLedger.DonationInput({
                donationId: bytes32(i + 1),
                campaignId: SC_CAMPAIGN,
                amount: 10_000 + i,
                donorCommitment: bytes32(~i),
                channel: "bank",
                metadataHash: bytes32(0)
            });
        }
        ICharityLedger.SignedCall memory call = _signedCall(
            charityKey,
            abi.encodeCall(CharityLedger.recordDonations, (batch)),
            keccak256("gas-100"),
            block.timestamp + 1 hours
        );
        bytes memory signature = _sign(CHARITY_PK, call);
        vm.prank(stranger);
        uint256 before = gasleft();
        ledger.execute(call, signature);
        _measured("relayed signed donations (batch of 100)", before, 100 * 31_000);
    }
}
