// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {ICharityLedger} from "./ICharityLedger.sol";

/// @title CharityLedger
/// @notice See {ICharityLedger}. Roles: DEFAULT_ADMIN_ROLE manages roles; REGISTRAR_ROLE
/// registers charities and their operators; PAUSER_ROLE pauses all writes. A charity's
/// records are written only by that charity's operator accounts, checked on every call.
contract CharityLedger is ICharityLedger, AccessControl, Pausable {
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice Upper bound of a single donation, refund, allocation or disbursement
    /// (minor units). 10^18 fits the packed uint64 fields with room to spare.
    uint256 public constant MAX_AMOUNT = 1e18;
    /// @notice Upper bound of a campaign goal (minor units).
    uint256 public constant MAX_GOAL = 1e24;
    uint256 public constant MAX_BATCH = 500;
    uint256 public constant MAX_ALLOCATIONS = 500;
    uint256 public constant MAX_NAME_LENGTH = 200;
    uint256 public constant MAX_CODE_LENGTH = 128;
    uint256 public constant MAX_REASON_LENGTH = 256;

    /// @dev Salt of the transient-storage slots that catch a donation named twice in one
    /// disbursement.
    bytes32 private constant _ALLOCATION_GUARD = keccak256("CharityLedger.allocationGuard");

    struct Campaign {
        bytes32 charityId; // zero: no such campaign
        uint128 goal;
        bytes3 currency;
        bool closed;
        uint64 seq; // 1-based, lets a donation name its campaign in 8 bytes
        uint128 received;
        uint128 refunded;
        uint128 disbursed;
        uint64 donationCount;
        uint64 disbursementCount;
    }

    /// @dev One storage slot. amount == 0 means no such donation.
    struct Donation {
        uint64 amount;
        uint64 allocated;
        uint64 refunded;
        uint64 campaignSeq;
    }

    struct Refund {
        bytes32 donationId;
        uint64 amount; // zero: no such refund
    }

    /// @dev One storage slot. amount == 0 means no such disbursement.
    struct Disbursement {
        uint64 campaignSeq;
        uint64 amount;
        uint32 allocationCount;
        uint32 evidenceCount;
    }

    uint256 private immutable _deploymentBlock;

    mapping(bytes32 charityId => bool) private _charities;
    mapping(bytes32 charityId => mapping(address account => bool)) private _operators;
    mapping(bytes32 campaignId => Campaign) private _campaigns;
    mapping(uint64 seq => bytes32 campaignId) private _campaignIdBySeq;
    uint64 private _campaignCount;
    mapping(bytes32 donationId => Donation) private _donations;
    mapping(bytes32 refundId => Refund) private _refunds;
    mapping(bytes32 disbursementId => Disbursement) private _disbursements;
    mapping(bytes32 disbursementId => mapping(bytes32 documentHash => bool)) private _evidence;
    mapping(bytes32 correctionId => bool) private _corrections;

    constructor(address admin) {
        _deploymentBlock = block.number;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGISTRAR_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    // ------------------------------------------------------------ admin

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    // -------------------------------------------------------- registrar

    /// @inheritdoc ICharityLedger
    function registerCharity(
        bytes32 charityId,
        string calldata name,
        bytes32 metadataHash
    ) external onlyRole(REGISTRAR_ROLE) whenNotPaused {
        _requireId(charityId);
        _requireText(name, MAX_NAME_LENGTH);
        if (_charities[charityId]) revert CharityAlreadyRegistered(charityId);
        _charities[charityId] = true;
        emit CharityRegistered(charityId, name, metadataHash, msg.sender);
    }

    /// @inheritdoc ICharityLedger
    function addOperator(bytes32 charityId, address account) external onlyRole(REGISTRAR_ROLE) whenNotPaused {
        _requireCharity(charityId);
        if (_operators[charityId][account]) revert OperatorAlreadyAdded(charityId, account);
        _operators[charityId][account] = true;
        emit OperatorAdded(charityId, account, msg.sender);
    }

    /// @inheritdoc ICharityLedger
    function removeOperator(bytes32 charityId, address account) external onlyRole(REGISTRAR_ROLE) whenNotPaused {
        _requireCharity(charityId);
        if (!_operators[charityId][account]) revert OperatorNotFound(charityId, account);
        _operators[charityId][account] = false;
        emit OperatorRemoved(charityId, account, msg.sender);
    }

    // --------------------------------------------------------- operator

    /// @inheritdoc ICharityLedger
    function createCampaign(
        bytes32 campaignId,
        bytes32 charityId,
        string calldata name,
        bytes3 currency,
        uint256 goal,
        bytes32 metadataHash
    ) external whenNotPaused {
        _requireId(campaignId);
        _requireCharity(charityId);
        _requireOperator(charityId);
        _requireText(name, MAX_NAME_LENGTH);
        _requireCurrency(currency);
        if (goal == 0 || goal > MAX_GOAL) revert InvalidAmount(goal, MAX_GOAL);
        Campaign storage campaign = _campaigns[campaignId];
        if (campaign.charityId != bytes32(0)) revert CampaignAlreadyExists(campaignId);

        uint64 seq = ++_campaignCount;
        campaign.charityId = charityId;
        campaign.goal = uint128(goal); // goal <= MAX_GOAL < 2^128
        campaign.currency = currency;
        campaign.seq = seq;
        _campaignIdBySeq[seq] = campaignId;
        emit CampaignCreated(campaignId, charityId, name, currency, goal, metadataHash, msg.sender);
    }

    /// @inheritdoc ICharityLedger
    function closeCampaign(bytes32 campaignId) external whenNotPaused {
        Campaign storage campaign = _campaign(campaignId);
        _requireOperator(campaign.charityId);
        if (campaign.closed) revert CampaignIsClosed(campaignId);
        campaign.closed = true;
        emit CampaignClosed(campaignId, campaign.charityId, msg.sender);
    }

    /// @inheritdoc ICharityLedger
    function recordDonation(DonationInput calldata donation) external whenNotPaused {
        Campaign storage campaign = _campaign(donation.campaignId);
        _requireOperator(campaign.charityId);
        _recordDonation(campaign, donation);
    }

    /// @inheritdoc ICharityLedger
    function recordDonations(DonationInput[] calldata donations) external whenNotPaused {
        uint256 count = donations.length;
        if (count == 0 || count > MAX_BATCH) revert InvalidListLength(count, MAX_BATCH);
        // Batches usually name one campaign: check it (and the caller's role) once per run.
        bytes32 checkedId;
        Campaign storage campaign = _campaigns[bytes32(0)];
        for (uint256 i = 0; i < count; ++i) {
            DonationInput calldata donation = donations[i];
            if (donation.campaignId != checkedId || checkedId == bytes32(0)) {
                campaign = _campaign(donation.campaignId);
                _requireOperator(campaign.charityId);
                checkedId = donation.campaignId;
            }
            _recordDonation(campaign, donation);
        }
    }

    /// @inheritdoc ICharityLedger
    function refundDonation(
        bytes32 refundId,
        bytes32 donationId,
        uint256 amount,
        string calldata reason
    ) external whenNotPaused {
        _requireId(refundId);
        Donation storage donation = _donation(donationId);
        bytes32 campaignId = _campaignIdBySeq[donation.campaignSeq];
        Campaign storage campaign = _campaigns[campaignId];
        _requireOperator(campaign.charityId);
        _requireAmount(amount);
        _requireText(reason, MAX_REASON_LENGTH);
        if (_refunds[refundId].amount != 0) revert RefundAlreadyExists(refundId);
        uint256 available = _remaining(donation);
        if (amount > available) revert DonationOverdrawn(donationId, available, amount);

        // amount <= available <= donation.amount <= MAX_AMOUNT < 2^64: the casts are exact.
        donation.refunded += uint64(amount);
        campaign.refunded += uint128(amount);
        _refunds[refundId] = Refund({donationId: donationId, amount: uint64(amount)});
        emit DonationRefunded(refundId, donationId, campaignId, amount, donation.refunded, reason, msg.sender);
    }

    /// @inheritdoc ICharityLedger
    function recordDisbursement(
        bytes32 disbursementId,
        bytes32 campaignId,
        uint256 amount,
        string calldata recipient,
        string calldata purpose,
        bytes32 evidenceHash,
        Allocation[] calldata allocations
    ) external whenNotPaused {
        _requireId(disbursementId);
        Campaign storage campaign = _campaign(campaignId);
        _requireOperator(campaign.charityId);
        _requireAmount(amount);
        _requireText(recipient, MAX_CODE_LENGTH);
        _requireText(purpose, MAX_CODE_LENGTH);
        if (_disbursements[disbursementId].amount != 0) revert DisbursementAlreadyExists(disbursementId);
        uint256 count = allocations.length;
        if (count == 0 || count > MAX_ALLOCATIONS) revert InvalidListLength(count, MAX_ALLOCATIONS);
        uint256 campaignAvailable = _available(campaign);
        if (amount > campaignAvailable) revert CampaignOverdrawn(campaignId, campaignAvailable, amount);

        campaign.disbursed += uint128(amount); // amount <= MAX_AMOUNT
        campaign.disbursementCount += 1;
        _disbursements[disbursementId] = Disbursement({
            campaignSeq: campaign.seq,
            amount: uint64(amount), // amount <= MAX_AMOUNT < 2^64
            allocationCount: uint32(count), // count <= MAX_ALLOCATIONS
            evidenceCount: 0
        });
        emit DisbursementRecorded(disbursementId, campaignId, amount, recipient, purpose, count, msg.sender);

        uint256 sum = _allocate(disbursementId, campaignId, campaign.seq, allocations);
        if (sum != amount) revert AllocationSumMismatch(amount, sum);

        if (evidenceHash != bytes32(0)) _anchorEvidence(disbursementId, evidenceHash);
    }

    /// @inheritdoc ICharityLedger
    function anchorEvidence(bytes32 disbursementId, bytes32 documentHash) external whenNotPaused {
        Disbursement storage disbursement = _disbursements[disbursementId];
        if (disbursement.amount == 0) revert DisbursementNotFound(disbursementId);
        _requireOperator(_campaigns[_campaignIdBySeq[disbursement.campaignSeq]].charityId);
        _anchorEvidence(disbursementId, documentHash);
    }

    /// @inheritdoc ICharityLedger
    function recordCorrection(
        bytes32 correctionId,
        bytes32 charityId,
        RecordKind originalKind,
        bytes32 originalId,
        bytes32 replacementId,
        string calldata reason
    ) external whenNotPaused {
        _requireId(correctionId);
        _requireCharity(charityId);
        _requireOperator(charityId);
        _requireText(reason, MAX_REASON_LENGTH);
        if (_corrections[correctionId]) revert CorrectionAlreadyExists(correctionId);
        if (_charityOfRecord(originalKind, originalId) != charityId) revert RecordNotFound(originalKind, originalId);
        if (replacementId != bytes32(0) && _charityOfRecord(originalKind, replacementId) != charityId) {
            revert RecordNotFound(originalKind, replacementId);
        }
        _corrections[correctionId] = true;
        emit CorrectionRecorded(correctionId, charityId, originalId, originalKind, replacementId, reason, msg.sender);
    }

    // ------------------------------------------------------------ views

    /// @inheritdoc ICharityLedger
    function deploymentBlock() external view returns (uint256) {
        return _deploymentBlock;
    }

    /// @inheritdoc ICharityLedger
    function isCharityRegistered(bytes32 charityId) external view returns (bool) {
        return _charities[charityId];
    }

    /// @inheritdoc ICharityLedger
    function isOperator(bytes32 charityId, address account) external view returns (bool) {
        return _operators[charityId][account];
    }

    /// @inheritdoc ICharityLedger
    function donationOf(bytes32 donationId) external view returns (DonationView memory) {
        Donation storage donation = _donation(donationId);
        return
            DonationView({
                campaignId: _campaignIdBySeq[donation.campaignSeq],
                amount: donation.amount,
                allocated: donation.allocated,
                refunded: donation.refunded,
                remaining: _remaining(donation)
            });
    }

    /// @inheritdoc ICharityLedger
    function campaignOf(bytes32 campaignId) external view returns (CampaignView memory) {
        Campaign storage campaign = _campaign(campaignId);
        return
            CampaignView({
                charityId: campaign.charityId,
                currency: campaign.currency,
                closed: campaign.closed,
                goal: campaign.goal,
                received: campaign.received,
                refunded: campaign.refunded,
                disbursed: campaign.disbursed,
                available: _available(campaign),
                donationCount: campaign.donationCount,
                disbursementCount: campaign.disbursementCount
            });
    }

    /// @inheritdoc ICharityLedger
    function disbursementOf(bytes32 disbursementId) external view returns (DisbursementView memory) {
        Disbursement storage disbursement = _disbursements[disbursementId];
        if (disbursement.amount == 0) revert DisbursementNotFound(disbursementId);
        return
            DisbursementView({
                campaignId: _campaignIdBySeq[disbursement.campaignSeq],
                amount: disbursement.amount,
                allocationCount: disbursement.allocationCount,
                evidenceCount: disbursement.evidenceCount
            });
    }

    /// @inheritdoc ICharityLedger
    function refundOf(bytes32 refundId) external view returns (bytes32 donationId, uint256 amount) {
        Refund storage refund = _refunds[refundId];
        if (refund.amount == 0) revert RecordNotFound(RecordKind.Refund, refundId);
        return (refund.donationId, refund.amount);
    }

    /// @inheritdoc ICharityLedger
    function isEvidenceAnchored(bytes32 disbursementId, bytes32 documentHash) external view returns (bool) {
        return _evidence[disbursementId][documentHash];
    }

    // --------------------------------------------------------- internal

    function _recordDonation(Campaign storage campaign, DonationInput calldata input) private {
        bytes32 donationId = input.donationId;
        _requireId(donationId);
        if (campaign.closed) revert CampaignIsClosed(input.campaignId);
        _requireAmount(input.amount);
        if (input.donorCommitment == bytes32(0)) revert ZeroDonorCommitment(donationId);
        Donation storage donation = _donations[donationId];
        if (donation.amount != 0) revert DonationAlreadyExists(donationId);

        donation.amount = uint64(input.amount); // amount <= MAX_AMOUNT < 2^64
        donation.campaignSeq = campaign.seq;
        campaign.received += uint128(input.amount);
        campaign.donationCount += 1;
        emit DonationRecorded(
            donationId,
            input.campaignId,
            input.amount,
            input.donorCommitment,
            input.channel,
            input.metadataHash,
            msg.sender
        );
    }

    /// @dev Draws each allocation from its donation and returns their sum. A donation named
    /// twice is caught through transient storage, which is cleared before returning.
    function _allocate(
        bytes32 disbursementId,
        bytes32 campaignId,
        uint64 campaignSeq,
        Allocation[] calldata allocations
    ) private returns (uint256 sum) {
        uint256 count = allocations.length;
        for (uint256 i = 0; i < count; ++i) {
            bytes32 donationId = allocations[i].donationId;
            uint256 amount = allocations[i].amount;
            bytes32 guard = keccak256(abi.encode(_ALLOCATION_GUARD, donationId));
            bool seen;
            assembly ("memory-safe") {
                seen := tload(guard)
                tstore(guard, 1)
            }
            if (seen) revert DuplicateAllocation(donationId);

            Donation storage donation = _donation(donationId);
            if (donation.campaignSeq != campaignSeq) {
                revert AllocationCampaignMismatch(donationId, _campaignIdBySeq[donation.campaignSeq], campaignId);
            }
            _requireAmount(amount);
            uint256 available = _remaining(donation);
            if (amount > available) revert DonationOverdrawn(donationId, available, amount);
            donation.allocated += uint64(amount); // amount <= available < 2^64
            // Each amount <= MAX_AMOUNT and count <= MAX_ALLOCATIONS: the sum stays far below 2^256.
            unchecked {
                sum += amount;
            }
            emit DonationAllocated(disbursementId, donationId, amount, donation.allocated);
        }
        for (uint256 i = 0; i < count; ++i) {
            bytes32 guard = keccak256(abi.encode(_ALLOCATION_GUARD, allocations[i].donationId));
            assembly ("memory-safe") {
                tstore(guard, 0)
            }
        }
    }

    function _anchorEvidence(bytes32 disbursementId, bytes32 documentHash) private {
        if (documentHash == bytes32(0)) revert ZeroId();
        if (_evidence[disbursementId][documentHash]) revert EvidenceAlreadyAnchored(disbursementId, documentHash);
        _evidence[disbursementId][documentHash] = true;
        Disbursement storage disbursement = _disbursements[disbursementId];
        disbursement.evidenceCount += 1;
        emit EvidenceAnchored(disbursementId, documentHash, disbursement.evidenceCount, msg.sender);
    }

    /// @dev The charity owning a record, or zero when there is no such record.
    function _charityOfRecord(RecordKind kind, bytes32 recordId) private view returns (bytes32) {
        uint64 seq;
        if (kind == RecordKind.Campaign) {
            return _campaigns[recordId].charityId;
        } else if (kind == RecordKind.Donation) {
            seq = _donations[recordId].campaignSeq;
        } else if (kind == RecordKind.Refund) {
            Refund storage refund = _refunds[recordId];
            if (refund.amount == 0) return bytes32(0);
            seq = _donations[refund.donationId].campaignSeq;
        } else {
            seq = _disbursements[recordId].campaignSeq;
        }
        // seq 0 is never assigned, so an unknown record maps to the zero campaign and charity.
        return _campaigns[_campaignIdBySeq[seq]].charityId;
    }

    function _campaign(bytes32 campaignId) private view returns (Campaign storage campaign) {
        campaign = _campaigns[campaignId];
        if (campaign.charityId == bytes32(0)) revert CampaignNotFound(campaignId);
    }

    function _donation(bytes32 donationId) private view returns (Donation storage donation) {
        donation = _donations[donationId];
        if (donation.amount == 0) revert DonationNotFound(donationId);
    }

    function _remaining(Donation storage donation) private view returns (uint256) {
        // The contract keeps allocated + refunded <= amount for every donation.
        unchecked {
            return uint256(donation.amount) - donation.allocated - donation.refunded;
        }
    }

    function _available(Campaign storage campaign) private view returns (uint256) {
        // refunded and disbursed are drawn from donations' remaining balances, so they
        // never exceed received together.
        unchecked {
            return uint256(campaign.received) - campaign.refunded - campaign.disbursed;
        }
    }

    function _requireOperator(bytes32 charityId) private view {
        if (!_operators[charityId][msg.sender]) revert NotCharityOperator(charityId, msg.sender);
    }

    function _requireCharity(bytes32 charityId) private view {
        if (!_charities[charityId]) revert CharityNotFound(charityId);
    }

    function _requireId(bytes32 id) private pure {
        if (id == bytes32(0)) revert ZeroId();
    }

    function _requireAmount(uint256 amount) private pure {
        if (amount == 0 || amount > MAX_AMOUNT) revert InvalidAmount(amount, MAX_AMOUNT);
    }

    function _requireText(string calldata text, uint256 maxLength) private pure {
        uint256 length = bytes(text).length;
        if (length == 0 || length > maxLength) revert InvalidTextLength(length, maxLength);
    }

    function _requireCurrency(bytes3 currency) private pure {
        for (uint256 i = 0; i < 3; ++i) {
            bytes1 c = currency[i];
            if (c < "A" || c > "Z") revert InvalidCurrency(currency);
        }
    }
}
