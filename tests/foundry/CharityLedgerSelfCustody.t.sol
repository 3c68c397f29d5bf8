// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {CharityLedger} from "../../contracts/CharityLedger.sol";
import {ICharityLedger} from "../../contracts/ICharityLedger.sol";
import {OwnedWallet, SignedCallTest} from "./SignedCallTest.sol";

/// @notice Self-custody: a charity holding its own key signs its records, the platform
/// relays them and cannot forge them; every refusal with its exact custom error.
contract CharityLedgerSelfCustodyTest is SignedCallTest {
    function test_VersionAndDigestFollowEIP712() public view {
        vm.assertEq(keccak256(bytes(ledger.version())), keccak256("2.4.0"), "version");
        ICharityLedger.SignedCall memory call = _signedCall(charityKey, hex"c0ffee", bytes32(uint256(7)), 99);
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("CharityLedger"),
                keccak256("2"),
                block.chainid,
                address(ledger)
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("SignedCall(address operator,bytes data,bytes32 nonce,uint256 deadline)"),
                charityKey,
                keccak256(hex"c0ffee"),
                bytes32(uint256(7)),
                uint256(99)
            )
        );
        vm.assertEq(
            ledger.signedCallDigest(call),
            keccak256(abi.encodePacked(hex"1901", domain, structHash)),
            "digest"
        );
    }

    function test_RegistrationNamesTheCharitysKey() public {
        bytes32 charity = _id("charity-new");
        vm.expectEmit();
        emit ICharityLedger.CharityRegistered(charity, "New", _id("meta"), admin, true);
        vm.expectEmit();
        emit ICharityLedger.OperatorAdded(charity, charityKey, admin, true);
        vm.prank(admin);
        ledger.registerSelfCustodyCharity(charity, "New", _id("meta"), charityKey);
        vm.assertTrue(ledger.isSelfCustody(charity), "self-custody");
        vm.assertTrue(ledger.isOperator(charity, charityKey), "operator");
        vm.assertFalse(ledger.isSelfCustody(CHARITY_A), "platform custody");

        _expectError(abi.encodeWithSelector(ICharityLedger.ZeroOperator.selector));
        vm.prank(admin);
        ledger.registerSelfCustodyCharity(_id("zero"), "Zero", bytes32(0), address(0));
        _expectError(abi.encodeWithSelector(ICharityLedger.CharityAlreadyRegistered.selector, SC));
        vm.prank(admin);
        ledger.registerSelfCustodyCharity(SC, "Again", bytes32(0), charityKey);
    }

    function test_ARecordSignedByTheCharityIsAttributedToItsOperator() public {
        bytes32 nonce = keccak256("n1");
        ICharityLedger.SignedCall memory call = _signedCall(
            charityKey,
            abi.encodeCall(CharityLedger.recordDonation, (_scDonation(_id("d1"), 500))),
            nonce,
            block.timestamp + 60
        );
        bytes memory signature = _sign(CHARITY_PK, call);
        vm.expectEmit();
        emit ICharityLedger.DonationRecorded(_id("d1"), SC_CAMPAIGN, 500, DONOR, "bank", bytes32(0), charityKey);
        vm.expectEmit();
        emit ICharityLedger.SignedCallExecuted(charityKey, nonce, stranger);
        vm.prank(stranger);
        ledger.execute(call, signature);
        vm.assertTrue(ledger.isNonceUsed(charityKey, nonce), "nonce used");
        vm.assertFalse(ledger.isNonceUsed(otherKey, nonce), "nonces are per operator");
        _assertDonation(_id("d1"), SC_CAMPAIGN, 500, 0, 0);
    }

    function test_ABatchOfSignedCallsIsExecutedWholeOrNotAtAll() public {
        ICharityLedger.SignedCall[] memory calls = new ICharityLedger.SignedCall[](3);
        bytes[] memory signatures = new bytes[](3);
        for (uint256 i = 0; i < 3; ++i) {
            bytes32 id = keccak256(abi.encode("batch", i));
            calls[i] = _signedCall(
                charityKey,
                abi.encodeCall(CharityLedger.recordDonation, (_scDonation(id, 100 + i))),
                keccak256(abi.encode("batch-nonce", i)),
                block.timestamp + 60
            );
            signatures[i] = _sign(CHARITY_PK, calls[i]);
        }
        // One bad signature: nothing of the batch happens, and its error comes back.
        bytes memory good = signatures[1];
        signatures[1] = _sign(OTHER_PK, calls[1]);
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidSignature.selector, charityKey));
        vm.prank(stranger);
        ledger.executeBatch(calls, signatures);
        vm.assertFalse(ledger.isNonceUsed(charityKey, calls[0].nonce), "nothing of a refused batch");

        // Counts must match and stay within MAX_BATCH.
        bytes[] memory fewer = new bytes[](2);
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidListLength.selector, 3, 500));
        vm.prank(stranger);
        ledger.executeBatch(calls, fewer);
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidListLength.selector, 0, 500));
        vm.prank(stranger);
        ledger.executeBatch(new ICharityLedger.SignedCall[](0), new bytes[](0));

        // All good: each executed as `execute` would, attributed to the charity's key.
        signatures[1] = good;
        for (uint256 i = 0; i < 3; ++i) {
            vm.expectEmit();
            emit ICharityLedger.SignedCallExecuted(charityKey, calls[i].nonce, stranger);
        }
        vm.prank(stranger);
        ledger.executeBatch(calls, signatures);
        for (uint256 i = 0; i < 3; ++i) {
            _assertDonation(keccak256(abi.encode("batch", i)), SC_CAMPAIGN, 100 + i, 0, 0);
            vm.assertTrue(ledger.isNonceUsed(charityKey, calls[i].nonce), "nonce used");
        }
        // Replayed: the first call's nonce is used, so the whole batch is refused.
        _expectError(abi.encodeWithSelector(ICharityLedger.NonceAlreadyUsed.selector, charityKey, calls[0].nonce));
        vm.prank(stranger);
        ledger.executeBatch(calls, signatures);
    }

    function test_TheSameRequestSignedByAnotherKeyIsRefused() public {
        bytes memory data = abi.encodeCall(CharityLedger.recordDonation, (_scDonation(_id("d2"), 500)));
        uint256[2] memory keys = [PLATFORM_PK, OTHER_PK];
        for (uint256 i = 0; i < keys.length; ++i) {
            // In the charity's name: not its signature.
            ICharityLedger.SignedCall memory call = _signedCall(charityKey, data, bytes32(i), block.timestamp);
            bytes memory signature = _sign(keys[i], call);
            _expectError(abi.encodeWithSelector(ICharityLedger.InvalidSignature.selector, charityKey));
            vm.prank(stranger);
            ledger.execute(call, signature);
            // In its own name: not an operator of the charity.
            address signer = vm.addr(keys[i]);
            call = _signedCall(signer, data, bytes32(i), block.timestamp);
            signature = _sign(keys[i], call);
            _expectError(abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, SC, signer));
            vm.prank(stranger);
            ledger.execute(call, signature);
        }
        // Nor directly, as the registrar.
        _expectError(abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, SC, admin));
        vm.prank(admin);
        ledger.recordDonation(_scDonation(_id("d2"), 500));
    }

    function test_TheRegistrarCannotAddOrRemoveASelfCustodyCharitysOperators() public {
        _expectError(abi.encodeWithSelector(ICharityLedger.SelfCustodyCharity.selector, SC));
        vm.prank(admin);
        ledger.addOperator(SC, admin);
        _expectError(abi.encodeWithSelector(ICharityLedger.SelfCustodyCharity.selector, SC));
        vm.prank(admin);
        ledger.removeOperator(SC, charityKey);
        _expectError(abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, SC, stranger));
        vm.prank(stranger);
        ledger.addOperator(SC, stranger);
        // Another charity's operator, through a signed call, neither.
        ICharityLedger.SignedCall memory call = _signedCall(
            otherKey,
            abi.encodeCall(CharityLedger.addOperator, (SC, otherKey)),
            bytes32(0),
            block.timestamp
        );
        bytes memory signature = _sign(OTHER_PK, call);
        _expectError(abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, SC, otherKey));
        vm.prank(stranger);
        ledger.execute(call, signature);
        vm.assertFalse(ledger.isOperator(SC, admin), "registrar not an operator");
    }

    function test_ReplayIsRefused() public {
        ICharityLedger.SignedCall memory call = _signedCall(
            charityKey,
            abi.encodeCall(CharityLedger.recordDonation, (_scDonation(_id("d3"), 500))),
            keccak256("n3"),
            block.timestamp
        );
        bytes memory signature = _sign(CHARITY_PK, call);
        vm.prank(stranger);
        ledger.execute(call, signature);
        _expectError(abi.encodeWithSelector(ICharityLedger.NonceAlreadyUsed.selector, charityKey, keccak256("n3")));
        vm.prank(admin);
        ledger.execute(call, signature);
    }

    function test_ExpiredIsRefused() public {
        uint256 deadline = block.timestamp + 60;
        ICharityLedger.SignedCall memory call = _signedCall(
            charityKey,
            abi.encodeCall(CharityLedger.recordDonation, (_scDonation(_id("d4"), 500))),
            keccak256("n4"),
            deadline
        );
        bytes memory signature = _sign(CHARITY_PK, call);
        vm.warp(deadline + 1);
        _expectError(abi.encodeWithSelector(ICharityLedger.SignatureExpired.selector, deadline, deadline + 1));
        vm.prank(stranger);
        ledger.execute(call, signature);
        vm.assertFalse(ledger.isNonceUsed(charityKey, keccak256("n4")), "nonce still free");
    }

    function test_OnlyRecordFunctionsMayBeCalled() public {
        ICharityLedger.SignedCall memory inner = _signedCall(charityKey, hex"", bytes32(0), block.timestamp);
        bytes[5] memory forbidden = [
            abi.encodeCall(CharityLedger.registerCharity, (_id("x"), "X", bytes32(0))),
            abi.encodeCall(CharityLedger.execute, (inner, hex"")),
            abi.encodeWithSignature("grantRole(bytes32,address)", bytes32(0), charityKey),
            abi.encodeCall(CharityLedger.pause, ()),
            bytes(hex"0102")
        ];
        for (uint256 i = 0; i < forbidden.length; ++i) {
            ICharityLedger.SignedCall memory call = _signedCall(charityKey, forbidden[i], bytes32(i), block.timestamp);
            bytes memory signature = _sign(CHARITY_PK, call);
            bytes4 selector = forbidden[i].length >= 4 ? bytes4(forbidden[i]) : bytes4(0);
            _expectError(abi.encodeWithSelector(ICharityLedger.SignedCallNotAllowed.selector, selector));
            vm.prank(stranger);
            ledger.execute(call, signature);
        }
    }

    function test_TheInnerErrorComesBackUnchanged() public {
        ICharityLedger.SignedCall memory call = _signedCall(
            charityKey,
            abi.encodeCall(CharityLedger.recordDonation, (_scDonation(_id("d5"), 0))),
            keccak256("n5"),
            block.timestamp
        );
        bytes memory signature = _sign(CHARITY_PK, call);
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidAmount.selector, 0, MAX_AMOUNT));
        vm.prank(stranger);
        ledger.execute(call, signature);
        vm.assertFalse(ledger.isNonceUsed(charityKey, keccak256("n5")), "a failed call uses no nonce");
    }

    function test_PausedRefusesSignedCalls() public {
        vm.prank(admin);
        ledger.pause();
        ICharityLedger.SignedCall memory call = _signedCall(
            charityKey,
            abi.encodeCall(CharityLedger.closeCampaign, (SC_CAMPAIGN)),
            keccak256("n6"),
            block.timestamp
        );
        bytes memory signature = _sign(CHARITY_PK, call);
        _expectError(abi.encodeWithSignature("EnforcedPause()"));
        vm.prank(stranger);
        ledger.execute(call, signature);
    }

    function test_AnOperatorChangeSignedByAnExistingOperatorWorks() public {
        vm.expectEmit();
        emit ICharityLedger.OperatorAdded(SC, secondKey, charityKey, true);
        _relay(CHARITY_PK, charityKey, abi.encodeCall(CharityLedger.addOperator, (SC, secondKey)), keccak256("a"));
        vm.expectEmit();
        emit ICharityLedger.OperatorRemoved(SC, charityKey, secondKey);
        _relay(SECOND_PK, secondKey, abi.encodeCall(CharityLedger.removeOperator, (SC, charityKey)), keccak256("r"));
        vm.assertFalse(ledger.isOperator(SC, charityKey), "removed");
        vm.assertTrue(ledger.isOperator(SC, secondKey), "added");
        // The charity's key may also send its own transactions.
        vm.prank(secondKey);
        ledger.addOperator(SC, charityKey);
        vm.assertTrue(ledger.isOperator(SC, charityKey), "re-added directly");
    }

    function test_TheLastOperatorCannotBeRemoved() public {
        ICharityLedger.SignedCall memory call = _signedCall(
            charityKey,
            abi.encodeCall(CharityLedger.removeOperator, (SC, charityKey)),
            keccak256("last"),
            block.timestamp
        );
        bytes memory signature = _sign(CHARITY_PK, call);
        _expectError(abi.encodeWithSelector(ICharityLedger.LastOperator.selector, SC));
        vm.prank(stranger);
        ledger.execute(call, signature);
        _expectError(abi.encodeWithSelector(ICharityLedger.LastOperator.selector, SC));
        vm.prank(charityKey);
        ledger.removeOperator(SC, charityKey);
        // Platform custody keeps today's rule: the registrar may remove the last operator.
        vm.prank(admin);
        ledger.removeOperator(CHARITY_B, opB);
    }

    function test_AnOldRemovalCannotBeReplayedAfterAReAdd() public {
        _relay(CHARITY_PK, charityKey, abi.encodeCall(CharityLedger.addOperator, (SC, secondKey)), keccak256("a"));
        ICharityLedger.SignedCall memory removal = _signedCall(
            charityKey,
            abi.encodeCall(CharityLedger.removeOperator, (SC, secondKey)),
            keccak256("remove"),
            block.timestamp
        );
        bytes memory signature = _sign(CHARITY_PK, removal);
        ledger.execute(removal, signature);
        _relay(CHARITY_PK, charityKey, abi.encodeCall(CharityLedger.addOperator, (SC, secondKey)), keccak256("b"));
        _expectError(abi.encodeWithSelector(ICharityLedger.NonceAlreadyUsed.selector, charityKey, keccak256("remove")));
        ledger.execute(removal, signature);
        vm.assertTrue(ledger.isOperator(SC, secondKey), "still an operator");
    }

    function test_ARelayedBatchOf100UnderOneSignature() public {
        ICharityLedger.DonationInput[] memory batch = new ICharityLedger.DonationInput[](100);
        uint256 total;
        for (uint256 i = 0; i < 100; ++i) {
            batch[i] = _scDonation(_id("b", i), 100 + i);
            total += 100 + i;
        }
        _relay(CHARITY_PK, charityKey, abi.encodeCall(CharityLedger.recordDonations, (batch)), keccak256("batch"));
        ICharityLedger.CampaignView memory view_ = ledger.campaignOf(SC_CAMPAIGN);
        vm.assertEq(view_.received, total, "received");
        vm.assertEq(view_.donationCount, 100, "count");
    }

    function test_AContractWalletSignsThroughERC1271() public {
        OwnedWallet wallet = new OwnedWallet(charityKey);
        bytes32 charity = _id("charity-wallet");
        vm.prank(admin);
        ledger.registerSelfCustodyCharity(charity, "Wallet", bytes32(0), address(wallet));
        vm.expectEmit();
        emit ICharityLedger.CampaignCreated(_id("cw"), charity, "W", "CNY", 1e9, bytes32(0), address(wallet));
        _relay(
            CHARITY_PK,
            address(wallet),
            abi.encodeCall(CharityLedger.createCampaign, (_id("cw"), charity, "W", "CNY", 1e9, bytes32(0))),
            keccak256("w")
        );
        // A key the wallet does not accept.
        ICharityLedger.SignedCall memory call = _signedCall(
            address(wallet),
            abi.encodeCall(CharityLedger.closeCampaign, (_id("cw"))),
            keccak256("w2"),
            block.timestamp
        );
        bytes memory signature = _sign(PLATFORM_PK, call);
        _expectError(abi.encodeWithSelector(ICharityLedger.InvalidSignature.selector, address(wallet)));
        ledger.execute(call, signature);
    }

    function test_APlatformHeldKeyMayRelayForItsOwnCharity() public {
        vm.expectEmit();
        emit ICharityLedger.CampaignClosed(CAMPAIGN_A, CHARITY_A, platformKey);
        _relay(PLATFORM_PK, platformKey, abi.encodeCall(CharityLedger.closeCampaign, (CAMPAIGN_A)), keccak256("p"));
    }

    /// @notice The operator appended to calldata counts only when the ledger calls itself:
    /// anyone else appending the charity's address is still themselves.
    function test_AnAppendedAddressIsIgnoredFromOtherCallers() public {
        bytes memory data = abi.encodePacked(
            abi.encodeCall(CharityLedger.recordDonation, (_scDonation(_id("spoof"), 500))),
            charityKey
        );
        vm.prank(stranger);
        (bool success, bytes memory result) = address(ledger).call(data);
        vm.assertFalse(success, "spoofed call refused");
        vm.assertEq(
            result,
            abi.encodeWithSelector(ICharityLedger.NotCharityOperator.selector, SC, stranger),
            "as the stranger"
        );
    }

    /// @notice A relayer that gives the inner call too little gas makes the whole relay
    /// fail: the nonce stays free, nothing is recorded (no half-executed signed call).
    function test_TooLittleGasForTheInnerCallUsesNoNonce() public {
        ICharityLedger.SignedCall memory call = _signedCall(
            charityKey,
            abi.encodeCall(CharityLedger.recordDonation, (_scDonation(_id("starved"), 500))),
            keccak256("starved"),
            block.timestamp
        );
        bytes memory signature = _sign(CHARITY_PK, call);
        vm.prank(stranger);
        (bool success, ) = address(ledger).call{gas: 45_000}(abi.encodeCall(CharityLedger.execute, (call, signature)));
        vm.assertFalse(success, "starved relay fails");
        vm.assertFalse(ledger.isNonceUsed(charityKey, keccak256("starved")), "nonce still free");
        ledger.execute(call, signature);
        _assertDonation(_id("starved"), SC_CAMPAIGN, 500, 0, 0);
    }

    /// @notice Any nonce, any deadline, any time: it runs exactly when the deadline has not
    /// passed and the nonce is new, and then never again.
    function testFuzz_NonceAndDeadline(bytes32 nonce, uint64 deadline, uint64 timestamp) public {
        vm.assume(nonce != keccak256("nonce-campaign"));
        vm.warp(timestamp);
        ICharityLedger.SignedCall memory call = _signedCall(
            charityKey,
            abi.encodeCall(CharityLedger.recordDonation, (_scDonation(_id("fuzz"), 1_000))),
            nonce,
            deadline
        );
        bytes memory signature = _sign(CHARITY_PK, call);
        if (timestamp > deadline) {
            _expectError(abi.encodeWithSelector(ICharityLedger.SignatureExpired.selector, deadline, timestamp));
            ledger.execute(call, signature);
            vm.assertFalse(ledger.isNonceUsed(charityKey, nonce), "expired: nonce free");
            return;
        }
        ledger.execute(call, signature);
        vm.assertTrue(ledger.isNonceUsed(charityKey, nonce), "nonce used");
        _expectError(abi.encodeWithSelector(ICharityLedger.NonceAlreadyUsed.selector, charityKey, nonce));
        ledger.execute(call, signature);
    }
}
