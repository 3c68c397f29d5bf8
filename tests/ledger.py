"""A test driver for a deployed ledger: named accounts, ID helpers, transactions that
must succeed, and reverts that must carry an exact custom error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD
from web3.types import TxReceipt

from ledger_api.chain.abi import contract_error_of
from ledger_api.chain.contract import Deployment

ZERO = b"\x00" * 32
MAX_AMOUNT = 10**18
MAX_GOAL = 10**24
MAX_LIST = 500


def rid(label: str) -> bytes:
    """A bytes32 record ID derived from a readable label."""
    return keccak(text=label)


# The chains every test shares (the session's eth-tester and anvil) keep real time: signed
# calls carry deadlines and anomalies count days from the wall clock, so a test that moved
# a shared clock on would break the tests after it, far from the cause.
SHARED_CLOCKS: set[object] = set()


def clock_of(w3: Web3) -> object:
    """What identifies a chain's clock: anvil's URL, or the eth-tester instance."""
    provider = w3.provider
    tester = getattr(provider, "ethereum_tester", None)
    return id(tester) if tester is not None else getattr(provider, "endpoint_uri", None)


def advance_time(w3: Web3, seconds: int) -> None:
    """Move the chain's clock `seconds` forward and mine a block there. Only on a chain of
    the test's own (the `clock_w3` fixture): eth-tester travels, anvil increases its time."""
    assert clock_of(w3) not in SHARED_CLOCKS, "a shared chain keeps real time: use the clock_w3 fixture"
    provider = w3.provider
    if hasattr(provider, "ethereum_tester"):
        tester = provider.ethereum_tester
        tester.time_travel(int(w3.eth.get_block("latest")["timestamp"]) + seconds)
        tester.mine_blocks(1)
    else:
        provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def commitment(label: str) -> bytes:
    return keccak(b"salt" + label.encode())


def _normalise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return value.lower()
    if isinstance(value, tuple | list):
        return tuple(_normalise(v) for v in value)
    return value


@dataclass
class Ledger:
    w3: Web3
    contract: Contract
    deployment: Deployment
    admin: str
    op_a: str  # operator of charity A
    op_b: str  # operator of charity B
    stranger: str
    charity_a: bytes = rid("charity-a")
    charity_b: bytes = rid("charity-b")
    campaign_a: bytes = rid("campaign-a")
    campaign_b: bytes = rid("campaign-b")

    @classmethod
    def setup(cls, w3: Web3, contract: Contract, deployment: Deployment) -> Ledger:
        admin, op_a, op_b, stranger = w3.eth.accounts[:4]
        ledger = cls(w3, contract, deployment, admin, op_a, op_b, stranger)
        fns = contract.functions
        for charity, operator, campaign, name in (
            (ledger.charity_a, op_a, ledger.campaign_a, "A"),
            (ledger.charity_b, op_b, ledger.campaign_b, "B"),
        ):
            ledger.send(fns.registerCharity(charity, f"Charity {name}", ZERO), admin)
            ledger.send(fns.addOperator(charity, operator), admin)
            ledger.send(
                fns.createCampaign(campaign, charity, f"Campaign {name}", b"CNY", 10**9, ZERO), operator
            )
        return ledger

    @property
    def fn(self) -> Any:
        return self.contract.functions

    def send(self, call: ContractFunction, sender: str) -> TxReceipt:
        """Send a transaction that must succeed; return its receipt."""
        tx_hash = call.transact({"from": sender})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1, f"transaction {tx_hash.to_0x_hex()} reverted"
        return receipt

    def expect_error(self, call: ContractFunction, sender: str, name: str, *args: Any) -> None:
        """The call reverts with exactly this custom error and arguments, both when
        simulated and when mined (with gas given, so no estimate hides it), and the
        mined transaction changes nothing."""
        self.expect_view_error(call, name, *args, sender=sender)
        tx_hash = call.transact({"from": sender, "gas": 5_000_000})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 0
        assert receipt["logs"] == []

    def expect_view_error(
        self, call: ContractFunction, name: str, *args: Any, sender: str | None = None
    ) -> None:
        """Calling (eth_call) reverts with exactly this custom error and arguments."""
        with pytest.raises(Exception) as info:
            call.call({"from": sender or self.stranger})
        error = contract_error_of(info.value)
        assert error is not None, f"expected {name}, got {info.value!r}"
        assert (error.name, _normalise(error.args)) == (name, _normalise(args))

    def events(self, receipt: TxReceipt, event: str) -> list[dict[str, Any]]:
        processed = getattr(self.contract.events, event)().process_receipt(receipt, errors=DISCARD)
        return [dict(log["args"]) for log in processed]

    # ------------------------------------------------------------ shortcuts

    def donation(
        self,
        donation_id: bytes,
        amount: int,
        campaign: bytes | None = None,
        donor: str = "donor",
    ) -> tuple[bytes, bytes, int, bytes, bytes, bytes]:
        return (
            donation_id,
            campaign or self.campaign_a,
            amount,
            commitment(donor),
            b"bank".ljust(32, b"\0"),
            ZERO,
        )

    def donate(
        self, label: str, amount: int, campaign: bytes | None = None, sender: str | None = None
    ) -> bytes:
        donation_id = rid(label)
        self.send(self.fn.recordDonation(self.donation(donation_id, amount, campaign)), sender or self.op_a)
        return donation_id

    def disburse(
        self,
        label: str,
        allocations: Sequence[tuple[bytes, int]],
        campaign: bytes | None = None,
        sender: str | None = None,
        evidence: bytes = ZERO,
    ) -> TxReceipt:
        amount = sum(a for _, a in allocations)
        call = self.fn.recordDisbursement(
            rid(label),
            campaign or self.campaign_a,
            amount,
            "CN-ORG-1",
            "school-meals",
            evidence,
            list(allocations),
        )
        return self.send(call, sender or self.op_a)

    def donation_view(self, donation_id: bytes) -> tuple[Any, ...]:
        return tuple(self.fn.donationOf(donation_id).call())

    def campaign_view(self, campaign_id: bytes) -> tuple[Any, ...]:
        return tuple(self.fn.campaignOf(campaign_id).call())
