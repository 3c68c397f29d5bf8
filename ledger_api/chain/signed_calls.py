"""EIP-712 typed data of the ledger's signed calls (contract v2, `execute`).

A charity in self-custody signs a `SignedCall(address operator,bytes data,bytes32 nonce,
uint256 deadline)` with its own key; anyone relays it through the ledger's `execute`, and
the contract checks the signature and records the operator as the author. This module
builds the typed data a wallet is shown (`typed_data`, the JSON of `eth_signTypedData_v4`),
the digest the operator signs (`digest`, equal to the contract's `signedCallDigest`), signs
with a local key (`sign`) and recovers the signer of a signature (`recover`). eth-account
does the EIP-712 hashing; nothing here is hand-rolled.

- `data` is the ABI-encoded call of one of the charity-record functions (build it with
  `ledger_api.chain.abi.encode(...).data`, or `encode_donations` for a batch).
- `nonce` is any unused bytes32: `new_nonce()` draws 32 random bytes, so many requests can
  be signed and relayed at once with no ordering between them.
- `deadline` is a Unix time in seconds (the chain's block timestamp must not exceed it).

Kernel-level code: only libraries, `ledger_api.core` and `ledger_api.chain.abi`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from ledger_api.chain.abi import encode
from ledger_api.core.hexes import hex0x

DOMAIN_NAME = "CharityLedger"
DOMAIN_VERSION = "2"
PRIMARY_TYPE = "SignedCall"
SIGNED_CALL_FIELDS = [
    {"name": "operator", "type": "address"},
    {"name": "data", "type": "bytes"},
    {"name": "nonce", "type": "bytes32"},
    {"name": "deadline", "type": "uint256"},
]
DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
SIGNED_CALL_TYPE = "SignedCall(address operator,bytes data,bytes32 nonce,uint256 deadline)"
SIGNED_CALL_TYPEHASH = keccak(text=SIGNED_CALL_TYPE)
DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)

# The functions the contract lets a signed call make (its `_isSignable`).
SIGNABLE_FUNCTIONS = (
    "createCampaign",
    "closeCampaign",
    "setCampaignEnd",
    "publishReport",
    "recordDisposal",
    "recordDonation",
    "recordDonations",
    "refundDonation",
    "recordDisbursement",
    "disburse",
    "recordGrantDonation",
    "setApprovalRule",
    "proposeDisbursement",
    "approveDisbursement",
    "rejectDisbursement",
    "executeDisbursement",
    "anchorEvidence",
    "linkRedactedCopy",
    "withdrawEvidence",
    "recordCorrection",
    "addOperator",
    "removeOperator",
    # A recipient organisation's own calls (its own key, not a charity's operator).
    "confirmReceipt",
    "setRecipientAccount",
)


@dataclass(frozen=True)
class SignedCall:
    """One signed call's fields, as the contract's `SignedCall` struct."""

    operator: str
    data: bytes
    nonce: bytes
    deadline: int

    def __post_init__(self) -> None:
        if len(self.nonce) != 32:
            raise ValueError("a nonce is 32 bytes")
        if not 0 <= self.deadline < 2**256:
            raise ValueError("deadline out of range")
        object.__setattr__(self, "operator", to_checksum_address(self.operator))

    def as_tuple(self) -> tuple[str, bytes, bytes, int]:
        """The struct as `execute`'s and `signedCallDigest`'s first argument."""
        return (self.operator, self.data, self.nonce, self.deadline)


def new_nonce() -> bytes:
    """A fresh random nonce (32 bytes from the OS's CSPRNG)."""
    return secrets.token_bytes(32)


def domain(chain_id: int, contract: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(contract),
    }


def domain_separator(chain_id: int, contract: str) -> bytes:
    """The EIP-712 domain separator of the ledger at `contract` on `chain_id`."""
    return keccak(
        DOMAIN_TYPEHASH
        + keccak(text=DOMAIN_NAME)
        + keccak(text=DOMAIN_VERSION)
        + chain_id.to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(to_checksum_address(contract)[2:])
    )


def typed_data(call: SignedCall, chain_id: int, contract: str) -> dict[str, Any]:
    """The full EIP-712 message (`eth_signTypedData_v4` JSON; bytes as 0x hex) a wallet signs."""
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, PRIMARY_TYPE: SIGNED_CALL_FIELDS},
        "primaryType": PRIMARY_TYPE,
        "domain": domain(chain_id, contract),
        "message": {
            "operator": call.operator,
            "data": hex0x(call.data),
            "nonce": hex0x(call.nonce),
            "deadline": call.deadline,
        },
    }


def signable(call: SignedCall, chain_id: int, contract: str) -> SignableMessage:
    return encode_typed_data(full_message=typed_data(call, chain_id, contract))


def digest(call: SignedCall, chain_id: int, contract: str) -> bytes:
    """The 32-byte EIP-712 digest: keccak(0x1901 ‖ domain separator ‖ struct hash), what
    the contract's `signedCallDigest` returns."""
    message = signable(call, chain_id, contract)
    return keccak(b"\x19" + message.version + message.header + message.body)


def sign(call: SignedCall, chain_id: int, contract: str, account: LocalAccount) -> bytes:
    """The 65-byte signature (r ‖ s ‖ v) of `account` over the call. The account must be
    the call's operator: the contract would refuse anything else."""
    if to_checksum_address(account.address) != call.operator:
        raise ValueError("the signing key is not the call's operator")
    return bytes(account.sign_message(signable(call, chain_id, contract)).signature)


def recover(call: SignedCall, chain_id: int, contract: str, signature: bytes) -> str:
    """The address whose key made `signature` over the call (EOA signatures only; a
    contract wallet's ERC-1271 signature is checked by the contract, not here)."""
    return str(Account.recover_message(signable(call, chain_id, contract), signature=signature))


def build(operator: str, fn_name: str, *args: Any, deadline: int, nonce: bytes | None = None) -> SignedCall:
    """A signed call of `fn_name(*args)` for `operator`, with a fresh nonce unless given."""
    if fn_name not in SIGNABLE_FUNCTIONS:
        raise ValueError(f"{fn_name} cannot be called through a signed call")
    return SignedCall(
        operator=operator, data=encode(fn_name, *args).data, nonce=nonce or new_nonce(), deadline=deadline
    )
