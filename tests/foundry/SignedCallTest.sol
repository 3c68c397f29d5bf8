// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {CharityLedger} from "../../contracts/CharityLedger.sol";
import {ICharityLedger} from "../../contracts/ICharityLedger.sol";
import {LedgerTest} from "./LedgerTest.sol";

/// @notice A contract wallet (as a Safe is) that answers ERC-1271 for its owner's key.
contract OwnedWallet is IERC1271 {
    address private immutable _owner;

    constructor(address owner) {
        _owner = owner;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError error, ) = ECDSA.tryRecover(hash, signature);
        if (error == ECDSA.RecoverError.NoError && signer == _owner) return IERC1271.isValidSignature.selector;
        return 0xffffffff;
    }
}

/// @notice Signed calls and self-custody helpers shared by the self-custody and gas suites.
abstract contract SignedCallTest is LedgerTest {
    uint256 internal constant CHARITY_PK = 0xC4A817;
    uint256 internal constant SECOND_PK = 0x5EC0D;
    uint256 internal constant PLATFORM_PK = 0x91A7F0;
    uint256 internal constant OTHER_PK = 0x07E4;

    bytes32 internal constant SC = keccak256("charity-sc");
    bytes32 internal constant OTHER = keccak256("charity-sc-2");
    bytes32 internal constant SC_CAMPAIGN = keccak256("campaign-sc");

    address internal charityKey;
    address internal secondKey;
    address internal platformKey;
    address internal otherKey;

    function setUp() public virtual override {
        super.setUp();
        charityKey = vm.addr(CHARITY_PK);
        secondKey = vm.addr(SECOND_PK);
        platformKey = vm.addr(PLATFORM_PK);
        otherKey = vm.addr(OTHER_PK);
        vm.startPrank(admin);
        ledger.addOperator(CHARITY_A, platformKey); // a key the platform holds
        ledger.registerSelfCustodyCharity(SC, "Self-held", bytes32(0), charityKey);
        ledger.registerSelfCustodyCharity(OTHER, "Other", bytes32(0), otherKey);
        vm.stopPrank();
        _relay(
            CHARITY_PK,
            charityKey,
            abi.encodeCall(CharityLedger.createCampaign, (SC_CAMPAIGN, SC, "SC", "CNY", 1e9, bytes32(0))),
            keccak256("nonce-campaign")
        );
    }

    function _signedCall(
        address operator,
        bytes memory data,
        bytes32 nonce,
        uint256 deadline
    ) internal pure returns (ICharityLedger.SignedCall memory) {
        return ICharityLedger.SignedCall({operator: operator, data: data, nonce: nonce, deadline: deadline});
    }

    function _sign(uint256 privateKey, ICharityLedger.SignedCall memory call) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(privateKey, ledger.signedCallDigest(call));
        return abi.encodePacked(r, s, v);
    }

    /// @notice Signs `data` in `operator`'s name with `privateKey` and relays it as the stranger.
    function _relay(uint256 privateKey, address operator, bytes memory data, bytes32 nonce) internal {
        ICharityLedger.SignedCall memory call = _signedCall(operator, data, nonce, block.timestamp + 1 hours);
        bytes memory signature = _sign(privateKey, call);
        vm.prank(stranger);
        ledger.execute(call, signature);
    }

    function _scDonation(bytes32 id, uint256 amount) internal pure returns (ICharityLedger.DonationInput memory) {
        return _input(id, amount, SC_CAMPAIGN);
    }
}
