// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ICharityLedger} from "../../contracts/ICharityLedger.sol";
import {LedgerTest} from "./LedgerTest.sol";

/// @notice Each rule over the whole range of its inputs: amounts (0, 1..MAX_AMOUNT and
/// above), allocation lists, overdraws, currencies, text lengths, callers, batches.
contract CharityLedgerFuzzTest is LedgerTest {
    function testFuzz_DonationAmountsAreAcceptedExactlyWithinBounds(uint256 amount) public {
        bool valid = amount != 0 && amount <= MAX_AMOUNT;
        if (!valid) _expectError(abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, amount, MAX_AMOUNT));
        vm.prank(opA);
        ledger.recordDonation(_input(_id("d"), amount));
        if (valid) {
            _assertDonation(_id("d"), CAMPAIGN_A, amount, 0, 0);
            _assertCampaign(CAMPAIGN_A, [amount, 0, 0, amount, 1, 0]);
        }
    }

    function testFuzz_GoalsAreAcceptedExactlyWithinBounds(uint256 goal) public {
        bool valid = goal != 0 && goal <= MAX_GOAL;
        if (!valid) _expectError(abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, goal, MAX_GOAL));
        vm.prank(opA);
        ledger.createCampaign(_id("k"), CHARITY_A, "K", "CNY", goal, bytes32(0));
        if (valid) vm.assertEq(ledger.campaignOf(_id("k")).goal, goal, "goal");
    }

    function testFuzz_CurrenciesAreThreeUpperCaseLetters(bytes3 currency, bool letters) public {
        // Random bytes are almost never three letters: half the runs map them onto A..Z.
        if (letters) {
            currency = bytes3(
                bytes.concat(_letter(currency[0]), _letter(currency[1]), _letter(currency[2]))
            );
        }
        bool valid = true;
        for (uint256 i = 0; i < 3; ++i) valid = valid && currency[i] >= "A" && currency[i] <= "Z";
        if (!valid) _expectError(abi.encodeWithSelector(ICharityLedger.InvalidCurrency.selector, currency));
        vm.prank(opA);
        ledger.createCampaign(_id("k"), CHARITY_A, "K", currency, 1, bytes32(0));
        if (valid) vm.assertEq(bytes32(ledger.campaignOf(_id("k")).currency), bytes32(currency), "currency");
    }

    /// @dev Half the runs take `x` anywhere in [1, MAX_AMOUNT], the others one of the
    /// boundary's neighbours (boundary - 1, boundary, boundary + 1), where an off-by-one
    /// would show and which uniform draws almost never hit.
    function _around(uint256 x, uint256 boundary) private pure returns (uint256) {
        if (x % 2 == 0) return _bound(x / 2, 1, MAX_AMOUNT);
        uint256 near = boundary + ((x / 2) % 3);
        return near <= 1 ? 1 : near - 1;
    }

    function _letter(bytes1 b) private pure returns (bytes1) {
        return bytes1(uint8(65 + (uint8(b) % 26)));
    }

    function testFuzz_TextsAreNonEmptyAndBounded(uint256 length) public {
        length = _bound(length, 0, 300);
        string memory text = string(new bytes(length));
        bytes32 donation = _donate("d", 100);

        if (length == 0 || length > 256) {
            _expectError(abi.encodeWithSelector(ICharityLedger.InvalidTextLength.selector, length, 256));
        }
        vm.prank(opA);
        ledger.refundDonation(_id("r"), donation, 1, text);

        if (length == 0 || length > 128) {
            _expectError(abi.encodeWithSelector(ICharityLedger.InvalidTextLength.selector, length, 128));
        }
        vm.prank(opA);
        ledger.recordDisbursement(_id("p"), CAMPAIGN_A, 1, text, "P", bytes32(0), _alloc(donation, 1));

        if (length == 0 || length > 200) {
            _expectError(abi.encodeWithSelector(ICharityLedger.InvalidTextLength.selector, length, 200));
        }
        vm.prank(admin);
        ledger.registerCharity(_id("c"), text, bytes32(0));
    }

    function testFuzz_OnlyTheCharitysOperatorsWrite(address caller) public {
        vm.assume(caller != opA);
        // The ledger is its own ERC-2771 forwarder: a call from its own address takes its
        // sender from the calldata's tail (only `execute` makes such calls), so the fuzzer's
        // pick of the ledger's address is not a stranger and names another sender.
        vm.assume(caller != address(ledger));
        bytes32 donation = _donate("d", 100);
        bytes memory denied = abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, CHARITY_A, caller);
        vm.startPrank(caller);
        _expectError(denied);
        ledger.recordDonation(_input(_id("d2"), 1));
        _expectError(denied);
        ledger.refundDonation(_id("r"), donation, 1, "x");
        _expectError(denied);
        ledger.recordDisbursement(_id("p"), CAMPAIGN_A, 1, "R", "P", bytes32(0), _alloc(donation, 1));
        _expectError(denied);
        ledger.closeCampaign(CAMPAIGN_A);
        vm.stopPrank();
        _assertDonation(donation, CAMPAIGN_A, 100, 0, 0);
    }

    /// @notice A refund takes at most what is left of a donation after its allocations and
    /// earlier refunds; the error names exactly what was left and what was asked.
    function testFuzz_RefundsNeverOverdrawADonation(uint256 donated, uint256 spent, uint256 refunded, uint256 asked) public {
        donated = _bound(donated, 1, MAX_AMOUNT);
        spent = _bound(spent, 0, donated);
        refunded = _bound(refunded, 0, donated - spent);
        bytes32 donation = _donate("d", donated);
        if (spent != 0) _disburse("p", _alloc(donation, spent));
        if (refunded != 0) {
            vm.prank(opA);
            ledger.refundDonation(_id("r0"), donation, refunded, "earlier");
        }
        uint256 left = donated - spent - refunded;
        if (asked % 3 != 0) asked = _around(asked, left); // else anything, 0 and > MAX_AMOUNT included

        if (asked == 0 || asked > MAX_AMOUNT) {
            _expectError(abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, asked, MAX_AMOUNT));
        } else if (asked > left) {
            _expectError(abi.encodeWithSelector(ICharityLedger.DonationOverdrawn.selector, donation, left, asked));
        }
        vm.prank(opA);
        ledger.refundDonation(_id("r1"), donation, asked, "donor asked");

        bool done = asked != 0 && asked <= left;
        _assertDonation(donation, CAMPAIGN_A, donated, spent, refunded + (done ? asked : 0));
    }

    /// @notice An allocation takes at most what is left of its donation, however much the
    /// campaign holds.
    function testFuzz_AllocationsNeverOverdrawADonation(uint256 donated, uint256 refunded, uint256 part) public {
        donated = _bound(donated, 1, MAX_AMOUNT);
        refunded = _bound(refunded, 0, donated - 1);
        bytes32 donation = _donate("d", donated);
        _donate("cushion", MAX_AMOUNT); // so the campaign always holds more than `part`
        if (refunded != 0) {
            vm.prank(opA);
            ledger.refundDonation(_id("r"), donation, refunded, "x");
        }
        uint256 left = donated - refunded;
        part = _around(part, left);
        if (part > MAX_AMOUNT) {
            _expectError(abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, part, MAX_AMOUNT));
        } else if (part > left) {
            _expectError(abi.encodeWithSelector(ICharityLedger.DonationOverdrawn.selector, donation, left, part));
        }
        vm.prank(opA);
        ledger.recordDisbursement(_id("p"), CAMPAIGN_A, part, "R", "P", bytes32(0), _alloc(donation, part));
        _assertDonation(donation, CAMPAIGN_A, donated, part > left ? 0 : part, refunded);
    }

    /// @notice A disbursement takes at most what the campaign received net of refunds and
    /// earlier disbursements.
    function testFuzz_ACampaignNeverPaysOutMoreThanItHolds(uint256 donated, uint256 refunded, uint256 asked) public {
        donated = _bound(donated, 1, MAX_AMOUNT);
        refunded = _bound(refunded, 0, donated - 1);
        bytes32 donation = _donate("d", donated);
        if (refunded != 0) {
            vm.prank(opA);
            ledger.refundDonation(_id("r"), donation, refunded, "x");
        }
        uint256 available = donated - refunded;
        asked = _around(asked, available);
        if (asked > MAX_AMOUNT) {
            _expectError(abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, asked, MAX_AMOUNT));
        } else if (asked > available) {
            _expectError(abi.encodeWithSelector(ICharityLedger.CampaignOverdrawn.selector, CAMPAIGN_A, available, asked));
        }
        vm.prank(opA);
        ledger.recordDisbursement(_id("p"), CAMPAIGN_A, asked, "R", "P", bytes32(0), _alloc(donation, asked));
        uint256 paid = asked > available ? 0 : asked;
        _assertCampaign(CAMPAIGN_A, [donated, refunded, paid, available - paid, 1, paid == 0 ? 0 : 1]);
    }

    /// @notice Allocations over several donations must add up to the disbursement's amount
    /// exactly; when they do, each donation carries its part.
    function testFuzz_AllocationsAddUpToTheDisbursement(uint256[8] memory seeds, uint256 count, uint256 amount) public {
        count = _bound(count, 1, seeds.length);
        ICharityLedger.Allocation[] memory allocations = new ICharityLedger.Allocation[](count);
        uint256[] memory donated = new uint256[](count);
        uint256 total;
        uint256 received;
        for (uint256 i = 0; i < count; ++i) {
            donated[i] = _bound(seeds[i], 1, 1e15);
            bytes32 donation = _id("d", i);
            vm.prank(opA);
            ledger.recordDonation(_input(donation, donated[i]));
            uint256 part = _bound(uint256(keccak256(abi.encode(seeds[i]))), 1, donated[i]);
            allocations[i] = ICharityLedger.Allocation(donation, part);
            total += part;
            received += donated[i];
        }
        // Half the runs ask exactly the sum, the others anything the campaign holds.
        if (amount % 2 == 0) amount = total;
        else amount = _bound(amount, 1, received);

        if (amount != total) {
            _expectError(abi.encodeWithSelector(ICharityLedger.AllocationSumMismatch.selector, amount, total));
        }
        vm.prank(opA);
        ledger.recordDisbursement(_id("p"), CAMPAIGN_A, amount, "R", "P", bytes32(0), allocations);
        bool done = amount == total;
        for (uint256 i = 0; i < count; ++i) {
            _assertDonation(_id("d", i), CAMPAIGN_A, donated[i], done ? allocations[i].amount : 0, 0);
        }
        _assertCampaign(CAMPAIGN_A, [received, 0, done ? total : 0, received - (done ? total : 0), count, done ? 1 : 0]);
    }

    /// @notice A batch records all its donations or, when any one is invalid, none.
    function testFuzz_BatchesAreAllOrNothing(uint256 seed, uint256 count, uint256 bad) public {
        count = _bound(count, 1, 50);
        ICharityLedger.DonationInput[] memory batch = new ICharityLedger.DonationInput[](count);
        uint256 received;
        for (uint256 i = 0; i < count; ++i) {
            uint256 amount = _bound(uint256(keccak256(abi.encode(seed, i))), 1, MAX_AMOUNT);
            batch[i] = _input(_id("b", i), amount);
            received += amount;
        }
        // Half the runs spoil one donation (amount zero) somewhere in the batch.
        bool spoil = bad % 2 == 1;
        uint256 at = _bound(bad / 2, 0, count - 1);
        if (spoil) {
            batch[at].amount = 0;
            _expectError(abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, 0, MAX_AMOUNT));
        }
        vm.prank(opA);
        ledger.recordDonations(batch);
        if (spoil) {
            _assertCampaign(CAMPAIGN_A, [uint256(0), 0, 0, 0, 0, 0]);
        } else {
            _assertCampaign(CAMPAIGN_A, [received, 0, 0, received, count, 0]);
            for (uint256 i = 0; i < count; ++i) _assertDonation(_id("b", i), CAMPAIGN_A, batch[i].amount, 0, 0);
        }
    }
}
