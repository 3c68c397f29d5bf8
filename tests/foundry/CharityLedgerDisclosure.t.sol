// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ICharityLedger} from "../../contracts/ICharityLedger.sol";
import {LedgerTest} from "./LedgerTest.sol";

/// @notice Contract 2.3.0's disclosure records: a campaign's end date (a change needs its
/// reason), periodic and final reports, the disposal of a closed campaign's remaining funds,
/// and corrections that always carry a reason.
contract CharityLedgerDisclosureTest is LedgerTest {
    bytes32 internal constant DOC = keccak256("report document");

    function test_AnEndDateIsSetByTheCharityAndAChangeNeedsItsReason() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, CHARITY_A, stranger));
        ledger.setCampaignEnd(CAMPAIGN_A, 2_000_000_000, "");

        vm.prank(opA);
        vm.expectRevert(abi.encodeWithSelector(ICharityLedger.InvalidPeriod.selector, uint64(0), uint64(0)));
        ledger.setCampaignEnd(CAMPAIGN_A, 0, "");

        uint64 last = ledger.MAX_TIMESTAMP();
        vm.prank(opA);
        vm.expectRevert(abi.encodeWithSelector(ICharityLedger.InvalidPeriod.selector, uint64(0), last + 1));
        ledger.setCampaignEnd(CAMPAIGN_A, last + 1, "");
        vm.prank(opA);
        ledger.setCampaignEnd(CAMPAIGN_A, 2_000_000_000, "");
        vm.prank(opA);
        vm.expectRevert(abi.encodeWithSelector(ICharityLedger.InvalidTextLength.selector, uint256(0), uint256(256)));
        ledger.setCampaignEnd(CAMPAIGN_A, 2_100_000_000, "");
        vm.prank(opA);
        ledger.setCampaignEnd(CAMPAIGN_A, 2_100_000_000, "the project was extended by the board");
        (uint64 endsAt, , ) = ledger.disclosureOf(CAMPAIGN_A);
        vm.assertEq(uint256(endsAt), 2_100_000_000, "the latest end date is in force");
    }

    function test_ReportsAreUniqueAnchoredAndCoverAPeriod() public {
        vm.startPrank(opA);
        vm.expectRevert(abi.encodeWithSelector(ICharityLedger.InvalidPeriod.selector, uint64(200), uint64(200)));
        ledger.publishReport(_id("report 1"), CAMPAIGN_A, ICharityLedger.ReportKind.Periodic, 200, 200, DOC);
        vm.expectRevert(abi.encodeWithSelector(ICharityLedger.ZeroId.selector));
        ledger.publishReport(_id("report 1"), CAMPAIGN_A, ICharityLedger.ReportKind.Periodic, 100, 200, bytes32(0));
        ledger.publishReport(_id("report 1"), CAMPAIGN_A, ICharityLedger.ReportKind.Periodic, 100, 200, DOC);
        vm.expectRevert(abi.encodeWithSelector(ICharityLedger.ReportAlreadyExists.selector, _id("report 1")));
        ledger.publishReport(_id("report 1"), CAMPAIGN_A, ICharityLedger.ReportKind.Final, 100, 300, DOC);
        vm.stopPrank();
        vm.prank(opB);
        vm.expectRevert(abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, CHARITY_A, opB));
        ledger.publishReport(_id("report 2"), CAMPAIGN_A, ICharityLedger.ReportKind.Final, 100, 300, DOC);
        (, uint256 reports, ) = ledger.disclosureOf(CAMPAIGN_A);
        vm.assertEq(reports, 1, "one report");
    }

    function test_RemainingFundsAreDisposedOfOnlyWhenClosedAndNeverMoreThanRemain() public {
        vm.startPrank(opA);
        ledger.recordDonation(_input(_id("donation"), 1_000, CAMPAIGN_A));
        bytes32 disposal = _id("disposal");
        vm.expectRevert(abi.encodeWithSelector(ICharityLedger.CampaignNotClosed.selector, CAMPAIGN_A));
        ledger.recordDisposal(disposal, CAMPAIGN_A, ICharityLedger.Disposition.ReturnedToDonors, 1_000, 0, "", 0);
        ledger.closeCampaign(CAMPAIGN_A);
        vm.expectRevert(abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, uint256(1_001), uint256(1_000)));
        ledger.recordDisposal(disposal, CAMPAIGN_A, ICharityLedger.Disposition.ReturnedToDonors, 1_001, 0, "", 0);
        ICharityLedger.Disposition moved = ICharityLedger.Disposition.MovedToCampaign;
        vm.expectRevert(abi.encodeWithSelector(ICharityLedger.InvalidDisposition.selector, moved, CAMPAIGN_A));
        ledger.recordDisposal(disposal, CAMPAIGN_A, moved, 1_000, CAMPAIGN_A, "", 0);
        vm.expectRevert(abi.encodeWithSelector(ICharityLedger.InvalidDisposition.selector, moved, bytes32(0)));
        ledger.recordDisposal(disposal, CAMPAIGN_A, moved, 1_000, 0, "", 0);
        ICharityLedger.Disposition kept = ICharityLedger.Disposition.KeptUnderRule;
        vm.expectRevert(abi.encodeWithSelector(ICharityLedger.InvalidTextLength.selector, uint256(0), uint256(256)));
        ledger.recordDisposal(disposal, CAMPAIGN_A, kept, 1_000, 0, "", 0);
        ledger.recordDisposal(disposal, CAMPAIGN_A, moved, 600, CAMPAIGN_B, "", DOC);
        vm.expectRevert(abi.encodeWithSelector(ICharityLedger.DisposalAlreadyExists.selector, disposal));
        ledger.recordDisposal(disposal, CAMPAIGN_A, kept, 400, 0, "charter art. 9", 0);
        ledger.recordDisposal(_id("disposal 2"), CAMPAIGN_A, kept, 400, 0, "charter art. 9", 0);
        vm.stopPrank();
        (, , uint256 disposals) = ledger.disclosureOf(CAMPAIGN_A);
        vm.assertEq(disposals, 2, "two disposals");
    }

    function test_ACorrectionAlwaysCarriesAReasonAndMayNameAReport() public {
        vm.startPrank(opA);
        ledger.publishReport(_id("report"), CAMPAIGN_A, ICharityLedger.ReportKind.Periodic, 100, 200, DOC);
        vm.expectRevert(abi.encodeWithSelector(ICharityLedger.InvalidTextLength.selector, uint256(0), uint256(256)));
        ledger.recordCorrection(_id("correction"), CHARITY_A, ICharityLedger.RecordKind.Report, _id("report"), 0, "");
        ledger.recordCorrection(
            _id("correction"),
            CHARITY_A,
            ICharityLedger.RecordKind.Report,
            _id("report"),
            0,
            "the period was misstated"
        );
        ICharityLedger.RecordKind disposalKind = ICharityLedger.RecordKind.Disposal;
        vm.expectRevert(abi.encodeWithSelector(ICharityLedger.RecordNotFound.selector, disposalKind, _id("report")));
        ledger.recordCorrection(_id("correction 2"), CHARITY_A, disposalKind, _id("report"), 0, "wrong kind");
        vm.stopPrank();
    }
}
