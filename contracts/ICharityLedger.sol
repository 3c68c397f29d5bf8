// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Charity ledger: an append-only, rule-enforcing record of a charity's fund flows
/// @notice Charities (through their operator accounts) record campaigns, donations, refunds,
/// disbursements with their allocations to donations, corrections and evidence document
/// hashes. Every state change emits a past-tense event that carries everything an off-chain
/// mirror needs, so the mirror never has to call back into contract state.
/// @dev Amounts are integers in the minor unit of the campaign's ISO 4217 currency (cents,
/// fen). Donor identity never goes on chain: a donation carries only a commitment
/// `keccak256(salt ‖ donor reference)`; the donor's receipt holds the salt.
interface ICharityLedger {
    // ------------------------------------------------------------------ types

    /// @notice One donation of a batch given to {recordDonations}.
    /// @param donationId Unique, non-zero donation ID (the ID on the donor's receipt).
    /// @param campaignId The campaign the donation belongs to.
    /// @param amount Amount in the campaign currency's minor unit, 1..MAX_AMOUNT.
    /// @param donorCommitment Non-zero `keccak256(salt ‖ donor reference)`.
    /// @param channel Short code of the channel the money came through (for example "bank").
    /// @param metadataHash Hash of off-chain metadata, or zero.
    struct DonationInput {
        bytes32 donationId;
        bytes32 campaignId;
        uint256 amount;
        bytes32 donorCommitment;
        bytes32 channel;
        bytes32 metadataHash;
    }

    /// @notice How much of a disbursement one donation paid for.
    struct Allocation {
        bytes32 donationId;
        uint256 amount;
    }

    /// @notice A disbursement in full, for {disburse}, {proposeDisbursement} and
    /// {executeDisbursement}: {recordDisbursement}'s fields and where the money goes.
    /// @param recipientCampaignId A campaign on this ledger the money is granted to (same
    /// currency, not the paying campaign), whose charity records it with
    /// {recordGrantDonation}; zero when the recipient is not on the ledger.
    /// @param recipientOrgId A recipient organisation registered with {registerRecipient},
    /// which may confirm receipt with {confirmReceipt}; zero when none is named.
    struct DisbursementInput {
        bytes32 disbursementId;
        bytes32 campaignId;
        uint256 amount;
        string recipient;
        string purpose;
        bytes32 evidenceHash;
        bytes32 recipientCampaignId;
        bytes32 recipientOrgId;
        Allocation[] allocations;
    }

    /// @notice Where a proposal stands. Expiry is not a status: a Pending proposal past
    /// its `expiresAt` can no longer be approved or executed.
    enum ProposalStatus {
        None,
        Pending,
        Rejected,
        Executed
    }

    /// @notice A proposed disbursement, as returned by {proposalOf}.
    /// @param inputHash keccak256(abi.encode(DisbursementInput)): what the approvers approve,
    /// and the only input {executeDisbursement} accepts.
    /// @param ruleVersion The campaign's approval rule when proposed: its approvers,
    /// threshold and validity apply to this proposal whatever the rule becomes later.
    struct ProposalView {
        bytes32 campaignId;
        address proposer;
        bytes32 inputHash;
        uint256 ruleVersion;
        uint256 threshold;
        uint256 approvals;
        uint256 expiresAt;
        ProposalStatus status;
    }

    /// @notice A call an operator signed (EIP-712, domain "CharityLedger" version "2") for
    /// anyone to relay through {execute}; the relayer pays the gas, the operator is the author.
    /// @param operator The signer: an EOA, or a contract wallet that answers ERC-1271.
    /// @param data The ABI-encoded call of one of the charity-record functions.
    /// @param nonce Any unused bytes32 of the signer's choosing (random): unordered, so many
    /// signed calls can be in flight at once and land in any order, each at most once.
    /// @param deadline Last block timestamp at which the call may execute.
    struct SignedCall {
        address operator;
        bytes data;
        bytes32 nonce;
        uint256 deadline;
    }

    /// @notice The kinds of record a correction may reference.
    enum RecordKind {
        Campaign,
        Donation,
        Refund,
        Disbursement,
        Report,
        Disposal
    }

    /// @notice What a campaign report covers: a period of a campaign under way, or the whole
    /// campaign once it has ended (the full account disclosure rules ask for).
    enum ReportKind {
        Periodic,
        Final
    }

