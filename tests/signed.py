"""Signed calls in tests: the keys of self-custody charities (local keys, as a charity
holds them), signing a call as a wallet would and relaying it through the ledger's execute."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger_api.chain import signed_calls as sc
from ledger_api.chain.contract import register_self_custody_charity
from tests.ledger import ZERO, Ledger, commitment, rid

CHARITY_KEY = Account.from_key(b"\x11" * 32)  # the charity's own key, on its computer
SECOND_KEY = Account.from_key(b"\x12" * 32)  # a second key the charity adds itself
PLATFORM_KEY = Account.from_key(b"\x22" * 32)  # a key the platform holds (operator of charity A)
OTHER_CHARITY_KEY = Account.from_key(b"\x33" * 32)  # another self-custody charity's key
CHARITY = rid("charity-sc")
OTHER = rid("charity-sc-2")
CAMPAIGN = rid("campaign-sc")


def deadline_after(ledger: Ledger, seconds: int = 3600) -> int:
    """The latest block's timestamp plus `seconds`."""
    return int(ledger.w3.eth.get_block("latest")["timestamp"]) + seconds


def signed(
    ledger: Ledger,
    signer: LocalAccount,
    fn_name: str,
    *args: Any,
    operator: str | None = None,
    deadline: int | None = None,
    nonce: bytes | None = None,
) -> tuple[sc.SignedCall, bytes]:
    """A call of `fn_name(*args)` in `operator`'s name (default: the signer's), signed by
    `signer`."""
    call = sc.build(
        operator or signer.address,
        fn_name,
        *args,
        deadline=deadline if deadline is not None else deadline_after(ledger),
        nonce=nonce,
    )
    digest = sc.digest(call, ledger.deployment.chain_id, ledger.deployment.address)
    signature = bytes(Account.unsafe_sign_hash(digest, signer.key).signature)
    return call, signature


def relay(ledger: Ledger, call: sc.SignedCall, signature: bytes) -> Any:
    return ledger.send(ledger.fn.execute(call.as_tuple(), signature), ledger.stranger)


def sc_donation(label: str, amount: int = 1_000) -> tuple[bytes, bytes, int, bytes, bytes, bytes]:
    return (rid(label), CAMPAIGN, amount, commitment(label), b"bank".ljust(32, b"\0"), ZERO)


def setup_self_custody(ledger: Ledger) -> Ledger:
    """Add to the ledger a self-custody charity (its first operator CHARITY_KEY) with a
    campaign it created through a signed call, a second self-custody charity
    (OTHER_CHARITY_KEY), and PLATFORM_KEY as a (platform-held) operator of charity A."""
    ledger.send(ledger.fn.addOperator(ledger.charity_a, PLATFORM_KEY.address), ledger.admin)
    register_self_custody_charity(
        ledger.w3, ledger.deployment, ledger.admin, CHARITY, "Self-held", CHARITY_KEY.address
    )
    register_self_custody_charity(
        ledger.w3, ledger.deployment, ledger.admin, OTHER, "Other", OTHER_CHARITY_KEY.address
    )
    relay(
        ledger, *signed(ledger, CHARITY_KEY, "createCampaign", CAMPAIGN, CHARITY, "SC", b"CNY", 10**9, ZERO)
    )
    return ledger
