// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {Context} from "@openzeppelin/contracts/utils/Context.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

import {ICharityLedger} from "./ICharityLedger.sol";

/// @title CharityLedger
/// @notice See {ICharityLedger}. Roles: DEFAULT_ADMIN_ROLE manages roles; REGISTRAR_ROLE
/// registers charities and their operators; PAUSER_ROLE pauses all writes. A charity's
/// records are written only by that charity's operator accounts, checked on every call.
///
/// Custody, fixed when a charity is registered: in platform custody the registrar manages
/// the charity's operators (keys the platform holds for it); in self-custody the charity
/// holds its operator keys and only its operators manage them, so without the charity's key
/// nobody, the registrar included, can write a record attributed to it.
///
/// Signed calls: an operator signs a {SignedCall} (EIP-712) and anyone relays it through
/// {execute}, paying the gas. The ledger is its own ERC-2771 trusted forwarder: {execute}
/// checks the signature and calls itself with the operator's address appended to the
/// calldata, and {_msgSender} returns that address, so every operator check and every
/// event's `operator` see the signer.
///
/// Why not OpenZeppelin's ERC2771Forwarder: its nonces are sequential per signer, so a
/// relayer holding 50 signed donations of one charity must send them strictly in nonce
/// order, and one stuck or dropped request blocks all later ones. Here a nonce is any
/// random bytes32 the signer picks and each is usable once (unordered nonces, as in
/// Permit2): requests land in any order, concurrently, each at most once. Record IDs alone
/// would not stop replays: an operator change (remove, then re-add the same key) has no
/// record ID, and an old signed `removeOperator` must not run again after a re-add.
contract CharityLedger is ICharityLedger, AccessControl, Pausable, EIP712, ERC2771Context {
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice Seals the service's access log, day by day (see {sealAccessLog}).
    bytes32 public constant LOG_SEALER_ROLE = keccak256("LOG_SEALER_ROLE");

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
    uint256 public constant MAX_APPROVERS = 20;
    /// @notice Bounds of a proposal's validity (seconds): an hour to a year.
    uint256 public constant MIN_VALIDITY = 1 hours;
    uint256 public constant MAX_VALIDITY = 365 days;
    /// @notice The latest date a campaign may end or a report cover: 2199-12-31T23:59:59Z
    /// (mirrors keep times as signed 64-bit integers; a far date must not stop them).
    uint64 public constant MAX_TIMESTAMP = 7_258_118_399;

    /// @dev Salt of the transient-storage slots that catch a donation named twice in one
    /// disbursement.
    bytes32 private constant _ALLOCATION_GUARD = keccak256("CharityLedger.allocationGuard");

    /// @dev The interface version, also recorded in the build artifact.
    string private constant _VERSION = "2.4.0";

    bytes32 private constant _SIGNED_CALL_TYPEHASH =
        keccak256("SignedCall(address operator,bytes data,bytes32 nonce,uint256 deadline)");

    /// @dev One storage slot per charity. registered == false: no such charity.
    struct Charity {
        bool registered;
        bool selfCustody;
        uint64 operatorCount;
    }

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

    /// @dev One storage slot per campaign: its end date and disclosure record counts.
    struct Disclosure {
        uint64 endsAt;
        uint64 reports;
        uint64 disposals;
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
        uint64 confirmed; // by the recipient organisation it names
    }

    /// @dev A disbursement to a campaign on the ledger; campaignSeq == 0: not a grant.
    struct Grant {
        uint64 campaignSeq;
        uint64 received;
    }

    /// @dev A campaign's approval rule; version == 0: none.
    struct Rule {
        uint64 version;
        uint8 threshold;
        uint8 approverCount;
        uint32 validity;
    }

    struct Proposal {
        bytes32 inputHash;
        address proposer;
        uint64 expiresAt;
        uint8 threshold;
        uint8 approvals;
        ProposalStatus status;
        uint64 campaignSeq;
        uint64 ruleVersion;
    }

    /// @dev A day's access-log seal; root == 0: not sealed.
    struct Seal {
        bytes32 root;
        bytes32 lastRowHash;
        uint64 rowCount;
    }

    uint256 private immutable _deploymentBlock;

    mapping(bytes32 charityId => Charity) private _charities;
    mapping(bytes32 charityId => mapping(address account => bool)) private _operators;
    mapping(bytes32 campaignId => Campaign) private _campaigns;
    mapping(uint64 seq => bytes32 campaignId) private _campaignIdBySeq;
    uint64 private _campaignCount;
    mapping(bytes32 donationId => Donation) private _donations;
    mapping(bytes32 refundId => Refund) private _refunds;
    mapping(bytes32 disbursementId => Disbursement) private _disbursements;
    mapping(bytes32 disbursementId => mapping(bytes32 documentHash => bool)) private _evidence;
    mapping(bytes32 disbursementId => mapping(bytes32 documentHash => bool)) private _withdrawn;
    mapping(bytes32 disbursementId => mapping(bytes32 copyHash => bytes32 originalHash)) private _originalOf;
    mapping(uint64 day => Seal) private _seals;
    mapping(bytes32 correctionId => bool) private _corrections;
    mapping(bytes32 disbursementId => Grant) private _grants;
    mapping(bytes32 donationId => bytes32 sourceDisbursementId) private _grantSources;
    mapping(bytes32 recipientId => address account) private _recipients;
    mapping(bytes32 disbursementId => bytes32 recipientId) private _recipientOf;
    mapping(bytes32 confirmationId => bool) private _confirmations;
    mapping(bytes32 campaignId => Rule) private _rules;
    mapping(bytes32 campaignId => mapping(uint64 version => mapping(address account => bool))) private _approvers;
    mapping(bytes32 disbursementId => Proposal) private _proposals;
    mapping(bytes32 disbursementId => mapping(address account => bool)) private _approvedBy;
    mapping(address operator => mapping(bytes32 nonce => bool)) private _usedNonces;
    mapping(bytes32 campaignId => Disclosure) private _disclosures;
    mapping(bytes32 reportId => uint64 campaignSeq) private _reports;
    mapping(bytes32 disposalId => uint64 campaignSeq) private _disposals;

    /// @dev The ledger is its own (and only) trusted forwarder: see {execute}.
    constructor(address admin) EIP712("CharityLedger", "2") ERC2771Context(address(this)) {
        _deploymentBlock = block.number;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGISTRAR_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(LOG_SEALER_ROLE, admin);
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
        _registerCharity(charityId, name, metadataHash, false);
    }

    /// @inheritdoc ICharityLedger
    function registerSelfCustodyCharity(
        bytes32 charityId,
        string calldata name,
        bytes32 metadataHash,
        address operator
    ) external onlyRole(REGISTRAR_ROLE) whenNotPaused {
        if (operator == address(0)) revert ZeroOperator();
        _registerCharity(charityId, name, metadataHash, true);
        _operators[charityId][operator] = true;
        _charities[charityId].operatorCount = 1;
        emit OperatorAdded(charityId, operator, _msgSender(), true);
    }

    /// @inheritdoc ICharityLedger
    function registerRecipient(
        bytes32 recipientId,
        string calldata identifier,
        string calldata name,
        address account
    ) external onlyRole(REGISTRAR_ROLE) whenNotPaused {
        _requireId(recipientId);
        _requireText(identifier, MAX_CODE_LENGTH);
        _requireText(name, MAX_NAME_LENGTH);
        if (account == address(0)) revert ZeroOperator();
        if (_recipients[recipientId] != address(0)) revert RecipientAlreadyRegistered(recipientId);
        _recipients[recipientId] = account;
        emit RecipientRegistered(recipientId, identifier, name, account, _msgSender());
    }

    /// @inheritdoc ICharityLedger
    /// @dev Not the registrar: a recipient's confirmations are its own, so the platform
    /// cannot move its key and confirm in its name.
    function setRecipientAccount(bytes32 recipientId, address account) external whenNotPaused {
        address current = _recipients[recipientId];
        if (current == address(0)) revert RecipientNotFound(recipientId);
        if (_msgSender() != current) revert NotRecipient(bytes32(0), _msgSender());
        if (account == address(0)) revert ZeroOperator();
        _recipients[recipientId] = account;
        emit RecipientAccountChanged(recipientId, account, current);
    }

    /// @inheritdoc ICharityLedger
    function addOperator(bytes32 charityId, address account) external whenNotPaused {
        Charity storage charity = _requireOperatorManager(charityId);
        if (charity.selfCustody && account == address(0)) revert ZeroOperator();
        if (_operators[charityId][account]) revert OperatorAlreadyAdded(charityId, account);
        _operators[charityId][account] = true;
        charity.operatorCount += 1;
        emit OperatorAdded(charityId, account, _msgSender(), charity.selfCustody);
    }

    /// @inheritdoc ICharityLedger
    function removeOperator(bytes32 charityId, address account) external whenNotPaused {
        Charity storage charity = _requireOperatorManager(charityId);
        if (!_operators[charityId][account]) revert OperatorNotFound(charityId, account);
        if (charity.selfCustody && charity.operatorCount == 1) revert LastOperator(charityId);
        _operators[charityId][account] = false;
        charity.operatorCount -= 1;
        emit OperatorRemoved(charityId, account, _msgSender());
    }

    // ----------------------------------------------------- signed calls

    /// @inheritdoc ICharityLedger
    /// @dev Checks, in order: the deadline, the nonce, the signature (ECDSA for an EOA,
    /// ERC-1271 for a contract wallet such as a Safe), the called function. The nonce is
    /// marked used before the call, so the call cannot replay itself. The inner call's
    /// revert data is passed on unchanged, so callers see the ledger's named error.
    function execute(
        SignedCall calldata call,
        bytes calldata signature
    ) public whenNotPaused returns (bytes memory) {
        // Deadlines are minutes to hours away; a validator's few seconds of leeway on the
        // timestamp do not matter.
        if (block.timestamp > call.deadline) revert SignatureExpired(call.deadline, block.timestamp);
        address operator = call.operator;
        if (_usedNonces[operator][call.nonce]) revert NonceAlreadyUsed(operator, call.nonce);
        if (!SignatureChecker.isValidSignatureNow(operator, _signedCallDigest(call), signature)) {
            revert InvalidSignature(operator);
        }
        bytes4 selector = call.data.length >= 4 ? bytes4(call.data[:4]) : bytes4(0);
        if (!_isSignable(selector)) revert SignedCallNotAllowed(selector);

        _usedNonces[operator][call.nonce] = true;
        // The ledger calls itself (ERC-2771: the operator appended to the calldata, which
        // {_msgSender} reads back). OpenZeppelin's functionCall passes the callee's revert
        // data on unchanged (FailedCall only when there is none, e.g. out of gas).
        bytes memory result = Address.functionCall(address(this), abi.encodePacked(call.data, operator));
        emit SignedCallExecuted(operator, call.nonce, msg.sender);
        return result;
    }

    /// @inheritdoc ICharityLedger
    /// @dev All or nothing: one call that reverts reverts the batch, with its error.
    function executeBatch(SignedCall[] calldata calls, bytes[] calldata signatures) external {
        uint256 count = calls.length;
        if (count == 0 || count > MAX_BATCH || signatures.length != count) revert InvalidListLength(count, MAX_BATCH);
        for (uint256 i; i < count; ++i) {
            execute(calls[i], signatures[i]);
        }
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
        emit CampaignCreated(campaignId, charityId, name, currency, goal, metadataHash, _msgSender());
    }

    /// @inheritdoc ICharityLedger
    function closeCampaign(bytes32 campaignId) external whenNotPaused {
        Campaign storage campaign = _campaign(campaignId);
        _requireOperator(campaign.charityId);
        if (campaign.closed) revert CampaignIsClosed(campaignId);
        campaign.closed = true;
        emit CampaignClosed(campaignId, campaign.charityId, _msgSender());
    }

    /// @inheritdoc ICharityLedger
    function setCampaignEnd(bytes32 campaignId, uint64 endsAt, string calldata reason) external whenNotPaused {
        Campaign storage campaign = _campaign(campaignId);
        _requireOperator(campaign.charityId);
        if (endsAt == 0 || endsAt > MAX_TIMESTAMP) revert InvalidPeriod(0, endsAt);
        Disclosure storage disclosure = _disclosures[campaignId];
        uint64 previous = disclosure.endsAt;
        if (previous != 0) {
            _requireText(reason, MAX_REASON_LENGTH);
        } else if (bytes(reason).length > MAX_REASON_LENGTH) {
            revert InvalidTextLength(bytes(reason).length, MAX_REASON_LENGTH);
        }
        disclosure.endsAt = endsAt;
        emit CampaignEndSet(campaignId, campaign.charityId, endsAt, previous, reason, _msgSender());
    }

    /// @inheritdoc ICharityLedger
    function publishReport(
        bytes32 reportId,
        bytes32 campaignId,
        ReportKind kind,
        uint64 periodStart,
        uint64 periodEnd,
        bytes32 documentHash
    ) external whenNotPaused {
        _requireId(reportId);
        _requireId(documentHash);
        Campaign storage campaign = _campaign(campaignId);
        _requireOperator(campaign.charityId);
        if (periodStart == 0 || periodEnd <= periodStart || periodEnd > MAX_TIMESTAMP) {
            revert InvalidPeriod(periodStart, periodEnd);
        }
        if (_reports[reportId] != 0) revert ReportAlreadyExists(reportId);
        _reports[reportId] = campaign.seq;
        _disclosures[campaignId].reports += 1;
        emit ReportPublished(
            reportId,
            campaignId,
            campaign.charityId,
            kind,
            periodStart,
            periodEnd,
            documentHash,
            _msgSender()
        );
    }

    /// @inheritdoc ICharityLedger
    function recordDisposal(
        bytes32 disposalId,
        bytes32 campaignId,
        Disposition disposition,
        uint256 amount,
        bytes32 targetCampaignId,
        string calldata rule,
        bytes32 documentHash
    ) external whenNotPaused {
        _requireId(disposalId);
        Campaign storage campaign = _campaign(campaignId);
        _requireOperator(campaign.charityId);
        if (!campaign.closed) revert CampaignNotClosed(campaignId);
        if (_disposals[disposalId] != 0) revert DisposalAlreadyExists(disposalId);
        uint256 available = uint256(campaign.received) - campaign.refunded - campaign.disbursed;
        if (amount > available) revert InvalidAmount(amount, available);
        if (disposition == Disposition.MovedToCampaign) {
            Campaign storage target = _campaigns[targetCampaignId];
            if (target.charityId == bytes32(0) || targetCampaignId == campaignId || target.currency != campaign.currency) {
                revert InvalidDisposition(disposition, targetCampaignId);
            }
        } else if (targetCampaignId != bytes32(0)) {
            revert InvalidDisposition(disposition, targetCampaignId);
        }
        if (disposition == Disposition.KeptUnderRule) {
            _requireText(rule, MAX_REASON_LENGTH);
        } else if (bytes(rule).length > MAX_REASON_LENGTH) {
            revert InvalidTextLength(bytes(rule).length, MAX_REASON_LENGTH);
        }
        _disposals[disposalId] = campaign.seq;
        _disclosures[campaignId].disposals += 1;
        emit RemainingFundsDisposed(
            disposalId,
            campaignId,
            campaign.charityId,
            disposition,
            amount,
            available,
            targetCampaignId,
            rule,
            documentHash,
            _msgSender()
        );
    }

    /// @inheritdoc ICharityLedger
    function recordDonation(DonationInput calldata donation) external whenNotPaused {
        Campaign storage campaign = _campaign(donation.campaignId);
        address operator = _requireOperator(campaign.charityId);
        _recordDonation(campaign, donation, operator);
    }

    /// @inheritdoc ICharityLedger
    function recordDonations(DonationInput[] calldata donations) external whenNotPaused {
        uint256 count = donations.length;
        if (count == 0 || count > MAX_BATCH) revert InvalidListLength(count, MAX_BATCH);
        // Batches usually name one campaign: check it (and the caller's role) once per run.
        bytes32 checkedId;
        address operator;
        Campaign storage campaign = _campaigns[bytes32(0)];
        for (uint256 i = 0; i < count; ++i) {
            DonationInput calldata donation = donations[i];
            if (donation.campaignId != checkedId || checkedId == bytes32(0)) {
                campaign = _campaign(donation.campaignId);
                operator = _requireOperator(campaign.charityId);
                checkedId = donation.campaignId;
            }
            _recordDonation(campaign, donation, operator);
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
        emit DonationRefunded(refundId, donationId, campaignId, amount, donation.refunded, reason, _msgSender());
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
        Campaign storage campaign = _campaign(campaignId);
        address operator = _requireOperator(campaign.charityId);
        if (_rules[campaignId].version != 0) revert ApprovalRequired(campaignId);
        _recordDisbursement(disbursementId, campaignId, amount, recipient, purpose, allocations, operator);
        if (evidenceHash != bytes32(0)) _anchorEvidence(disbursementId, evidenceHash);
    }

    /// @inheritdoc ICharityLedger
    function disburse(DisbursementInput calldata disbursement) external whenNotPaused {
        bytes32 campaignId = disbursement.campaignId;
        Campaign storage campaign = _campaign(campaignId);
        address operator = _requireOperator(campaign.charityId);
        if (_rules[campaignId].version != 0) revert ApprovalRequired(campaignId);
        _disburse(disbursement, campaign, operator);
    }

    /// @inheritdoc ICharityLedger
    function recordGrantDonation(DonationInput calldata donation, bytes32 sourceDisbursementId) external whenNotPaused {
        Campaign storage campaign = _campaign(donation.campaignId);
        address operator = _requireOperator(campaign.charityId);
        Grant storage grant = _grants[sourceDisbursementId];
        if (grant.campaignSeq != campaign.seq) revert GrantNotAddressed(sourceDisbursementId, donation.campaignId);
        // The source exists (a grant is only addressed by a recorded disbursement), and
        // received never exceeds its amount.
        uint256 available = _disbursements[sourceDisbursementId].amount - grant.received;
        if (donation.amount > available) revert GrantOverdrawn(sourceDisbursementId, available, donation.amount);
        _recordDonation(campaign, donation, operator);
        grant.received += uint64(donation.amount); // <= the source's amount < 2^64
        _grantSources[donation.donationId] = sourceDisbursementId;
        emit GrantReceived(
            donation.donationId,
            sourceDisbursementId,
            donation.campaignId,
            donation.amount,
            grant.received
        );
    }

    /// @inheritdoc ICharityLedger
    function setApprovalRule(
        bytes32 campaignId,
        address[] calldata approvers,
        uint8 threshold,
        uint32 validity
    ) external whenNotPaused {
        Campaign storage campaign = _campaign(campaignId);
        address operator = _requireOperator(campaign.charityId);
        uint256 count = approvers.length;
        if (
            threshold == 0 ||
            threshold > count ||
            count > MAX_APPROVERS ||
            validity < MIN_VALIDITY ||
            validity > MAX_VALIDITY
        ) revert InvalidApprovalRule(campaignId);
        Rule storage rule = _rules[campaignId];
        uint64 ruleVersion = rule.version + 1;
        mapping(address => bool) storage named = _approvers[campaignId][ruleVersion];
        for (uint256 i = 0; i < count; ++i) {
            address approver = approvers[i];
            if (approver == address(0) || named[approver]) revert InvalidApprovalRule(campaignId);
            named[approver] = true;
        }
        // count <= MAX_APPROVERS < 2^8
        _rules[campaignId] = Rule({version: ruleVersion, threshold: threshold, approverCount: uint8(count), validity: validity});
        emit ApprovalRuleSet(campaignId, campaign.charityId, ruleVersion, threshold, uint8(count), validity, operator);
        for (uint256 i = 0; i < count; ++i) {
            emit ApproverNamed(campaignId, ruleVersion, approvers[i]);
        }
    }

    /// @inheritdoc ICharityLedger
    function proposeDisbursement(DisbursementInput calldata disbursement) external whenNotPaused {
        bytes32 disbursementId = disbursement.disbursementId;
        bytes32 campaignId = disbursement.campaignId;
        Campaign storage campaign = _campaign(campaignId);
        address proposer = _requireOperator(campaign.charityId);
        Rule storage rule = _rules[campaignId];
        if (rule.version == 0) revert NoApprovalRule(campaignId);
        _requireId(disbursementId);
        if (_disbursements[disbursementId].amount != 0 || _proposals[disbursementId].status != ProposalStatus.None) {
            revert DisbursementAlreadyExists(disbursementId);
        }
        // Checked now so approvers see a proposal that can be paid; the balances are
        // checked again, and drawn, only when it is executed.
        _requireAmount(disbursement.amount);
        _requireText(disbursement.recipient, MAX_CODE_LENGTH);
        _requireText(disbursement.purpose, MAX_CODE_LENGTH);
        uint256 count = disbursement.allocations.length;
        if (count == 0 || count > MAX_ALLOCATIONS) revert InvalidListLength(count, MAX_ALLOCATIONS);
        _checkDestination(disbursement, campaign);

        bytes32 inputHash = keccak256(abi.encode(disbursement));
        uint64 expiresAt = uint64(block.timestamp) + rule.validity;
        _proposals[disbursementId] = Proposal({
            inputHash: inputHash,
            proposer: proposer,
            expiresAt: expiresAt,
            threshold: rule.threshold,
            approvals: 0,
            status: ProposalStatus.Pending,
            campaignSeq: campaign.seq,
            ruleVersion: rule.version
        });
        _emitProposed(disbursement, _proposals[disbursementId]);
    }

    /// @inheritdoc ICharityLedger
    function approveDisbursement(bytes32 disbursementId) external whenNotPaused {
        Proposal storage proposal = _pendingProposal(disbursementId);
        address approver = _msgSender();
        bytes32 campaignId = _campaignIdBySeq[proposal.campaignSeq];
        if (!_approvers[campaignId][proposal.ruleVersion][approver]) revert NotApprover(disbursementId, approver);
        if (approver == proposal.proposer) revert ProposerCannotApprove(disbursementId, approver);
        if (_approvedBy[disbursementId][approver]) revert AlreadyApproved(disbursementId, approver);
        _approvedBy[disbursementId][approver] = true;
        proposal.approvals += 1; // one per distinct approver, at most MAX_APPROVERS
        emit DisbursementApproved(disbursementId, approver, proposal.approvals, proposal.threshold);
    }

    /// @inheritdoc ICharityLedger
    function rejectDisbursement(bytes32 disbursementId, string calldata reason) external whenNotPaused {
        Proposal storage proposal = _pendingProposal(disbursementId);
        address sender = _msgSender();
        bytes32 campaignId = _campaignIdBySeq[proposal.campaignSeq];
        if (
            !_approvers[campaignId][proposal.ruleVersion][sender] &&
            !_operators[_campaigns[campaignId].charityId][sender]
        ) revert NotApprover(disbursementId, sender);
        _requireText(reason, MAX_REASON_LENGTH);
        proposal.status = ProposalStatus.Rejected;
        emit DisbursementRejected(disbursementId, sender, reason);
    }

    /// @inheritdoc ICharityLedger
    function executeDisbursement(DisbursementInput calldata disbursement) external whenNotPaused {
        bytes32 disbursementId = disbursement.disbursementId;
        Proposal storage proposal = _pendingProposal(disbursementId);
        if (proposal.approvals < proposal.threshold) {
            revert ApprovalsMissing(disbursementId, proposal.approvals, proposal.threshold);
        }
        bytes32 givenHash = keccak256(abi.encode(disbursement));
        if (givenHash != proposal.inputHash) revert ProposalMismatch(disbursementId, proposal.inputHash, givenHash);
        proposal.status = ProposalStatus.Executed;
        // The hash covers the campaign: it is the proposal's, whose rule is why we are here.
        _disburse(disbursement, _campaigns[disbursement.campaignId], proposal.proposer);
        emit ProposalExecuted(disbursementId, _msgSender());
    }

    /// @inheritdoc ICharityLedger
    function confirmReceipt(
        bytes32 confirmationId,
        bytes32 disbursementId,
        uint256 amount,
        string calldata statement,
        bytes32 evidenceHash
    ) external whenNotPaused {
        _requireId(confirmationId);
        Disbursement storage disbursement = _disbursements[disbursementId];
        if (disbursement.amount == 0) revert DisbursementNotFound(disbursementId);
        bytes32 recipientId = _recipientOf[disbursementId];
        address account = _msgSender();
        if (recipientId == bytes32(0) || _recipients[recipientId] != account) revert NotRecipient(disbursementId, account);
        _requireAmount(amount);
        _requireText(statement, MAX_REASON_LENGTH);
        if (_confirmations[confirmationId]) revert ConfirmationAlreadyExists(confirmationId);
        uint256 available = disbursement.amount - disbursement.confirmed;
        if (amount > available) revert ConfirmationExceedsDisbursement(disbursementId, available, amount);
        _confirmations[confirmationId] = true;
        disbursement.confirmed += uint64(amount); // <= the disbursement's amount < 2^64
        emit ReceiptConfirmed(
            confirmationId,
            disbursementId,
            recipientId,
            amount,
            disbursement.confirmed,
            statement,
            evidenceHash,
            account
        );
    }

    /// @inheritdoc ICharityLedger
    function anchorEvidence(bytes32 disbursementId, bytes32 documentHash) external whenNotPaused {
        _requireDisbursementOperator(disbursementId);
        _anchorEvidence(disbursementId, documentHash);
    }

    /// @inheritdoc ICharityLedger
    function linkRedactedCopy(bytes32 disbursementId, bytes32 originalHash, bytes32 copyHash) external whenNotPaused {
        _requireDisbursementOperator(disbursementId);
        if (!_evidence[disbursementId][originalHash]) revert EvidenceNotAnchored(disbursementId, originalHash);
        if (copyHash == bytes32(0)) revert ZeroId();
        if (copyHash == originalHash || _originalOf[disbursementId][copyHash] != bytes32(0)) {
            revert RedactedCopyAlreadyLinked(disbursementId, copyHash);
        }
        _originalOf[disbursementId][copyHash] = originalHash;
        if (!_evidence[disbursementId][copyHash]) _anchorEvidence(disbursementId, copyHash);
        emit RedactedCopyLinked(disbursementId, originalHash, copyHash, _msgSender());
    }

    /// @inheritdoc ICharityLedger
    function withdrawEvidence(
        bytes32 disbursementId,
        bytes32 documentHash,
        string calldata reason
    ) external whenNotPaused {
        _requireDisbursementOperator(disbursementId);
        _requireText(reason, MAX_REASON_LENGTH);
        if (!_evidence[disbursementId][documentHash]) revert EvidenceNotAnchored(disbursementId, documentHash);
        if (_withdrawn[disbursementId][documentHash]) revert EvidenceAlreadyWithdrawn(disbursementId, documentHash);
        _withdrawn[disbursementId][documentHash] = true;
        emit EvidenceWithdrawn(disbursementId, documentHash, reason, _msgSender());
    }

    /// @inheritdoc ICharityLedger
    function sealAccessLog(
        uint64 day,
        bytes32 root,
        uint64 rowCount,
        bytes32 lastRowHash
    ) external onlyRole(LOG_SEALER_ROLE) whenNotPaused {
        if (root == bytes32(0) || rowCount == 0) revert InvalidAccessLogSeal(day);
        if (_seals[day].root != bytes32(0)) revert AccessLogAlreadySealed(day);
        _seals[day] = Seal({root: root, lastRowHash: lastRowHash, rowCount: rowCount});
        emit AccessLogSealed(day, root, rowCount, lastRowHash, _msgSender());
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
        emit CorrectionRecorded(correctionId, charityId, originalId, originalKind, replacementId, reason, _msgSender());
    }

    // ------------------------------------------------------------ views

    /// @inheritdoc ICharityLedger
    function version() external pure returns (string memory) {
        return _VERSION;
    }

    /// @inheritdoc ICharityLedger
    function isSelfCustody(bytes32 charityId) external view returns (bool) {
        return _charities[charityId].selfCustody;
    }

    /// @inheritdoc ICharityLedger
    function isNonceUsed(address operator, bytes32 nonce) external view returns (bool) {
        return _usedNonces[operator][nonce];
    }

    /// @inheritdoc ICharityLedger
    function signedCallDigest(SignedCall calldata call) external view returns (bytes32) {
        return _signedCallDigest(call);
    }

    /// @inheritdoc ICharityLedger
    function deploymentBlock() external view returns (uint256) {
        return _deploymentBlock;
    }

    /// @inheritdoc ICharityLedger
    function isCharityRegistered(bytes32 charityId) external view returns (bool) {
        return _charities[charityId].registered;
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

    /// @inheritdoc ICharityLedger
    function evidenceStatus(
        bytes32 disbursementId,
        bytes32 documentHash
    ) external view returns (bool anchored, bool withdrawn, bytes32 originalHash) {
        return (
            _evidence[disbursementId][documentHash],
            _withdrawn[disbursementId][documentHash],
            _originalOf[disbursementId][documentHash]
        );
    }

    /// @inheritdoc ICharityLedger
    function accessLogSeal(uint64 day) external view returns (bytes32 root, uint64 rowCount, bytes32 lastRowHash) {
        Seal storage seal = _seals[day];
        return (seal.root, seal.rowCount, seal.lastRowHash);
    }

    /// @inheritdoc ICharityLedger
    function grantOf(bytes32 disbursementId) external view returns (bytes32 recipientCampaignId, uint256 received) {
        Grant storage grant = _grants[disbursementId];
        return (_campaignIdBySeq[grant.campaignSeq], grant.received);
    }

    /// @inheritdoc ICharityLedger
    function grantSourceOf(bytes32 donationId) external view returns (bytes32) {
        return _grantSources[donationId];
    }

    /// @inheritdoc ICharityLedger
    function recipientOf(bytes32 disbursementId) external view returns (bytes32 recipientId, uint256 confirmed) {
        return (_recipientOf[disbursementId], _disbursements[disbursementId].confirmed);
    }

    /// @inheritdoc ICharityLedger
    function recipientAccount(bytes32 recipientId) external view returns (address) {
        return _recipients[recipientId];
    }

    /// @inheritdoc ICharityLedger
    function approvalRuleOf(
        bytes32 campaignId
    ) external view returns (uint64 ruleVersion, uint8 threshold, uint8 approverCount, uint32 validity) {
        Rule storage rule = _rules[campaignId];
        return (rule.version, rule.threshold, rule.approverCount, rule.validity);
    }

    /// @inheritdoc ICharityLedger
    function isApprover(bytes32 campaignId, uint64 ruleVersion, address account) external view returns (bool) {
        return _approvers[campaignId][ruleVersion][account];
    }

    /// @inheritdoc ICharityLedger
    function proposalOf(bytes32 disbursementId) external view returns (ProposalView memory) {
        Proposal storage proposal = _proposals[disbursementId];
        if (proposal.status == ProposalStatus.None) revert ProposalNotFound(disbursementId);
        return
            ProposalView({
                campaignId: _campaignIdBySeq[proposal.campaignSeq],
                proposer: proposal.proposer,
                inputHash: proposal.inputHash,
                ruleVersion: proposal.ruleVersion,
                threshold: proposal.threshold,
                approvals: proposal.approvals,
                expiresAt: proposal.expiresAt,
                status: proposal.status
            });
    }

    /// @inheritdoc ICharityLedger
    function hasApproved(bytes32 disbursementId, address approver) external view returns (bool) {
        return _approvedBy[disbursementId][approver];
    }

    /// @inheritdoc ICharityLedger
    function disclosureOf(
        bytes32 campaignId
    ) external view returns (uint64 endsAt, uint256 reports, uint256 disposals) {
        Disclosure storage disclosure = _disclosures[campaignId];
        return (disclosure.endsAt, disclosure.reports, disclosure.disposals);
    }

    // --------------------------------------------------------- internal

    /// @dev Records a disbursement: checks, draws the campaign and the donations, emits
    /// DisbursementRecorded and the allocations. The caller has checked the operator.
    function _recordDisbursement(
        bytes32 disbursementId,
        bytes32 campaignId,
        uint256 amount,
        string calldata recipient,
        string calldata purpose,
        Allocation[] calldata allocations,
        address operator
    ) private {
        _requireId(disbursementId);
        Campaign storage campaign = _campaigns[campaignId];
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
            evidenceCount: 0,
            confirmed: 0
        });
        emit DisbursementRecorded(disbursementId, campaignId, amount, recipient, purpose, count, operator);

        uint256 sum = _allocate(disbursementId, campaignId, campaign.seq, allocations);
        if (sum != amount) revert AllocationSumMismatch(amount, sum);
    }

    /// @dev A full disbursement: recorded, addressed, its first evidence anchored.
    function _disburse(DisbursementInput calldata d, Campaign storage campaign, address operator) private {
        _checkDestination(d, campaign);
        bytes32 disbursementId = d.disbursementId;
        _recordDisbursement(disbursementId, d.campaignId, d.amount, d.recipient, d.purpose, d.allocations, operator);
        bytes32 recipientCampaignId = d.recipientCampaignId;
        if (recipientCampaignId != bytes32(0)) {
            Campaign storage target = _campaigns[recipientCampaignId];
            _grants[disbursementId] = Grant({campaignSeq: target.seq, received: 0});
            emit GrantAddressed(disbursementId, recipientCampaignId, target.charityId);
        }
        if (d.recipientOrgId != bytes32(0)) {
            _recipientOf[disbursementId] = d.recipientOrgId;
            emit RecipientNamed(disbursementId, d.recipientOrgId);
        }
        if (d.evidenceHash != bytes32(0)) _anchorEvidence(disbursementId, d.evidenceHash);
    }

    /// @dev Reverts unless the disbursement's grant campaign and recipient organisation,
    /// where named, exist and may receive it.
    function _checkDestination(DisbursementInput calldata d, Campaign storage campaign) private view {
        bytes32 recipientCampaignId = d.recipientCampaignId;
        if (recipientCampaignId != bytes32(0)) {
            if (recipientCampaignId == d.campaignId) revert InvalidGrantRecipient(d.disbursementId, recipientCampaignId);
            if (_campaign(recipientCampaignId).currency != campaign.currency) {
                revert GrantCurrencyMismatch(d.campaignId, recipientCampaignId);
            }
        }
        if (d.recipientOrgId != bytes32(0) && _recipients[d.recipientOrgId] == address(0)) {
            revert RecipientNotFound(d.recipientOrgId);
        }
    }

    /// @dev Its own function: the event's ten fields are too many for one stack frame.
    function _emitProposed(DisbursementInput calldata d, Proposal storage proposal) private {
        emit DisbursementProposed(
            d.disbursementId,
            d.campaignId,
            proposal.inputHash,
            d.amount,
            d.recipient,
            d.purpose,
            proposal.ruleVersion,
            proposal.threshold,
            proposal.expiresAt,
            proposal.proposer
        );
    }

    /// @dev A proposal that may still be approved, rejected or executed.
    function _pendingProposal(bytes32 disbursementId) private view returns (Proposal storage proposal) {
        proposal = _proposals[disbursementId];
        ProposalStatus status = proposal.status;
        if (status == ProposalStatus.None) revert ProposalNotFound(disbursementId);
        if (status != ProposalStatus.Pending) revert ProposalNotPending(disbursementId, status);
        if (block.timestamp > proposal.expiresAt) revert ProposalExpired(disbursementId, proposal.expiresAt);
    }

    function _recordDonation(Campaign storage campaign, DonationInput calldata input, address operator) private {
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
            operator
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
        emit EvidenceAnchored(disbursementId, documentHash, disbursement.evidenceCount, _msgSender());
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
        } else if (kind == RecordKind.Disbursement) {
            seq = _disbursements[recordId].campaignSeq;
        } else if (kind == RecordKind.Report) {
            seq = _reports[recordId];
        } else {
            seq = _disposals[recordId];
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

    /// @dev Reverts unless the caller (the signer, in a signed call) operates the charity;
    /// returns the caller.
    function _requireOperator(bytes32 charityId) private view returns (address operator) {
        operator = _msgSender();
        if (!_operators[charityId][operator]) revert NotCharityOperator(charityId, operator);
    }

    /// @dev Reverts unless the disbursement exists and the sender operates its charity.
    function _requireDisbursementOperator(bytes32 disbursementId) private view {
        Disbursement storage disbursement = _disbursements[disbursementId];
        if (disbursement.amount == 0) revert DisbursementNotFound(disbursementId);
        _requireOperator(_campaigns[_campaignIdBySeq[disbursement.campaignSeq]].charityId);
    }

    function _requireCharity(bytes32 charityId) private view {
        if (!_charities[charityId].registered) revert CharityNotFound(charityId);
    }

    function _registerCharity(bytes32 charityId, string calldata name, bytes32 metadataHash, bool selfCustody) private {
        _requireId(charityId);
        _requireText(name, MAX_NAME_LENGTH);
        Charity storage charity = _charities[charityId];
        if (charity.registered) revert CharityAlreadyRegistered(charityId);
        charity.registered = true;
        charity.selfCustody = selfCustody;
        emit CharityRegistered(charityId, name, metadataHash, _msgSender(), selfCustody);
    }

    /// @dev Reverts unless the caller may change the charity's operators: the registrar in
    /// platform custody, an operator of the charity in self-custody.
    function _requireOperatorManager(bytes32 charityId) private view returns (Charity storage charity) {
        charity = _charities[charityId];
        if (!charity.selfCustody) {
            _checkRole(REGISTRAR_ROLE);
            _requireCharity(charityId);
            return charity;
        }
        address sender = _msgSender();
        if (!_operators[charityId][sender]) {
            if (hasRole(REGISTRAR_ROLE, sender)) revert SelfCustodyCharity(charityId);
            revert NotCharityOperator(charityId, sender);
        }
    }

    function _signedCallDigest(SignedCall calldata call) private view returns (bytes32) {
        return
            _hashTypedDataV4(
                keccak256(abi.encode(_SIGNED_CALL_TYPEHASH, call.operator, keccak256(call.data), call.nonce, call.deadline))
            );
    }

    /// @dev The functions a signed call may call: those that write a charity's records or
    /// operators. Not execute itself, nor the registrar's and admin's functions.
    function _isSignable(bytes4 selector) private pure returns (bool) {
        return
            selector == this.recordDonation.selector ||
            selector == this.recordDonations.selector ||
            selector == this.createCampaign.selector ||
            selector == this.closeCampaign.selector ||
            selector == this.setCampaignEnd.selector ||
            selector == this.publishReport.selector ||
            selector == this.recordDisposal.selector ||
            selector == this.refundDonation.selector ||
            selector == this.recordDisbursement.selector ||
            selector == this.disburse.selector ||
            selector == this.recordGrantDonation.selector ||
            selector == this.setApprovalRule.selector ||
            selector == this.proposeDisbursement.selector ||
            selector == this.approveDisbursement.selector ||
            selector == this.rejectDisbursement.selector ||
            selector == this.executeDisbursement.selector ||
            selector == this.confirmReceipt.selector ||
            selector == this.setRecipientAccount.selector ||
            selector == this.anchorEvidence.selector ||
            selector == this.linkRedactedCopy.selector ||
            selector == this.withdrawEvidence.selector ||
            selector == this.recordCorrection.selector ||
            selector == this.addOperator.selector ||
            selector == this.removeOperator.selector;
    }

    // ERC2771Context, with this contract as the trusted forwarder, decides the sender.

    function _msgSender() internal view override(Context, ERC2771Context) returns (address) {
        return ERC2771Context._msgSender();
    }

    function _msgData() internal view override(Context, ERC2771Context) returns (bytes calldata) {
        return ERC2771Context._msgData();
    }

    function _contextSuffixLength() internal view override(Context, ERC2771Context) returns (uint256) {
        return ERC2771Context._contextSuffixLength();
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