    /// @notice What a charity does with a campaign's remaining funds.
    /// @dev ReturnedToDonors: refunded to the donations that still hold them; MovedToCampaign:
    /// granted to `targetCampaignId`; KeptUnderRule: kept under the stated rule (for example
    /// the charity's charter or the donors' agreement), which the record states.
    enum Disposition {
        ReturnedToDonors,
        MovedToCampaign,
        KeptUnderRule
    }

    /// @notice Chain state of a donation, as returned by {donationOf}.
    struct DonationView {
        bytes32 campaignId;
        uint256 amount;
        uint256 allocated;
        uint256 refunded;
        uint256 remaining;
    }

    /// @notice Chain state of a campaign, as returned by {campaignOf}.
    struct CampaignView {
        bytes32 charityId;
        bytes3 currency;
        bool closed;
        uint256 goal;
        uint256 received;
        uint256 refunded;
        uint256 disbursed;
        uint256 available;
        uint256 donationCount;
        uint256 disbursementCount;
    }

    /// @notice Chain state of a disbursement, as returned by {disbursementOf}.
    struct DisbursementView {
        bytes32 campaignId;
        uint256 amount;
        uint256 allocationCount;
        uint256 evidenceCount;
    }

    // ----------------------------------------------------------------- events

    /// @notice A registrar registered a charity.
    /// @param selfCustody True when the charity holds its operator keys itself: from then on
    /// only its own operators (directly or through a signed call) change its operators.
    event CharityRegistered(
        bytes32 indexed charityId,
        string name,
        bytes32 metadataHash,
        address registrar,
        bool selfCustody
    );

    /// @notice `account` may write records for the charity from now on.
    /// @param addedBy The registrar (platform custody) or an existing operator of the
    /// charity (self-custody), or the registrar for a self-custody charity's first operator.
    /// @param heldByCharity True for every operator of a self-custody charity: the key is
    /// the charity's own, so a record it signed was "signed by the charity's own key", not
    /// "signed by the platform on the charity's behalf".
    event OperatorAdded(bytes32 indexed charityId, address indexed account, address addedBy, bool heldByCharity);

    /// @notice `account` may no longer write records for the charity.
    /// @param removedBy The registrar (platform custody) or an operator of the charity (self-custody).
    event OperatorRemoved(bytes32 indexed charityId, address indexed account, address removedBy);

    /// @notice A relayer executed a call `operator` signed (EIP-712 {SignedCall}); the
    /// events of the call itself precede this one in the same transaction and name the
    /// operator, not the relayer.
    event SignedCallExecuted(address indexed operator, bytes32 indexed nonce, address relayer);

    /// @notice An operator created a campaign.
    event CampaignCreated(
        bytes32 indexed campaignId,
        bytes32 indexed charityId,
        string name,
        bytes3 currency,
        uint256 goal,
        bytes32 metadataHash,
        address operator
    );

    /// @notice An operator closed a campaign; it takes no new donations from now on.
    event CampaignClosed(bytes32 indexed campaignId, bytes32 indexed charityId, address operator);

    /// @notice An operator set a campaign's end date (a UTC timestamp), from which disclosure
    /// deadlines run. A change of an end date already set carries its reason.
    /// @param previousEndsAt The end date it replaces, or zero when it is the first.
    event CampaignEndSet(
        bytes32 indexed campaignId,
        bytes32 indexed charityId,
        uint64 endsAt,
        uint64 previousEndsAt,
        string reason,
        address operator
    );

    /// @notice An operator published a report of a campaign: the SHA-256 hash of the document,
    /// anchored like evidence, and the period it covers (UTC timestamps, start inclusive, end
    /// exclusive).
    event ReportPublished(
        bytes32 indexed reportId,
        bytes32 indexed campaignId,
        bytes32 indexed charityId,
        ReportKind kind,
        uint64 periodStart,
        uint64 periodEnd,
        bytes32 documentHash,
        address operator
    );

    /// @notice An operator recorded what becomes of a closed campaign's remaining funds.
    /// @param available What the campaign held undisbursed when this was recorded.
    /// @param targetCampaignId The campaign the funds move to (MovedToCampaign), else zero.
    /// @param rule The rule the funds are kept under (KeptUnderRule), or a short statement.
    event RemainingFundsDisposed(
        bytes32 indexed disposalId,
        bytes32 indexed campaignId,
        bytes32 indexed charityId,
        Disposition disposition,
        uint256 amount,
        uint256 available,
        bytes32 targetCampaignId,
        string rule,
        bytes32 documentHash,
        address operator
    );

