// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ICharityLedger} from "../../contracts/ICharityLedger.sol";
import {LedgerHandler} from "./LedgerHandler.sol";
import {LedgerTest} from "./LedgerTest.sol";

/// @notice The ledger's invariants after every step of random sequences of donations,
/// refunds, disbursements, closures and intrusions (see {LedgerHandler}), which forge
/// draws and shrinks. Three campaigns: two of charity A, one of charity B.
contract CharityLedgerInvariantTest is LedgerTest {
    /// @dev What forge reads from `targetSelectors()` (forge-std's StdInvariant.FuzzSelector).
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    bytes32 internal constant CAMPAIGN_A2 = keccak256("campaign-a2");

    LedgerHandler internal handler;

    function setUp() public override {
        super.setUp();
        vm.prank(opA);
        ledger.createCampaign(CAMPAIGN_A2, CHARITY_A, "A2", "EUR", 1e9, bytes32(0));
        handler = new LedgerHandler(ledger, stranger);
        handler.addCampaign(CAMPAIGN_A, CHARITY_A, opA);
        handler.addCampaign(CAMPAIGN_A2, CHARITY_A, opA);
        handler.addCampaign(CAMPAIGN_B, CHARITY_B, opB);
    }

    /// @notice forge calls only the handler, and only its actions.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory actions = new bytes4[](5);
        actions[0] = LedgerHandler.donate.selector;
        actions[1] = LedgerHandler.refund.selector;
        actions[2] = LedgerHandler.disburse.selector;
        actions[3] = LedgerHandler.close.selector;
        actions[4] = LedgerHandler.intrude.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector(address(handler), actions);
    }

    /// @notice Every donation's view equals the model, and allocated + refunded <= amount.
    function invariant_NoDonationIsOverdrawn() public view {
        bytes32[] memory ids = handler.donationIds();
        for (uint256 i = 0; i < ids.length; ++i) {
            LedgerHandler.DonationModel memory model = handler.donationModel(ids[i]);
            ICharityLedger.DonationView memory view_ = ledger.donationOf(ids[i]);
            vm.assertLe(view_.allocated + view_.refunded, view_.amount, "donation overdrawn");
            _assertDonation(ids[i], model.campaign, model.amount, model.allocated, model.refunded);
        }
    }

    /// @notice Every campaign's totals equal the model, and disbursed <= received - refunded.
    function invariant_NoCampaignPaysOutMoreThanItReceivedNetOfRefunds() public view {
        bytes32[] memory ids = handler.campaignIds();
        for (uint256 i = 0; i < ids.length; ++i) {
            LedgerHandler.CampaignModel memory model = handler.campaignModel(ids[i]);
            ICharityLedger.CampaignView memory view_ = ledger.campaignOf(ids[i]);
            vm.assertLe(view_.disbursed + view_.refunded, view_.received, "campaign overdrawn");
            vm.assertEq(view_.charityId, model.charity, "campaign's charity");
            vm.assertTrue(view_.closed == model.closed, "campaign's closed flag");
            _assertCampaign(
                ids[i],
                [
                    model.received,
                    model.refunded,
                    model.disbursed,
                    model.received - model.refunded - model.disbursed,
                    model.donations,
                    model.disbursements
                ]
            );
        }
    }

    /// @notice Money is conserved across the ledger: what campaigns received is what their
    /// donations amount to; what they disbursed is what was allocated from donations; what
    /// they refunded is what donations refunded; and every donated unit is allocated,
    /// refunded or still remaining.
    function invariant_AllocationsAndRefundsAccountForEveryDonatedUnit() public view {
        uint256 donated;
        uint256 allocated;
        uint256 refunded;
        uint256 remaining;
        bytes32[] memory donations = handler.donationIds();
        for (uint256 i = 0; i < donations.length; ++i) {
            ICharityLedger.DonationView memory view_ = ledger.donationOf(donations[i]);
            donated += view_.amount;
            allocated += view_.allocated;
            refunded += view_.refunded;
            remaining += view_.remaining;
        }
        uint256 received;
        uint256 disbursed;
        uint256 campaignRefunded;
        uint256 available;
        bytes32[] memory campaigns = handler.campaignIds();
        for (uint256 i = 0; i < campaigns.length; ++i) {
            ICharityLedger.CampaignView memory view_ = ledger.campaignOf(campaigns[i]);
            received += view_.received;
            disbursed += view_.disbursed;
            campaignRefunded += view_.refunded;
            available += view_.available;
        }
        vm.assertEq(received, donated, "sum of campaigns' received = sum of donations");
        vm.assertEq(disbursed, allocated, "sum of disbursements = sum of allocations");
        vm.assertEq(campaignRefunded, refunded, "sum of campaigns' refunds = sum of donations' refunds");
        vm.assertEq(allocated + refunded + remaining, donated, "allocated + refunded + remaining = donated");
        vm.assertEq(available, remaining, "what campaigns hold = what donations have left");
    }
}
