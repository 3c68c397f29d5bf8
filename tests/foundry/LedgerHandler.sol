// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {CharityLedger} from "../../contracts/CharityLedger.sol";
import {ICharityLedger} from "../../contracts/ICharityLedger.sol";
import {Vm} from "./Vm.sol";

/// @notice The actions forge's invariant fuzzer calls in random sequences: donations
/// (single and batched), refunds, disbursements with random allocations (other campaigns'
/// donations, repeats, zero and over-large parts included), closures and intruders. Each
/// action predicts from a model of the ledger (the ghost state below) whether the ledger
/// must accept it or revert with which exact error, checks that it did, and updates the
/// model. The invariant tests then compare the ledger's views with the model. The Solidity
/// twin of tests/contracts/test_invariants.py.
contract LedgerHandler {
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 private constant MAX_AMOUNT = 1e18;

    struct DonationModel {
        bytes32 campaign;
        uint256 amount;
        uint256 allocated;
        uint256 refunded;
    }

    struct CampaignModel {
        bytes32 charity;
        address operator;
        bool closed;
        uint256 received;
        uint256 refunded;
        uint256 disbursed;
        uint256 donations;
        uint256 disbursements;
    }

    CharityLedger private immutable _ledger;
    address private immutable _stranger;
    bytes32[] private _campaignIds;
    mapping(bytes32 => CampaignModel) private _campaigns;
    bytes32[] private _donationIds;
    mapping(bytes32 => DonationModel) private _donations;
    uint256 private _counter;

    /// @notice How many calls each outcome had, to see that the runs reach both.
    uint256 public accepted;
    uint256 public rejected;

    constructor(CharityLedger ledger, address stranger) {
        _ledger = ledger;
        _stranger = stranger;
    }

    /// @notice Tells the model about a campaign created in the test's setUp.
    function addCampaign(bytes32 campaignId, bytes32 charityId, address operator) external {
        _campaignIds.push(campaignId);
        _campaigns[campaignId].charity = charityId;
        _campaigns[campaignId].operator = operator;
    }

    // --------------------------------------------------------------- actions

    function donate(uint256 campaignSeed, uint256[4] calldata amountSeeds, uint256 count, bool batch) external {
        bytes32 campaignId = _pickCampaign(campaignSeed);
        CampaignModel storage campaign = _campaigns[campaignId];
        count = batch ? 1 + (count % amountSeeds.length) : 1;
        ICharityLedger.DonationInput[] memory inputs = new ICharityLedger.DonationInput[](count);
        bytes memory expected;
        for (uint256 i = 0; i < count; ++i) {
            uint256 amount = _amount(amountSeeds[i]);
            inputs[i] = ICharityLedger.DonationInput({
                donationId: _newId("donation"),
                campaignId: campaignId,
                amount: amount,
                donorCommitment: keccak256(abi.encode("donor", i)),
                channel: "bank",
                metadataHash: bytes32(0)
            });
            if (expected.length != 0) continue;
            if (campaign.closed) {
                expected = abi.encodeWithSelector(ICharityLedger.CampaignIsClosed.selector, campaignId);
            } else if (amount == 0 || amount > MAX_AMOUNT) {
                expected = abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, amount, MAX_AMOUNT);
            }
        }
        bytes memory call = batch
            ? abi.encodeCall(ICharityLedger.recordDonations, (inputs))
            : abi.encodeCall(ICharityLedger.recordDonation, (inputs[0]));
        if (!_call(campaign.operator, call, expected)) return;
        for (uint256 i = 0; i < count; ++i) {
            _donationIds.push(inputs[i].donationId);
            _donations[inputs[i].donationId] = DonationModel(campaignId, inputs[i].amount, 0, 0);
            campaign.received += inputs[i].amount;
            campaign.donations += 1;
        }
    }

    function refund(uint256 donationSeed, uint256 amount, bool takeAll) external {
        if (_donationIds.length == 0) return;
        bytes32 donationId = _donationIds[donationSeed % _donationIds.length];
        DonationModel storage donation = _donations[donationId];
        CampaignModel storage campaign = _campaigns[donation.campaign];
        uint256 left = _remaining(donation);
        // Half the refunds take all that is left, the others 0..left + 1 (both bounds wrong).
        amount = takeAll && left != 0 ? left : amount % (left + 2);
        bytes memory expected;
        if (amount == 0) {
            expected = abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, 0, MAX_AMOUNT);
        } else if (amount > left) {
            expected = abi.encodeWithSelector(ICharityLedger.DonationOverdrawn.selector, donationId, left, amount);
        }
        bytes memory call = abi.encodeCall(
            ICharityLedger.refundDonation,
            (_newId("refund"), donationId, amount, "donor asked")
        );
        if (!_call(campaign.operator, call, expected)) return;
        donation.refunded += amount;
        campaign.refunded += amount;
    }

    /// @notice Allocations drawn from any donation (other campaigns' and repeats included)
    /// or from the campaign's own donations with something left, each for all that is left
    /// or any part up to a little over it; the amount is their sum, or one more or less.
    function disburse(
        uint256 campaignSeed,
        uint256[5] calldata picks,
        uint256[5] calldata parts,
        uint256 count,
        uint8 extra
    ) external {
        if (_donationIds.length == 0) return;
        bytes32 campaignId = _pickCampaign(campaignSeed);
        CampaignModel storage campaign = _campaigns[campaignId];
        // Three disbursements of four draw only on the campaign's own donations with
        // something left (when it has any), the others on any donation.
        bytes32[] memory pool = (campaignSeed / 7) % 4 != 0 ? _ownWithSomethingLeft(campaignId) : _donationIds;
        if (pool.length == 0) pool = _donationIds;

        count = 1 + (count % picks.length);
        ICharityLedger.Allocation[] memory allocations = new ICharityLedger.Allocation[](count);
        uint256 total;
        for (uint256 i = 0; i < count; ++i) {
            bytes32 donationId = pool[picks[i] % pool.length];
            uint256 left = _remaining(_donations[donationId]);
            // Half the parts take all that is left, the others 0..left + 2.
            uint256 part = parts[i] % 2 == 0 ? left : (parts[i] / 2) % (left + 3);
            allocations[i] = ICharityLedger.Allocation(donationId, part);
            total += part;
        }
        // extra: mostly 0, sometimes +1 or -1 (as the Hypothesis machine's [0, 0, 0, 1, -1]).
        uint256 amount = extra % 5 == 3 ? total + 1 : (extra % 5 == 4 && total != 0 ? total - 1 : total);

        bytes memory expected = _disbursementError(campaignId, amount, allocations, total);
        bytes memory call = abi.encodeCall(
            ICharityLedger.recordDisbursement,
            (_newId("disbursement"), campaignId, amount, "CN-ORG", "food", bytes32(0), allocations)
        );
        if (!_call(campaign.operator, call, expected)) return;
        for (uint256 i = 0; i < count; ++i) _donations[allocations[i].donationId].allocated += allocations[i].amount;
        campaign.disbursed += amount;
        campaign.disbursements += 1;
    }

    /// @notice Closes a campaign in one call of four (the others do nothing), so that most
    /// sequences go on long enough with open campaigns.
    function close(uint256 campaignSeed) external {
        if (campaignSeed % 4 != 0) return;
        bytes32 campaignId = _pickCampaign(campaignSeed / 4);
        CampaignModel storage campaign = _campaigns[campaignId];
        bytes memory expected;
        if (campaign.closed) expected = abi.encodeWithSelector(ICharityLedger.CampaignIsClosed.selector, campaignId);
        if (!_call(campaign.operator, abi.encodeCall(ICharityLedger.closeCampaign, (campaignId)), expected)) return;
        campaign.closed = true;
    }

    /// @notice The other charity's operator and a stranger can touch nothing of a campaign.
    function intrude(uint256 donationSeed, bool stranger) external {
        if (_donationIds.length == 0) return;
        bytes32 donationId = _donationIds[donationSeed % _donationIds.length];
        CampaignModel storage campaign = _campaigns[_donations[donationId].campaign];
        address intruder = stranger ? _stranger : _otherOperator(campaign.operator);
        bytes memory call = abi.encodeCall(ICharityLedger.refundDonation, (_newId("refund"), donationId, 1, "x"));
        _call(
            intruder,
            call,
            abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, campaign.charity, intruder)
        );
    }

    // ------------------------------------------------------- the model, read

    function campaignIds() external view returns (bytes32[] memory) {
        return _campaignIds;
    }

    function campaignModel(bytes32 campaignId) external view returns (CampaignModel memory) {
        return _campaigns[campaignId];
    }

    function donationIds() external view returns (bytes32[] memory) {
        return _donationIds;
    }

    function donationModel(bytes32 donationId) external view returns (DonationModel memory) {
        return _donations[donationId];
    }

    // ------------------------------------------------------------- helpers

    /// @notice Sends `call` as `sender`; when `expected` is not empty the ledger must revert
    /// with exactly that error, else it must accept. Returns whether it accepted.
    function _call(address sender, bytes memory call, bytes memory expected) private returns (bool) {
        vm.prank(sender);
        (bool ok, bytes memory returned) = address(_ledger).call(call);
        if (expected.length == 0) {
            vm.assertTrue(ok, string.concat("the ledger rejected a valid call: ", vm.toString(returned)));
            accepted += 1;
            return true;
        }
        vm.assertFalse(ok, "the ledger accepted a call it should have rejected");
        vm.assertEq(returned, expected, "the ledger rejected a call with another error");
        rejected += 1;
        return false;
    }

    /// @dev The contract's checks of a disbursement, in its order.
    function _disbursementError(
        bytes32 campaignId,
        uint256 amount,
        ICharityLedger.Allocation[] memory allocations,
        uint256 total
    ) private view returns (bytes memory) {
        CampaignModel storage campaign = _campaigns[campaignId];
        uint256 available = campaign.received - campaign.refunded - campaign.disbursed;
        if (amount == 0 || amount > MAX_AMOUNT) {
            return abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, amount, MAX_AMOUNT);
        }
        if (amount > available) {
            return abi.encodeWithSelector(ICharityLedger.CampaignOverdrawn.selector, campaignId, available, amount);
        }
        for (uint256 i = 0; i < allocations.length; ++i) {
            bytes32 donationId = allocations[i].donationId;
            uint256 part = allocations[i].amount;
            DonationModel storage donation = _donations[donationId];
            for (uint256 j = 0; j < i; ++j) {
                if (allocations[j].donationId == donationId) {
                    return abi.encodeWithSelector(ICharityLedger.DuplicateAllocation.selector, donationId);
                }
            }
            if (donation.campaign != campaignId) {
                return
                    abi.encodeWithSelector(
                        ICharityLedger.AllocationCampaignMismatch.selector,
                        donationId,
                        donation.campaign,
                        campaignId
                    );
            }
            if (part == 0) return abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, 0, MAX_AMOUNT);
            if (part > _remaining(donation)) {
                return
                    abi.encodeWithSelector(
                        ICharityLedger.DonationOverdrawn.selector,
                        donationId,
                        _remaining(donation),
                        part
                    );
            }
        }
        if (total != amount) return abi.encodeWithSelector(ICharityLedger.AllocationSumMismatch.selector, amount, total);
        return "";
    }

    /// @dev Mostly 1..5,000; sometimes the bounds 1 and MAX_AMOUNT; sometimes the invalid 0
    /// and MAX_AMOUNT + 1.
    function _amount(uint256 seed) private pure returns (uint256) {
        uint256 kind = seed % 16;
        if (kind == 0) return 1;
        if (kind == 1) return MAX_AMOUNT;
        if (kind == 2) return (seed / 16) % 2 == 0 ? 0 : MAX_AMOUNT + 1;
        return 1 + ((seed / 16) % 5_000);
    }

    function _remaining(DonationModel storage donation) private view returns (uint256) {
        return donation.amount - donation.allocated - donation.refunded;
    }

    function _pickCampaign(uint256 seed) private view returns (bytes32) {
        return _campaignIds[seed % _campaignIds.length];
    }

    function _ownWithSomethingLeft(bytes32 campaignId) private view returns (bytes32[] memory own) {
        own = new bytes32[](_donationIds.length);
        uint256 n;
        for (uint256 i = 0; i < _donationIds.length; ++i) {
            DonationModel storage donation = _donations[_donationIds[i]];
            if (donation.campaign == campaignId && _remaining(donation) != 0) own[n++] = _donationIds[i];
        }
        assembly ("memory-safe") {
            mstore(own, n)
        }
    }

    function _otherOperator(address operator) private view returns (address) {
        for (uint256 i = 0; i < _campaignIds.length; ++i) {
            address other = _campaigns[_campaignIds[i]].operator;
            if (other != operator) return other;
        }
        return _stranger;
    }

    function _newId(string memory kind) private returns (bytes32) {
        _counter += 1;
        return keccak256(abi.encodePacked(kind, "-", _counter));
    }
}