    /// @notice An operator recorded a donation. Emitted once per donation, also in batches.
    event DonationRecorded(
        bytes32 indexed donationId,
        bytes32 indexed campaignId,
        uint256 amount,
        bytes32 donorCommitment,
        bytes32 channel,
        bytes32 metadataHash,
        address operator
    );

    /// @notice An operator refunded (part of) a donation.
    /// @param donationRefunded The donation's refunded total after this refund.
    event DonationRefunded(
        bytes32 indexed refundId,
        bytes32 indexed donationId,
        bytes32 indexed campaignId,
        uint256 amount,
        uint256 donationRefunded,
        string reason,
        address operator
    );

    /// @notice An operator recorded a disbursement; its allocations follow as
    /// {DonationAllocated} events in the same transaction.
    event DisbursementRecorded(
        bytes32 indexed disbursementId,
        bytes32 indexed campaignId,
        uint256 amount,
        string recipient,
        string purpose,
        uint256 allocationCount,
        address operator
    );

    /// @notice Part of a disbursement was paid for by a donation.
    /// @param donationAllocated The donation's allocated total after this allocation.
    event DonationAllocated(
        bytes32 indexed disbursementId,
        bytes32 indexed donationId,
        uint256 amount,
        uint256 donationAllocated
    );

    /// @notice A document hash (sha-256 of an invoice, receipt, photo...) was anchored to a
    /// disbursement.
    event EvidenceAnchored(
        bytes32 indexed disbursementId,
        bytes32 indexed documentHash,
        uint256 evidenceCount,
        address operator
    );

    /// @notice A redacted copy of an anchored original was published and linked to it: the
    /// public sees the copy, auditors hold the original, and anyone can check they belong
    /// together. The copy is anchored on the same disbursement (its own EvidenceAnchored).
    event RedactedCopyLinked(
        bytes32 indexed disbursementId,
        bytes32 indexed originalHash,
        bytes32 copyHash,
        address operator
    );

    /// @notice The charity erased a stored document (personal data, an upload by mistake):
    /// the anchor stays, the document is no longer served. The block time is the time.
    event EvidenceWithdrawn(
        bytes32 indexed disbursementId,
        bytes32 indexed documentHash,
        string reason,
        address operator
    );

    /// @notice A UTC day of the service's access log was sealed: `root` is the Merkle root
    /// of that day's row hashes, `lastRowHash` the hash chain's head at the day's end.
    event AccessLogSealed(uint64 indexed day, bytes32 root, uint64 rowCount, bytes32 lastRowHash, address sealer);

    /// @notice The disbursement went to another campaign on this ledger (a grant); the
    /// receiving charity records the money with {recordGrantDonation}.
    event GrantAddressed(
        bytes32 indexed disbursementId,
        bytes32 indexed recipientCampaignId,
        bytes32 indexed recipientCharityId
    );

    /// @notice The receiving charity recorded (part of) a grant as a donation to its campaign.
    /// @param sourceReceived The grant's received total after this donation.
    event GrantReceived(
        bytes32 indexed donationId,
        bytes32 indexed sourceDisbursementId,
        bytes32 indexed campaignId,
        uint256 amount,
        uint256 sourceReceived
    );

    /// @notice The disbursement was paid to a registered recipient organisation.
    event RecipientNamed(bytes32 indexed disbursementId, bytes32 indexed recipientId);

    /// @notice A registrar registered a recipient organisation with its public identifier
    /// (a Unified Social Credit Code, a charity number) and the account it confirms with.
    event RecipientRegistered(
        bytes32 indexed recipientId,
        string identifier,
        string name,
        address account,
        address registrar
    );

    /// @notice A recipient organisation moved to a new account (only its own account may).
    event RecipientAccountChanged(bytes32 indexed recipientId, address account, address previousAccount);

    /// @notice A recipient organisation confirmed, with its own key, that it received
    /// `amount` of the disbursement (in full or in part).
    /// @param confirmedTotal The disbursement's confirmed total after this confirmation.
    event ReceiptConfirmed(
        bytes32 indexed confirmationId,
        bytes32 indexed disbursementId,
        bytes32 indexed recipientId,
        uint256 amount,
        uint256 confirmedTotal,
        string statement,
        bytes32 evidenceHash,
        address account
    );

