// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {CharityLedger} from "../../contracts/CharityLedger.sol";
import {ICharityLedger} from "../../contracts/ICharityLedger.sol";
import {Vm} from "./Vm.sol";

/// @notice What every ledger test starts from, as tests/ledger.py's `Ledger.setup` does:
/// a fresh ledger with two charities, one operator each, and a campaign each (CNY, goal
/// 10^9); plus ID helpers and view assertions.
abstract contract LedgerTest {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint256 internal constant MAX_AMOUNT = 1e18;
    uint256 internal constant MAX_GOAL = 1e24;
    uint256 internal constant MAX_LIST = 500;

    address internal immutable admin = _account("admin");
    address internal immutable opA = _account("operator of charity A");
    address internal immutable opB = _account("operator of charity B");
    address internal immutable stranger = _account("stranger");

    bytes32 internal constant CHARITY_A = keccak256("charity-a");
    bytes32 internal constant CHARITY_B = keccak256("charity-b");
    bytes32 internal constant CAMPAIGN_A = keccak256("campaign-a");
    bytes32 internal constant CAMPAIGN_B = keccak256("campaign-b");
    bytes32 internal constant DONOR = keccak256("salt donor");

    CharityLedger internal ledger;

    function setUp() public virtual {
        ledger = new CharityLedger(admin);
        vm.label(address(ledger), "ledger");
        vm.label(admin, "admin");
        vm.label(opA, "opA");
        vm.label(opB, "opB");
        vm.label(stranger, "stranger");
        _setUpCharity(CHARITY_A, opA, CAMPAIGN_A, "A");
        _setUpCharity(CHARITY_B, opB, CAMPAIGN_B, "B");
    }

    function _setUpCharity(bytes32 charity, address operator, bytes32 campaign, string memory name) private {
        vm.startPrank(admin);
        ledger.registerCharity(charity, string.concat("Charity ", name), bytes32(0));
        ledger.addOperator(charity, operator);
        vm.stopPrank();
        vm.prank(operator);
        ledger.createCampaign(campaign, charity, string.concat("Campaign ", name), "CNY", 1e9, bytes32(0));
    }

    // ------------------------------------------------------------ IDs and inputs

    function _account(string memory name) internal pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encodePacked("account ", name)))));
    }

    /// @notice A bytes32 record ID derived from a readable label (as tests/ledger.py's rid).
    function _id(string memory label) internal pure returns (bytes32) {
        return keccak256(bytes(label));
    }

    /// @notice The `n`th ID of a kind: distinct from every other label's IDs.
    function _id(string memory kind, uint256 n) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(kind, "-", n));
    }

    function _input(
        bytes32 donationId,
        uint256 amount,
        bytes32 campaignId
    ) internal pure returns (ICharityLedger.DonationInput memory) {
        return
            ICharityLedger.DonationInput({
                donationId: donationId,
                campaignId: campaignId,
                amount: amount,
                donorCommitment: DONOR,
                channel: "bank",
                metadataHash: bytes32(0)
            });
    }

    function _input(bytes32 donationId, uint256 amount) internal pure returns (ICharityLedger.DonationInput memory) {
        return _input(donationId, amount, CAMPAIGN_A);
    }

    function _alloc(bytes32 donationId, uint256 amount) internal pure returns (ICharityLedger.Allocation[] memory list) {
        list = new ICharityLedger.Allocation[](1);
        list[0] = ICharityLedger.Allocation(donationId, amount);
    }

    function _alloc(
        bytes32 first,
        uint256 firstAmount,
        bytes32 second,
        uint256 secondAmount
    ) internal pure returns (ICharityLedger.Allocation[] memory list) {
        list = new ICharityLedger.Allocation[](2);
        list[0] = ICharityLedger.Allocation(first, firstAmount);
        list[1] = ICharityLedger.Allocation(second, secondAmount);
    }

    // ---------------------------------------------------------------- writes

    /// @notice Records a donation of campaign A as its operator; returns its ID.
    function _donate(string memory label, uint256 amount) internal returns (bytes32) {
        return _donate(label, amount, CAMPAIGN_A, opA);
    }

    function _donate(string memory label, uint256 amount, bytes32 campaign, address operator) internal returns (bytes32 id) {
        id = _id(label);
        vm.prank(operator);
        ledger.recordDonation(_input(id, amount, campaign));
    }

    /// @notice Records a disbursement of campaign A for the allocations' sum, as its operator.
    function _disburse(string memory label, ICharityLedger.Allocation[] memory allocations) internal returns (bytes32 id) {
        uint256 sum;
        for (uint256 i = 0; i < allocations.length; ++i) sum += allocations[i].amount;
        id = _id(label);
        vm.prank(opA);
        ledger.recordDisbursement(id, CAMPAIGN_A, sum, "CN-ORG-1", "school-meals", bytes32(0), allocations);
    }

    /// @notice The next call must revert with this exact custom error and arguments.
    function _expectError(bytes memory revertData) internal {
        vm.expectRevert(revertData);
    }

    // ------------------------------------------------------------- views

    function _assertDonation(
        bytes32 donationId,
        bytes32 campaignId,
        uint256 amount,
        uint256 allocated,
        uint256 refunded
    ) internal view {
        ICharityLedger.DonationView memory view_ = ledger.donationOf(donationId);
        vm.assertEq(view_.campaignId, campaignId, "donation's campaign");
        vm.assertEq(view_.amount, amount, "donation's amount");
        vm.assertEq(view_.allocated, allocated, "donation's allocated");
        vm.assertEq(view_.refunded, refunded, "donation's refunded");
        vm.assertEq(view_.remaining, amount - allocated - refunded, "donation's remaining");
    }

    /// @notice received, refunded, disbursed, available, donationCount, disbursementCount.
    function _assertCampaign(bytes32 campaignId, uint256[6] memory expected) internal view {
        ICharityLedger.CampaignView memory view_ = ledger.campaignOf(campaignId);
        vm.assertEq(view_.received, expected[0], "campaign's received");
        vm.assertEq(view_.refunded, expected[1], "campaign's refunded");
        vm.assertEq(view_.disbursed, expected[2], "campaign's disbursed");
        vm.assertEq(view_.available, expected[3], "campaign's available");
        vm.assertEq(view_.donationCount, expected[4], "campaign's donationCount");
        vm.assertEq(view_.disbursementCount, expected[5], "campaign's disbursementCount");
    }

    /// @notice `x` mapped into [min, max] (both included), for fuzz inputs.
    function _bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (min == 0 && max == type(uint256).max) return x;
        return min + (x % (max - min + 1));
    }
}
