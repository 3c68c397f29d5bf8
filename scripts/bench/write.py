"""Write-path benchmark: donations recorded per second through the HTTP API, against
bare web3.py loops measured in the same run on the same anvil node.

What it runs:
1. a fresh anvil node and `ledger dev` as a separate process (its own interpreter, so
   the load generator does not share a GIL with the service), on SQLite or PostgreSQL
   (`--workers N`: `ledger dev` deploys and the setup is made, then
   `ledger serve --workers N` serves);
2. setup through the API: a charity, its key, a campaign;
3. the baselines, on a ledger of their own on the same node, with a locally held
   operator key: one Python loop that signs recordDonation calls with eth-account (and
   coincurve) and sends them with web3.py, one transaction per donation, then waits for
   the last receipt; and the same batches as the API's (`--batch` donations in
   recordDonations transactions of 500, encoded by the service's own lean encoder) sent
   the same way. No API, no database, no simulation, no mirror;
4. single donations: `--clients` threads (16) posting POST /v1/donations, each answered
   once its transaction is mined and mirrored (the default `wait`): donations/s, p50 and
   p99 latency, how many donations shared a transaction (group commit), the service's
   CPU per donation and how busy the machine was. The answers are checked against the
   chain (as many donations on chain as answered, each ID once);
5. batches: POST /v1/donations/batch with `--batch` donations (1,000) per request, two
   clients.
Each run (`--repeat`, default 3) starts a fresh anvil and service, because anvil slows
down as its chain grows; medians are printed, with the ratios and the goals (singles at
least twice the bare loop with p99 under 1 s; batches at least 80% of the bare batch
loop). `--profile PREFIX` records the service with py-spy during the singles and the
batches (collapsed stacks; `--profile-idle` counts waits too); `--coalesce-max 1` turns
the group commit off.

    .venv/bin/python -m scripts.bench.write [--singles 800] [--batches 10] [--postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_utils import keccak
from web3.types import Wei

from ledger_api.chain.abi import encode_donations
from ledger_api.chain.contract import deploy_ledger, ledger_contract, make_web3
from ledger_api.core import ids
from scripts.bench.read import cpu_seconds, machine_ticks
from scripts.bench.support import DEFAULT_POSTGRES, AnvilNode, postgres_database, profiled, service

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


def bench_singles(
    base: str, key: str, campaign: str, total: int, clients: int
) -> tuple[float, list[float], list[tuple[str, str]]]:
    """(donations/s, every request's latency in seconds, the (donation ID, tx hash) answered)."""
    headers = {"Authorization": f"Bearer {key}"}
    per_client = total // clients
    failures: list[str] = []
    latencies: list[float] = []
    recorded: list[tuple[str, str]] = []
    barrier = threading.Barrier(clients + 1)

    def client() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
            barrier.wait()
            for i in range(per_client):
                body = {"campaign_id": campaign, "amount": 100 + i, "donor_reference": f"donor-{i}"}
                sent = time.perf_counter()
                response = http.post("/v1/donations", json=body)
                latencies.append(time.perf_counter() - sent)
                if response.status_code != 201:
                    failures.append(response.text[:200])
                else:
                    answer = response.json()
                    recorded.append((answer["id"], answer["transaction"]["tx_hash"]))

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
    return per_client * clients / elapsed, latencies, recorded


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


@dataclass
class BareLedger:
    """A ledger of its own on the node with one charity, its locally held operator key and
    one campaign: what the bare loops send to (no API, no database, no simulation)."""

    w3: Any
    contract: Any
    operator: Any
    campaign: bytes
    fees: dict[str, int]
    chain_id: int
    nonce: int

    def send(self, function: str, args: list[Any], gas: int) -> Any:
        return self.send_data(self.contract.encode_abi(function, args), gas)

    def send_data(self, data: Any, gas: int) -> Any:
        tx = {
            "to": self.contract.address,
            "data": data,
            "gas": gas,
            "nonce": self.nonce,
            "chainId": self.chain_id,
            **self.fees,
        }
        self.nonce += 1
        return self.w3.eth.send_raw_transaction(self.operator.sign_transaction(tx).raw_transaction)

    def donations(self) -> int:
        return int(self.contract.functions.campaignOf(self.campaign).call()[8])


def bare_ledger(anvil_url: str) -> BareLedger:
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
    ledger = BareLedger(
        w3=w3,
        contract=contract,
        operator=operator,
        campaign=campaign,
        fees={"maxFeePerGas": 2 * base_fee + 10**9, "maxPriorityFeePerGas": 10**9},
        chain_id=w3.eth.chain_id,
        nonce=int(w3.eth.get_transaction_count(operator.address)),
    )
    create = [campaign, charity, "Bare", b"CNY", 10**12, b"\0" * 32]
    w3.eth.wait_for_transaction_receipt(ledger.send("createCampaign", create, 300_000))
    return ledger


def _donation(campaign: bytes, amount: int) -> tuple[Any, ...]:
    return (
        ids.to_bytes32(ids.new("donation")),
        campaign,
        amount,
        keccak(secrets.token_bytes(32) + b"donor"),
        b"bank".ljust(32, b"\0"),
        b"\0" * 32,
    )


def bench_bare_loop(ledger: BareLedger, total: int) -> float:
    """Sign and send `total` recordDonation calls from a local key with web3.py, one
    transaction each, then wait for the last receipt."""
    before = ledger.donations()
    began = time.perf_counter()
    last = None
    for i in range(total):
        last = ledger.send("recordDonation", [_donation(ledger.campaign, 100 + i)], 200_000)
    assert last is not None
    receipt = ledger.w3.eth.wait_for_transaction_receipt(last)
    elapsed = time.perf_counter() - began
    assert receipt["status"] == 1
    count = ledger.donations() - before
    assert count == total, f"bare loop recorded {count} of {total}"
    return total / elapsed


def bench_bare_batches(ledger: BareLedger, batches: int, size: int) -> float:
    """The same batches as the API's, sent by a bare loop: `size` donations per batch in
    recordDonations transactions of 500 (the contract's limit, as the API splits them),
    signed and sent back to back, then the last receipt waited for."""
    before = ledger.donations()
    began = time.perf_counter()
    last = None
    for _ in range(batches):
        rows = [_donation(ledger.campaign, 100 + i) for i in range(size)]
        for i in range(0, size, 500):
            chunk = rows[i : i + 500]
            # The service's own lean encoder: web3's would make this baseline slow.
            last = ledger.send_data(encode_donations(chunk).data, 150_000 + 60_000 * len(chunk))
    assert last is not None
    receipt = ledger.w3.eth.wait_for_transaction_receipt(last)
    elapsed = time.perf_counter() - began
    assert receipt["status"] == 1
    count = ledger.donations() - before
    assert count == batches * size, f"bare batch loop recorded {count} of {batches * size}"
    return batches * size / elapsed


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def one_run(args: argparse.Namespace, run: int) -> dict[str, Any]:
    """The figures of one run, on a fresh anvil and service."""
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
            "LEDGER_COALESCE_MAX": str(args.coalesce_max),
        }
        if args.workers > 1:
            # `ledger dev` deploys the ledger and the setup is made through it; then
            # `ledger serve --workers N` takes over the same database and keystore.
            with service(("dev",), env, workdir / "dev.log") as deploying:
                _charity, key, campaign = setup(deploying.base)
            command: tuple[str, ...] = ("serve", "--workers", str(args.workers), "--host", "127.0.0.1")
            running = stack.enter_context(service(command, env, workdir / "service.log"))
        else:
            running = stack.enter_context(service(("dev",), env, workdir / "service.log"))
            _charity, key, campaign = setup(running.base)
        ledger = bare_ledger(node.url)
        bare = bench_bare_loop(ledger, args.singles)
        bare_batch = bench_bare_batches(ledger, args.batches, args.batch)
        profile = Path(f"{args.profile}.{run}.txt") if args.profile else None
        cpu_before, machine_before = cpu_seconds(running.process.pid), machine_ticks()
        with profiled(running.process.pid, profile, args.profile_idle):
            singles, latencies, answered = bench_singles(
                running.base, key, campaign, args.singles, args.clients
            )
        service_cpu = cpu_seconds(running.process.pid) - cpu_before
        busy, total = (after - before for after, before in zip(machine_ticks(), machine_before, strict=True))
        # What the answers say is on chain: each donation answered once, in as many
        # transactions as the answers name.
        address = httpx.get(f"{running.base}/healthz", timeout=10).json()["chain"]["contract_address"]
        on_chain = (
            ledger_contract(ledger.w3, address).functions.campaignOf(ids.to_bytes32(campaign)).call()[8]
        )
        if on_chain != len(answered) or len({d for d, _ in answered}) != len(answered):
            raise SystemExit(f"{len(answered)} donations answered, {on_chain} on chain")
        batch_profile = Path(f"{args.profile}.{run}.batches.txt") if args.profile else None
        with profiled(running.process.pid, batch_profile, args.profile_idle):
            batch = bench_batches(running.base, key, campaign, args.batches, args.batch)
        return {
            "bare": bare,
            "bare_batch": bare_batch,
            "singles": singles,
            "p50": percentile(latencies, 0.5),
            "p99": percentile(latencies, 0.99),
            "transactions": len({tx for _, tx in answered}),
            "service_cpu_ms_per_donation": service_cpu * 1000 / len(answered),
            "machine_busy": busy / total,
            "batch": batch,
        }


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
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="`ledger serve --workers N` instead of `ledger dev` (default 1)",
    )
    parser.add_argument(
        "--coalesce-max", type=int, default=100, help="LEDGER_COALESCE_MAX (1: no group commit; default 100)"
    )
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        help="py-spy the service: singles to PREFIX.<run>.txt, batches to PREFIX.<run>.batches.txt",
    )
    parser.add_argument(
        "--profile-idle", action="store_true", help="the profile counts waits too (wall time)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    runs = []
    for run in range(args.repeat):
        # Each run on a fresh node and service: anvil slows down as its chain grows (a run
        # adds ~10,000 donations), which would otherwise favour whichever goes first.
        figures = one_run(args, run + 1)
        runs.append(figures)
        print(
            f"run {run + 1}: bare loop {figures['bare']:,.0f}/s, API singles {figures['singles']:,.0f}/s "
            f"(p50 {figures['p50'] * 1000:.0f} ms, p99 {figures['p99'] * 1000:.0f} ms, "
            f"{args.singles / figures['transactions']:.1f} per transaction, service CPU "
            f"{figures['service_cpu_ms_per_donation']:.1f} ms each, "
            f"machine {figures['machine_busy']:.0%} busy),"
            " bare batches "
            f"{figures['bare_batch']:,.0f}/s, API batches {figures['batch']:,.0f}/s",
            file=sys.stderr,
        )

    median = {name: statistics.median(run[name] for run in runs) for name in runs[0]}
    summary = {
        "database": "postgresql" if args.postgres else "sqlite",
        "workers": args.workers,
        "clients": args.clients,
        "singles_per_run": args.singles,
        "coalesce_max": args.coalesce_max,
        "batch_size": args.batch,
        "load_average": os.getloadavg(),
        "bare_loop_donations_per_s": round(median["bare"], 1),
        "api_single_donations_per_s": round(median["singles"], 1),
        "api_single_vs_bare": round(median["singles"] / median["bare"], 3),
        "api_single_p50_ms": round(median["p50"] * 1000, 1),
        "api_single_p99_ms": round(median["p99"] * 1000, 1),
        "donations_per_transaction": round(args.singles / median["transactions"], 2),
        "bare_batch_loop_donations_per_s": round(median["bare_batch"], 1),
        "api_batch_donations_per_s": round(median["batch"], 1),
        "api_batch_vs_bare": round(median["batch"] / median["bare_batch"], 3),
        "runs": [{k: round(v, 4) for k, v in run.items()} for run in runs],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    single_ratio = median["singles"] / median["bare"]
    batch_ratio = median["batch"] / median["bare_batch"]
    print(
        f"\nwrite path on anvil, service on {summary['database']}, medians of {args.repeat} runs"
        f" (load average {summary['load_average'][0]:.1f})"
    )
    print(f"  bare web3.py sign+send loop        {median['bare']:>10,.0f} donations/s  (baseline)")
    print(
        f"  API single donations, {args.clients} clients  {median['singles']:>10,.0f} donations/s  "
        f"({single_ratio:.2f}x the bare loop; goal >= 2x: {met(single_ratio >= 2)})"
    )
    print(
        f"    latency p50 {median['p50'] * 1000:.0f} ms, p99 {median['p99'] * 1000:.0f} ms"
        f" (goal p99 < 1 s: {met(median['p99'] < 1)}); "
        f"{summary['donations_per_transaction']} donations per transaction"
    )
    print(
        f"  bare batch loop, {args.batch:,} per batch  {median['bare_batch']:>10,.0f} donations/s  (baseline)"
    )
    print(
        f"  API batches of {args.batch:,}            {median['batch']:>10,.0f} donations/s  "
        f"({batch_ratio:.0%} of the bare batch loop; goal >= 80%: {met(batch_ratio >= 0.8)})"
    )


if __name__ == "__main__":
    main()