    /// @notice An operator set a campaign's approval rule (version `version`); its
    /// approvers follow as {ApproverNamed} events. It applies to proposals made from now on.
    event ApprovalRuleSet(
        bytes32 indexed campaignId,
        bytes32 indexed charityId,
        uint64 indexed version,
        uint8 threshold,
        uint8 approverCount,
        uint32 validity,
        address operator
    );

    /// @notice `approver` is one of the approvers of the campaign's rule `version`.
    event ApproverNamed(bytes32 indexed campaignId, uint64 indexed version, address indexed approver);

    /// @notice An operator proposed a disbursement; it counts only once `threshold`
    /// approvers other than the proposer approve it and it is executed before `expiresAt`.
    event DisbursementProposed(
        bytes32 indexed disbursementId,
        bytes32 indexed campaignId,
        bytes32 inputHash,
        uint256 amount,
        string recipient,
        string purpose,
        uint64 ruleVersion,
        uint8 threshold,
        uint64 expiresAt,
        address proposer
    );

    event DisbursementApproved(bytes32 indexed disbursementId, address indexed approver, uint8 approvals, uint8 threshold);

    /// @notice An approver (or an operator of the charity, withdrawing it) rejected the
    /// proposal: it can never be approved or paid.
    event DisbursementRejected(bytes32 indexed disbursementId, address indexed rejectedBy, string reason);

    /// @notice An approved proposal was executed: its {DisbursementRecorded} (with the
    /// proposer as operator) and allocations precede this event in the transaction.
    event ProposalExecuted(bytes32 indexed disbursementId, address executor);

    /// @notice An operator recorded a correction: a new record that references an earlier
    /// one with a reason (and optionally the record that replaces it). Records are never edited.
    event CorrectionRecorded(
        bytes32 indexed correctionId,
        bytes32 indexed charityId,
        bytes32 indexed originalId,
        RecordKind originalKind,
        bytes32 replacementId,
        string reason,
        address operator
    );

    // ----------------------------------------------------------------- errors

    /// @notice An ID (or a document hash) was zero.
    error ZeroId();
    /// @notice `amount` was zero or above `max`.
    error InvalidAmount(uint256 amount, uint256 max);
    /// @notice A text field was empty or longer than `maxLength` bytes.
    error InvalidTextLength(uint256 length, uint256 maxLength);
    /// @notice The currency was not three upper-case ASCII letters.
    error InvalidCurrency(bytes3 currency);
    /// @notice The donor commitment was zero.
    error ZeroDonorCommitment(bytes32 donationId);
    /// @notice A batch or allocation list was empty or longer than `max`.
    error InvalidListLength(uint256 length, uint256 max);

    error CharityAlreadyRegistered(bytes32 charityId);
    error CharityNotFound(bytes32 charityId);
    error OperatorAlreadyAdded(bytes32 charityId, address account);
    error OperatorNotFound(bytes32 charityId, address account);
    /// @notice `account` is not an operator of `charityId`.
    error NotCharityOperator(bytes32 charityId, address account);

    error CampaignAlreadyExists(bytes32 campaignId);
    error CampaignNotFound(bytes32 campaignId);
    /// @notice The campaign is closed and takes no new donations.
    error CampaignIsClosed(bytes32 campaignId);

    error DonationAlreadyExists(bytes32 donationId);
    error DonationNotFound(bytes32 donationId);
    error RefundAlreadyExists(bytes32 refundId);
    error DisbursementAlreadyExists(bytes32 disbursementId);
    error DisbursementNotFound(bytes32 disbursementId);
    error CorrectionAlreadyExists(bytes32 correctionId);
    error ReportAlreadyExists(bytes32 reportId);
    error DisposalAlreadyExists(bytes32 disposalId);
    /// @notice A date was zero or after MAX_TIMESTAMP (2199-12-31), or a report's period does
    /// not end after it starts.
    error InvalidPeriod(uint64 start, uint64 end);
    /// @notice Remaining funds are disposed of only once a campaign is closed.
    error CampaignNotClosed(bytes32 campaignId);
    /// @notice A disposal's target campaign or rule does not fit its disposition: a move names
    /// another campaign of the same currency, a rule is stated, a return names neither.
    error InvalidDisposition(Disposition disposition, bytes32 targetCampaignId);
    /// @notice The record a correction references does not exist or belongs to another charity.
    error RecordNotFound(RecordKind kind, bytes32 recordId);

