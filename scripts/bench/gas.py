"""Gas used by the ledger's main writes, on the embedded eth-tester chain and on anvil.

    .venv/bin/python -m scripts.bench.gas             # both chains (anvil from node_modules)
    .venv/bin/python -m scripts.bench.gas --no-anvil  # eth-tester only

Prints a table; nothing is asserted. Gas is the transaction's total gasUsed (including
the 21,000 base and calldata), measured on a freshly deployed ledger. The "relayed signed"
rows are the same donations signed by a self-custody charity's own key (EIP-712,
ledger_api/chain/signed_calls.py) and relayed through `execute` by another account, into a
campaign in the same state as the direct rows' (created, then one donation, then a batch).
"""

from __future__ import annotations

import argparse

from eth_account import Account
from eth_typing import HexStr
from web3 import Web3

from ledger_api.chain import signed_calls
from ledger_api.chain.abi import encode, encode_donations
from ledger_api.chain.contract import make_web3, register_self_custody_charity
from scripts.bench.support import ANVIL, ZERO, AnvilNode, BenchLedger, rid


def measure(w3: Web3) -> dict[str, tuple[int, int]]:
    """Operation -> (gas used, items in the transaction)."""
    led = BenchLedger.deploy(w3)
    gas = {"deploy ledger": (w3.eth.get_transaction_receipt(HexStr(led.deployment.tx_hash))["gasUsed"], 1)}
    fn, op = led.fn, led.op_a

    def record(name: str, call: object, items: int = 1) -> None:
        gas[name] = (led.send(call, op if name != "register charity" else led.admin)["gasUsed"], items)  # type: ignore[arg-type]

    record("register charity", fn.registerCharity(rid("c"), "A charity with a realistic name", rid("meta")))
    record(
        "create campaign",
        fn.createCampaign(rid("k"), led.charity_a, "Winter coats 2026", b"CNY", 10**8, ZERO),
    )
    record("record donation", fn.recordDonation(led.donation(rid("d0"), 10_000)))
    batch = [led.donation(rid(f"b{i}"), 10_000 + i, donor=f"donor{i}") for i in range(100)]
    record("record donations (batch of 100)", fn.recordDonations(batch), 100)
    _relayed(led, gas)
    allocations = [(rid(f"b{i}"), 5_000) for i in range(10)]
    record(
        "disburse with 10 allocations",
        fn.recordDisbursement(
            rid("p"), led.campaign_a, 50_000, "CN-USCC-12345", "school-meals", rid("inv"), allocations
        ),
        10,
    )
    record(
        "disburse with 1 allocation",
        fn.recordDisbursement(rid("p1"), led.campaign_a, 100, "CN-USCC-1", "food", ZERO, [(rid("b20"), 100)]),
    )
    record("refund (part of a donation)", fn.refundDonation(rid("r"), rid("b30"), 1_000, "donor asked"))
    record("anchor evidence", fn.anchorEvidence(rid("p"), rid("photo")))
    record(
        "record correction",
        fn.recordCorrection(rid("x"), led.charity_a, 1, rid("b31"), ZERO, "amount mis-keyed"),
    )
    record("close campaign", fn.closeCampaign(led.campaign_a))
    return gas


def _relayed(led: BenchLedger, gas: dict[str, tuple[int, int]]) -> None:
    """A self-custody charity's campaign, a donation and a batch of 100, each signed by the
    charity's key and relayed by op_b (who pays the gas)."""
    key = Account.from_key(b"\x5c" * 32)
    charity, campaign = rid("self-custody charity"), rid("self-custody campaign")
    register_self_custody_charity(led.w3, led.deployment, led.admin, charity, "Self-held", key.address)
    chain_id, address = led.deployment.chain_id, led.deployment.address

    def relay(data: bytes) -> int:
        call = signed_calls.SignedCall(key.address, data, signed_calls.new_nonce(), 2**40)
        signature = signed_calls.sign(call, chain_id, address, key)
        return int(led.send(led.fn.execute(call.as_tuple(), signature), led.op_b)["gasUsed"])

    relay(encode("createCampaign", campaign, charity, "Winter coats", b"CNY", 10**9, ZERO).data)
    gas["relayed signed donation"] = (
        relay(encode("recordDonation", led.donation(rid("s0"), 10_000, campaign)).data),
        1,
    )
    batch = [led.donation(rid(f"s{i}"), 10_000 + i, campaign, donor=f"donor{i}") for i in range(1, 101)]
    gas["relayed signed batch of 100"] = (relay(encode_donations(batch).data), 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-anvil", action="store_true", help="measure on eth-tester only")
    options = parser.parse_args()

    results = {"eth-tester": measure(make_web3(None))}
    if not options.no_anvil and ANVIL.exists():
        with AnvilNode() as node:
            results["anvil"] = measure(make_web3(node.url))
    chains = list(results)
    header = (
        f"| {'operation':<34} | "
        + " | ".join(f"{c + ' gas':>14}" for c in chains)
        + f" | {'gas per item':>12} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(part) + 0) for part in header.split("|")[1:-1]) + "|")
    for name, (gas, items) in results["eth-tester"].items():
        cells = " | ".join(f"{results[c][name][0]:>14,}" for c in chains)
        print(f"| {name:<34} | {cells} | {gas // items:>12,} |")


if __name__ == "__main__":
    main()
