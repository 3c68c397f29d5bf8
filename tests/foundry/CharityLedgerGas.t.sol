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