    /// @notice A refund or allocation asked more of a donation than it has left
    /// (amount - allocated - refunded).
    error DonationOverdrawn(bytes32 donationId, uint256 available, uint256 requested);
    /// @notice A disbursement asked more than the campaign holds (received - refunded - disbursed).
    error CampaignOverdrawn(bytes32 campaignId, uint256 available, uint256 requested);
    /// @notice An allocation drew on a donation of another campaign.
    error AllocationCampaignMismatch(bytes32 donationId, bytes32 donationCampaignId, bytes32 disbursementCampaignId);
    /// @notice The allocations did not add up to the disbursement's amount.
    error AllocationSumMismatch(uint256 disbursementAmount, uint256 allocatedSum);
    /// @notice The same donation appeared twice in one disbursement's allocations.
    error DuplicateAllocation(bytes32 donationId);
    error EvidenceAlreadyAnchored(bytes32 disbursementId, bytes32 documentHash);
    error EvidenceNotAnchored(bytes32 disbursementId, bytes32 documentHash);
    error EvidenceAlreadyWithdrawn(bytes32 disbursementId, bytes32 documentHash);
    /// A copy links to one original only (and a document is not its own copy).
    error RedactedCopyAlreadyLinked(bytes32 disbursementId, bytes32 copyHash);
    error AccessLogAlreadySealed(uint64 day);
    /// A seal needs a non-zero root and at least one row.
    error InvalidAccessLogSeal(uint64 day);

    /// @notice The grant's recipient campaign is the paying campaign itself.
    error InvalidGrantRecipient(bytes32 disbursementId, bytes32 recipientCampaignId);
    /// @notice A grant must go to a campaign in the same currency.
    error GrantCurrencyMismatch(bytes32 campaignId, bytes32 recipientCampaignId);
    /// @notice The source disbursement was not a grant addressed to this campaign.
    error GrantNotAddressed(bytes32 sourceDisbursementId, bytes32 campaignId);
    /// @notice The donations linked to a grant would add up to more than the grant.
    error GrantOverdrawn(bytes32 sourceDisbursementId, uint256 available, uint256 requested);

    error RecipientAlreadyRegistered(bytes32 recipientId);
    error RecipientNotFound(bytes32 recipientId);
    /// @notice `account` is not the account of the recipient the disbursement names (or
    /// the disbursement names none).
    error NotRecipient(bytes32 disbursementId, address account);
    error ConfirmationAlreadyExists(bytes32 confirmationId);
    /// @notice Confirmations would add up to more than the disbursement.
    error ConfirmationExceedsDisbursement(bytes32 disbursementId, uint256 available, uint256 requested);

    /// @notice The campaign has an approval rule: disbursements go through
    /// {proposeDisbursement}, never straight to the ledger.
    error ApprovalRequired(bytes32 campaignId);
    /// @notice The campaign has no approval rule to propose under.
    error NoApprovalRule(bytes32 campaignId);
    /// @notice A rule needs 1 <= threshold <= approvers <= MAX_APPROVERS distinct non-zero
    /// approvers and a validity between MIN_VALIDITY and MAX_VALIDITY seconds.
    error InvalidApprovalRule(bytes32 campaignId);
    error ProposalNotFound(bytes32 disbursementId);
    /// @notice The proposal was rejected or executed already.
    error ProposalNotPending(bytes32 disbursementId, ProposalStatus status);
    error ProposalExpired(bytes32 disbursementId, uint256 expiresAt);
    /// @notice `account` is not an approver of the rule the proposal was made under.
    error NotApprover(bytes32 disbursementId, address account);
    /// @notice The proposer of a disbursement cannot approve it.
    error ProposerCannotApprove(bytes32 disbursementId, address proposer);
    error AlreadyApproved(bytes32 disbursementId, address approver);
    error ApprovalsMissing(bytes32 disbursementId, uint256 approvals, uint256 threshold);
    /// @notice The input given to {executeDisbursement} is not the one proposed.
    error ProposalMismatch(bytes32 disbursementId, bytes32 proposedHash, bytes32 givenHash);

    /// @notice The charity holds its keys itself: only its operators change its operators,
    /// the registrar cannot.
    error SelfCustodyCharity(bytes32 charityId);
    /// @notice Removing this operator would leave a self-custody charity without any.
    error LastOperator(bytes32 charityId);
    /// @notice A self-custody charity's operator was the zero address.
    error ZeroOperator();
    /// @notice A signed call arrived after its deadline.
    error SignatureExpired(uint256 deadline, uint256 nowTimestamp);
    /// @notice The operator's signed call with this nonce has already been executed.
    error NonceAlreadyUsed(address operator, bytes32 nonce);
    /// @notice The signature is not `operator`'s over the signed call (EOA or ERC-1271).
    error InvalidSignature(address operator);
    /// @notice A signed call may only call the charity-record functions.
    error SignedCallNotAllowed(bytes4 selector);

