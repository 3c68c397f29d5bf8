"""Write-path benchmark: donations recorded per second through the HTTP API, against
a bare web3.py loop measured in the same run on the same anvil node.

What it runs:
1. a fresh anvil node and `ledger dev` as a separate process (its own interpreter, so
   the load generator does not share a GIL with the service), on SQLite or PostgreSQL;
2. setup through the API: a charity, its key, a campaign;
3. single donations: `--clients` threads (16) posting POST /v1/donations, each answered
   once its transaction is mined (the default `wait`);
4. batches: POST /v1/donations/batch with `--batch` donations (1,000) per request;
5. the baseline: one Python loop that signs recordDonation calls with eth-account (and
   coincurve) and sends them with web3.py, then waits for the last receipt; no API, no
   database, no simulation.
Each run (`--repeat`, default 3) starts a fresh anvil and service, because anvil slows
down as its chain grows; medians are printed, with the ratios.

    .venv/bin/python -m scripts.bench.write [--singles 800] [--batches 10] [--postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from eth_account import Account
from eth_utils import keccak
from web3.types import Wei

from ledger_api.chain.contract import deploy_ledger, ledger_contract, make_web3
from ledger_api.core import ids
from scripts.bench.support import DEFAULT_POSTGRES, AnvilNode, postgres_database, service

ADMIN = "bench-admin-" + secrets.token_hex(16)


def setup(base: str) -> tuple[str, str, str]:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    charity = httpx.post(
        f"{base}/v1/charities", headers=admin, json={"name": "Bench charity"}, timeout=60
    ).json()
    key = httpx.post(
        f"{base}/v1/keys", headers=admin, json={"role": "charity", "charity_id": charity["id"]}, timeout=60
    ).json()["key"]
    response = httpx.post(
        f"{base}/v1/campaigns",
        headers={"Authorization": f"Bearer {key}"},
        json={"charity_id": charity["id"], "name": "Bench", "currency": "CNY", "goal": 10**12},
        timeout=60,
    )
    if response.status_code != 201:
        raise SystemExit(f"could not create the campaign: {response.text}")
    return charity["id"], key, response.json()["id"]


def bench_singles(base: str, key: str, campaign: str, total: int, clients: int) -> float:
    headers = {"Authorization": f"Bearer {key}"}
    per_client = total // clients
    failures: list[str] = []
    barrier = threading.Barrier(clients + 1)

    def client() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
            barrier.wait()
            for i in range(per_client):
                body = {"campaign_id": campaign, "amount": 100 + i, "donor_reference": f"donor-{i}"}
                response = http.post("/v1/donations", json=body)
                if response.status_code != 201:
                    failures.append(response.text[:200])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise SystemExit(f"{len(failures)} single donations failed, e.g. {failures[0]}")
    return per_client * clients / elapsed


def bench_batches(base: str, key: str, campaign: str, batches: int, size: int, clients: int = 2) -> float:
    headers = {"Authorization": f"Bearer {key}"}
    failures: list[str] = []
    queue = list(range(batches))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=300) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    queue.pop()
                body = {
                    "donations": [
                        {"campaign_id": campaign, "amount": 100 + i, "donor_reference": f"d{i}"}
                        for i in range(size)
                    ]
                }
                response = http.post("/v1/donations/batch", json=body)
                if response.status_code != 201:
                    failures.append(response.text[:300])

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise SystemExit(f"{len(failures)} batches failed, e.g. {failures[0]}")
    return batches * size / elapsed


def bench_bare_loop(anvil_url: str, total: int) -> float:
    """Sign and send `total` recordDonation calls from a local key with web3.py; no API."""
    w3 = make_web3(anvil_url)
    admin = w3.eth.accounts[0]
    deployment = deploy_ledger(w3, admin)
    contract = ledger_contract(w3, deployment.address)
    operator = Account.create()
    charity, campaign = ids.to_bytes32(ids.new("charity")), ids.to_bytes32(ids.new("campaign"))
    for call in (
        contract.functions.registerCharity(charity, "Bare loop", b"\0" * 32),
        contract.functions.addOperator(charity, operator.address),
    ):
        w3.eth.wait_for_transaction_receipt(call.transact({"from": admin}))
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": admin, "to": operator.address, "value": Wei(10**21)})
    )
    base_fee = int(w3.eth.get_block("latest")["baseFeePerGas"])
    fees = {"maxFeePerGas": 2 * base_fee + 10**9, "maxPriorityFeePerGas": 10**9}
    chain_id = w3.eth.chain_id
    nonce = int(w3.eth.get_transaction_count(operator.address))
    create = contract.encode_abi("createCampaign", [campaign, charity, "Bare", b"CNY", 10**12, b"\0" * 32])
    signed = operator.sign_transaction(
        {"to": contract.address, "data": create, "gas": 300_000, "nonce": nonce, "chainId": chain_id, **fees}
    )
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
    nonce += 1
    began = time.perf_counter()
    last = None
    for i in range(total):
        donation = (
            ids.to_bytes32(ids.new("donation")),
            campaign,
            100 + i,
            keccak(secrets.token_bytes(32) + b"donor"),
            b"bank".ljust(32, b"\0"),
            b"\0" * 32,
        )
        data = contract.encode_abi("recordDonation", [donation])
        tx = {
            "to": contract.address,
            "data": data,
            "gas": 200_000,
            "nonce": nonce + i,
            "chainId": chain_id,
            **fees,
        }
        signed = operator.sign_transaction(tx)
        last = w3.eth.send_raw_transaction(signed.raw_transaction)
    assert last is not None
    receipt = w3.eth.wait_for_transaction_receipt(last)
    elapsed = time.perf_counter() - began
    assert receipt["status"] == 1
    count = contract.functions.campaignOf(campaign).call()[8]
    assert count == total, f"bare loop recorded {count} of {total}"
    return total / elapsed


def one_run(args: argparse.Namespace) -> tuple[float, float, float]:
    """(bare loop, API singles, API batches) donations/s, on a fresh anvil and service."""
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        node = stack.enter_context(AnvilNode("--gas-limit", "100000000"))
        if args.postgres:
            database_url = stack.enter_context(postgres_database(DEFAULT_POSTGRES, "bench_write"))
        else:
            database_url = f"sqlite:///{workdir / 'bench.db'}"
        env = {
            "LEDGER_RPC_URL": node.url,
            "LEDGER_DATABASE_URL": database_url,
            "LEDGER_KEYSTORE_PATH": str(workdir / "keystore"),
            "LEDGER_EVIDENCE_PATH": str(workdir / "evidence"),
            "LEDGER_ADMIN_KEY": ADMIN,
            "LEDGER_CONFIRMATIONS": "0",
        }
        running = stack.enter_context(service(("dev",), env, workdir / "service.log"))
        _charity, key, campaign = setup(running.base)
        bare = bench_bare_loop(node.url, args.singles)
        singles = bench_singles(running.base, key, campaign, args.singles, args.clients)
        batch = bench_batches(running.base, key, campaign, args.batches, args.batch)
        return bare, singles, batch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--singles", type=int, default=800, help="single donations per run (default 800)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients (default 16)")
    parser.add_argument("--batches", type=int, default=10, help="batch requests per run (default 10)")
    parser.add_argument("--batch", type=int, default=1000, help="donations per batch request (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--postgres", action="store_true", help="the service on PostgreSQL instead of SQLite")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    results: dict[str, list[float]] = {"bare": [], "singles": [], "batch": []}
    for run in range(args.repeat):
        # Each run on a fresh node and service: anvil slows down as its chain grows (a run
        # adds ~10,000 donations), which would otherwise favour whichever goes first.
        bare, singles, batch = one_run(args)
        results["bare"].append(bare)
        results["singles"].append(singles)
        results["batch"].append(batch)
        print(
            f"run {run + 1}: bare loop {bare:,.0f}/s, API singles {singles:,.0f}/s, "
            f"API batches {batch:,.0f}/s",
            file=sys.stderr,
        )

    median = {name: statistics.median(values) for name, values in results.items()}
    figures = {
        "database": "postgresql" if args.postgres else "sqlite",
        "clients": args.clients,
        "singles_per_run": args.singles,
        "batch_size": args.batch,
        "bare_loop_donations_per_s": round(median["bare"], 1),
        "api_single_donations_per_s": round(median["singles"], 1),
        "api_single_vs_bare": round(median["singles"] / median["bare"], 3),
        "api_batch_donations_per_s": round(median["batch"], 1),
        "runs": {name: [round(v, 1) for v in values] for name, values in results.items()},
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"\nwrite path on anvil, service on {figures['database']}, medians of {args.repeat} runs")
    print(f"  bare web3.py sign+send loop        {median['bare']:>10,.0f} donations/s  (baseline)")
    print(
        f"  API single donations, {args.clients} clients  {median['singles']:>10,.0f} donations/s  "
        f"({median['singles'] / median['bare']:.0%} of the bare loop; goal >= 50%)"
    )
    print(
        f"  API batches of {args.batch:,}            {median['batch']:>10,.0f} donations/s  (goal >= 5,000)"
    )


if __name__ == "__main__":
    main()
