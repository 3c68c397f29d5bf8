// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice The few forge cheatcodes these tests use, declared by hand (forge-std is not a
/// dependency: its only npm copy is an old unofficial one). Each signature is the one forge
/// implements at the cheatcode address; forge answers any call whose selector it knows.
interface Vm {
    // ------------------------------------------------------------- callers
    function prank(address msgSender) external;
    function startPrank(address msgSender) external;
    function stopPrank() external;
    function label(address account, string calldata newLabel) external;

    // ------------------------------------------------- keys and time
    /// @notice The address of a private key.
    function addr(uint256 privateKey) external pure returns (address);
    /// @notice An ECDSA signature of `digest` by `privateKey` (secp256k1).
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    /// @notice Sets block.timestamp.
    function warp(uint256 newTimestamp) external;

    // ------------------------------------------------------ expectations
    /// @notice The next call must revert with exactly `revertData` (selector and arguments).
    function expectRevert(bytes calldata revertData) external;
    /// @notice The next event emitted must equal the one emitted right after this call
    /// (every topic and the data).
    function expectEmit() external;

    // ------------------------------------------------------------ fuzzing
    /// @notice Discards the current fuzz input when `condition` is false.
    function assume(bool condition) external pure;

    // --------------------------------------------------------- assertions
    function assertTrue(bool condition, string calldata error) external pure;
    function assertFalse(bool condition, string calldata error) external pure;
    function assertEq(uint256 left, uint256 right, string calldata error) external pure;
    function assertEq(address left, address right, string calldata error) external pure;
    function assertEq(bytes32 left, bytes32 right, string calldata error) external pure;
    function assertEq(bytes calldata left, bytes calldata right, string calldata error) external pure;
    function assertLe(uint256 left, uint256 right, string calldata error) external pure;

    // ------------------------------------------------------------ strings
    function toString(bytes calldata value) external pure returns (string memory);
}