    // -------------------------------------------------------- registrar writes

    /// @notice Registers a charity in platform custody: the registrar manages its operators
    /// (whose keys the platform holds). Only REGISTRAR_ROLE.
    function registerCharity(bytes32 charityId, string calldata name, bytes32 metadataHash) external;

    /// @notice Registers a charity that holds its operator keys itself, with `operator` (the
    /// charity's own key, non-zero) as its first operator. From then on only the charity's
    /// operators add or remove operators, and it always keeps at least one. Only REGISTRAR_ROLE.
    function registerSelfCustodyCharity(
        bytes32 charityId,
        string calldata name,
        bytes32 metadataHash,
        address operator
    ) external;

    /// @notice Lets `account` write records for `charityId`. Platform custody: only
    /// REGISTRAR_ROLE. Self-custody: only an operator of the charity (directly or through a
    /// signed call); the registrar gets {SelfCustodyCharity}.
    function addOperator(bytes32 charityId, address account) external;

    /// @notice Withdraws `account`'s right to write records for `charityId`. Who may: as for
    /// {addOperator}. A self-custody charity's last operator cannot be removed ({LastOperator}).
    function removeOperator(bytes32 charityId, address account) external;

    // ------------------------------------------------------------ signed calls

    /// @notice Executes a call `call.operator` signed, as if the operator had sent it: the
    /// operator checks and the events' `operator` fields see the signer, not the relayer.
    /// Reverts {SignatureExpired}, {NonceAlreadyUsed}, {InvalidSignature} or
    /// {SignedCallNotAllowed}; a revert of the call itself comes back unchanged.
    /// @return The call's return data.
    function execute(SignedCall calldata call, bytes calldata signature) external returns (bytes memory);

    /// @notice Executes several signed calls in one transaction, in order, each checked as
    /// {execute} checks it (a relayer sends many charities' records in one transaction).
    /// Since 2.4.0.
    /// @dev Reverts with {InvalidListLength} unless 1 to MAX_BATCH calls come with as many
    /// signatures; any call's revert reverts them all, with that call's error.
    function executeBatch(SignedCall[] calldata calls, bytes[] calldata signatures) external;

    // --------------------------------------------------------- operator writes

    /// @notice Creates a campaign of `charityId`. Only that charity's operators.
    /// @param currency ISO 4217 code, three upper-case letters.
    /// @param goal Fundraising goal in the currency's minor unit, 1..MAX_GOAL.
    function createCampaign(
        bytes32 campaignId,
        bytes32 charityId,
        string calldata name,
        bytes3 currency,
        uint256 goal,
        bytes32 metadataHash
    ) external;

    /// @notice Closes a campaign to new donations. Refunds and disbursements stay possible.
    function closeCampaign(bytes32 campaignId) external;

    /// @notice Sets the campaign's end date (a UTC timestamp, 1..MAX_TIMESTAMP), open or closed.
    /// @param reason Required when an end date is already set (it is replaced, never erased),
    /// empty or not the first time.
    function setCampaignEnd(bytes32 campaignId, uint64 endsAt, string calldata reason) external;

    /// @notice Publishes a periodic or final report of a campaign: the document's SHA-256
    /// hash and the period covered (periodStart < periodEnd, both non-zero).
    function publishReport(
        bytes32 reportId,
        bytes32 campaignId,
        ReportKind kind,
        uint64 periodStart,
        uint64 periodEnd,
        bytes32 documentHash
    ) external;

    /// @notice Records the disposal of a closed campaign's remaining funds: `amount` (at most
    /// what it holds undisbursed; zero states that nothing remained), the disposition, the
    /// target campaign (MovedToCampaign only) or the rule (KeptUnderRule: required), and the
    /// decision's document hash (or zero).
    function recordDisposal(
        bytes32 disposalId,
        bytes32 campaignId,
        Disposition disposition,
        uint256 amount,
        bytes32 targetCampaignId,
        string calldata rule,
        bytes32 documentHash
    ) external;

    /// @notice Records one donation to an open campaign.
    function recordDonation(DonationInput calldata donation) external;

    /// @notice Records 1..MAX_BATCH donations atomically; each must pass the same checks as
    /// {recordDonation}, and the caller must operate every campaign named.
    function recordDonations(DonationInput[] calldata donations) external;

    /// @notice Refunds `amount` of a donation's unspent balance to the donor.
    /// @dev Also the way to take back an amount recorded in error; record a correction
    /// referencing the donation to say so.
    function refundDonation(bytes32 refundId, bytes32 donationId, uint256 amount, string calldata reason) external;

    /// @notice Records a disbursement from a campaign and the donations that paid for it.
    /// @dev The allocations must draw on donations of the same campaign, name each donation
    /// at most once, stay within each donation's remaining balance and add up to `amount`.
    /// A non-zero `evidenceHash` is anchored as the disbursement's first evidence document.
    function recordDisbursement(
        bytes32 disbursementId,
        bytes32 campaignId,
        uint256 amount,
        string calldata recipient,
        string calldata purpose,
        bytes32 evidenceHash,
        Allocation[] calldata allocations
    ) external;

    /// @notice Records a disbursement that may go to another campaign on the ledger or to a
    /// registered recipient organisation; otherwise as {recordDisbursement}. Reverts
    /// {ApprovalRequired} when the campaign has an approval rule.
    function disburse(DisbursementInput calldata disbursement) external;

    /// @notice Records (part of) a grant addressed to `donation.campaignId` as a donation
    /// there, linked to its source: the linked donations never add up to more than the
    /// source disbursement ({GrantOverdrawn}). Only operators of the receiving charity.
    function recordGrantDonation(DonationInput calldata donation, bytes32 sourceDisbursementId) external;

    /// @notice Puts a campaign's disbursements under approval: from now on each must be
    /// proposed and approved by `threshold` of `approvers` other than its proposer, within
    /// `validity` seconds. Once set, a rule can be replaced but never removed; a new rule
    /// applies only to proposals made after it. Only operators of the campaign's charity.
    function setApprovalRule(bytes32 campaignId, address[] calldata approvers, uint8 threshold, uint32 validity) external;

    /// @notice Proposes a disbursement of a campaign under approval. Nothing is drawn
    /// until it is executed. Only operators of the campaign's charity.
    function proposeDisbursement(DisbursementInput calldata disbursement) external;

    /// @notice Approves a pending, unexpired proposal. Only an approver of the rule it was
    /// made under, never its proposer, once each.
    function approveDisbursement(bytes32 disbursementId) external;

    /// @notice Rejects a pending proposal for good. An approver of its rule, or an
    /// operator of the charity (withdrawing it).
    function rejectDisbursement(bytes32 disbursementId, string calldata reason) external;

    /// @notice Records a proposal's disbursement once it has its approvals, before it
    /// expires, with exactly the input proposed. Anyone may send it: the content is the
    /// proposer's and the approvals are the approvers'.
    function executeDisbursement(DisbursementInput calldata disbursement) external;

    /// @notice Registers a recipient organisation. Only REGISTRAR_ROLE.
    /// @param identifier Its public identifier, such as a Unified Social Credit Code.
    /// @param account The key it confirms receipts with (its own).
    function registerRecipient(
        bytes32 recipientId,
        string calldata identifier,
        string calldata name,
        address account
    ) external;

    /// @notice Moves a recipient organisation to a new account; only its current account.
    function setRecipientAccount(bytes32 recipientId, address account) external;

    /// @notice Confirms receipt of (part of) a disbursement naming the caller's recipient
    /// organisation; confirmations never add up to more than the disbursement.
    function confirmReceipt(
        bytes32 confirmationId,
        bytes32 disbursementId,
        uint256 amount,
        string calldata statement,
        bytes32 evidenceHash
    ) external;

    /// @notice Anchors a document hash to a disbursement, at the time or later.
    function anchorEvidence(bytes32 disbursementId, bytes32 documentHash) external;

    /// @notice Links a redacted copy to an original anchored on the disbursement, anchoring
    /// the copy there too if it is not yet.
    function linkRedactedCopy(bytes32 disbursementId, bytes32 originalHash, bytes32 copyHash) external;

    /// @notice Records that an anchored document was withdrawn (erased), with the reason.
    function withdrawEvidence(bytes32 disbursementId, bytes32 documentHash, string calldata reason) external;

    /// @notice Seals a finished UTC day (days since 1970-01-01) of the access log; once per day.
    function sealAccessLog(uint64 day, bytes32 root, uint64 rowCount, bytes32 lastRowHash) external;

    /// @notice Records a correction of an earlier record of the caller's charity.
    /// @param replacementId The record that replaces the original, or zero.
    function recordCorrection(
        bytes32 correctionId,
        bytes32 charityId,
        RecordKind originalKind,
        bytes32 originalId,
        bytes32 replacementId,
        string calldata reason
    ) external;

    // ------------------------------------------------------------------ views

    /// @notice The version of the ledger's interface: "2.4.0" (2.1.0's self-custody, signed
    /// calls, redacted copies, withdrawals and access-log seals; 2.2.0's grants between
    /// campaigns, approvals before payout, recipient confirmations; 2.3.0's campaign end
    /// dates, reports and disposals of remaining funds; batches of signed calls).
    function version() external pure returns (string memory);

    /// @notice Whether the charity holds its operator keys itself (fixed at registration).
    function isSelfCustody(bytes32 charityId) external view returns (bool);

    /// @notice Whether `operator`'s signed call with `nonce` has been executed.
    function isNonceUsed(address operator, bytes32 nonce) external view returns (bool);

    /// @notice The EIP-712 digest `call`'s operator signs, for clients to check their own
    /// typed-data hashing against.
    function signedCallDigest(SignedCall calldata call) external view returns (bytes32);

    /// @notice The block the ledger was deployed in: where a mirror starts reading events.
    function deploymentBlock() external view returns (uint256);

    function isCharityRegistered(bytes32 charityId) external view returns (bool);

    function isOperator(bytes32 charityId, address account) external view returns (bool);

    /// @notice Amount, allocated, refunded and remaining of a donation; reverts if unknown.
    function donationOf(bytes32 donationId) external view returns (DonationView memory);

    /// @notice Totals of a campaign; reverts if unknown.
    function campaignOf(bytes32 campaignId) external view returns (CampaignView memory);

    /// @notice A disbursement's campaign, amount and counts; reverts if unknown.
    function disbursementOf(bytes32 disbursementId) external view returns (DisbursementView memory);

    /// @notice The donation a refund belongs to and its amount; reverts if unknown.
    function refundOf(bytes32 refundId) external view returns (bytes32 donationId, uint256 amount);

    function isEvidenceAnchored(bytes32 disbursementId, bytes32 documentHash) external view returns (bool);

    /// @notice Whether a document is anchored on the disbursement, whether it was withdrawn,
    /// and the original it is a redacted copy of (zero if none).
    function evidenceStatus(
        bytes32 disbursementId,
        bytes32 documentHash
    ) external view returns (bool anchored, bool withdrawn, bytes32 originalHash);

    /// @notice A day's access-log seal; all zero if the day is not sealed.
    function accessLogSeal(uint64 day) external view returns (bytes32 root, uint64 rowCount, bytes32 lastRowHash);

    /// @notice The campaign a grant went to and how much of it has been recorded there;
    /// all zero when the disbursement is not a grant.
    function grantOf(bytes32 disbursementId) external view returns (bytes32 recipientCampaignId, uint256 received);

    /// @notice The grant a donation records, or zero.
    function grantSourceOf(bytes32 donationId) external view returns (bytes32 sourceDisbursementId);

    /// @notice The recipient organisation a disbursement names (or zero) and how much of it
    /// that recipient has confirmed.
    function recipientOf(bytes32 disbursementId) external view returns (bytes32 recipientId, uint256 confirmed);

    /// @notice A recipient organisation's account; zero if not registered.
    function recipientAccount(bytes32 recipientId) external view returns (address);

    /// @notice A campaign's current approval rule; version 0: none.
    function approvalRuleOf(
        bytes32 campaignId
    ) external view returns (uint64 ruleVersion, uint8 threshold, uint8 approverCount, uint32 validity);

    function isApprover(bytes32 campaignId, uint64 ruleVersion, address account) external view returns (bool);

    /// @notice A proposal; reverts {ProposalNotFound} if unknown.
    function proposalOf(bytes32 disbursementId) external view returns (ProposalView memory);

    function hasApproved(bytes32 disbursementId, address approver) external view returns (bool);

    /// @notice A campaign's end date (zero: none set) and how many reports and disposals it has.
    function disclosureOf(
        bytes32 campaignId
    ) external view returns (uint64 endsAt, uint256 reports, uint256 disposals);
}
