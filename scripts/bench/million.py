"""A million donations: what grows with the ledger and what must not.

    .venv/bin/python -m scripts.bench.million                      # 1,000,000 against 100,000
    .venv/bin/python -m scripts.bench.million --donations 200000   # 200k against 20k (development)
    .venv/bin/python -m scripts.bench.million --donations 20000 --skip-postgres --repeat 1 --duration 3

A benchmark, not a test: it prints figures. Each figure at the full size is printed with
its counterpart at a tenth of the size (the baseline, measured in the same run) and the
ratio. Medians of `--repeat` runs; the machine's load average is printed with them.

For each of the two sizes (a tenth of `--donations`, then `--donations`), on a fresh
anvil:

1. Fill, with the fill of the read benchmark (scripts/bench/read.py: recordDonations
   batches of 500 signed locally and sent raw, many per block; disbursements with
   allocations, evidence and refunds in its proportions: one disbursement per ten
   donations, a refund per 200).
2. Backfill, in this process (indexer.indexer.Indexer.sync), into a SQLite file and into
   a new PostgreSQL database: seconds, events per second, the database's size (the file;
   pg_database_size).
3. `ledger serve` on one of them (`--serve-on`, default sqlite) as a process of its own:
   - trace (GET /v1/donations/{id}, random donations) and campaign (GET
     /v1/campaigns/{id}) p50/p99, closed loop, `--clients` clients for `--duration` s;
     they must not grow with the ledger;
   - the whole deployment's CSV and IATI exports through the API, read and thrown away:
     wall time and the growth of the server process's peak RSS during the export (its
     VmHWM, reset before each through /proc/<pid>/clear_refs); streaming means that
     growth does not grow with the ledger;
   - a reconciliation of the whole deployment (POST /v1/audit/reconciliations, polled
     until done): wall time and peak RSS growth of the server process; it must come
     back clean.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from scripts.bench import read
from scripts.bench.support import DEFAULT_POSTGRES, AnvilNode, postgres_database, progress, revision

POLL_SECONDS = 0.5
# anvil keeps every block's state in memory unless told otherwise: filled with a million
# donations it passed 22 GiB and was killed by the kernel at 540,000. --prune-history
# keeps the newest states only; blocks, receipts and logs all stay (the backfill reads
# logs, the reconciliation's view calls ask about the head, which is kept).
KEPT_STATES = 64
# anvil's cost per block grows with its state (in this repository's runs: 20,000 donations
# took 1 s at 20,000 on chain and 10 s at 180,000, in blocks of 30M gas), so the million
# is filled in blocks ten times as large: a tenth of the blocks. 200,000 donations and
# 20,000 disbursements filled in 70 s instead of 197 s. The indexer reads whole blocks, so
# its ranges hold more logs each; both sizes of a run are filled the same way.
BLOCK_GAS_LIMIT = 600_000_000


# ------------------------------------------------------------------ memory


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/{pid}/status")


@contextlib.contextmanager
def peak_growth(pid: int) -> Iterator[dict[str, float]]:
    """The growth of a process's peak RSS over the block, in MiB: its high-water mark is
    reset to the current RSS first (Linux clear_refs 5), so the figure is the block's
    own peak above what the process held when it started."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = _status_kib(pid, "VmRSS")
    figure: dict[str, float] = {}
    yield figure
    figure["peak_growth_mib"] = (_status_kib(pid, "VmHWM") - before) / 1024
    figure["rss_mib"] = before / 1024


# ----------------------------------------------------------------- measures


def database_bytes(name: str, url: str, workdir: Path) -> int:
    if url.startswith("sqlite"):
        return sum(p.stat().st_size for p in workdir.glob(f"{name}.db*"))
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    finally:
        engine.dispose()


def latencies(base: str, pids: tuple[int, int], filled: read.Filled, options: argparse.Namespace) -> dict:
    paths: dict[str, Callable[[random.Random], str]] = {
        "trace": lambda rng: f"/v1/donations/{rng.choice(filled.donation_ids)}",
        "campaign": lambda rng: f"/v1/campaigns/{rng.choice(filled.campaign_ids)}",
    }
    out: dict[str, Any] = {}
    for name, path in paths.items():
        read.load(base, pids, name, path, options.clients, options.warmup)
        runs = [
            read.load(base, pids, name, path, options.clients, options.duration)
            for _ in range(options.repeat)
        ]
        errors = sum(run.errors for run in runs)
        if errors:
            raise SystemExit(f"{name}: {errors} failed requests, e.g. {runs[0].first_error}")
        out[f"{name}_p50_ms"] = statistics.median(run.p50_ms for run in runs)
        out[f"{name}_p99_ms"] = statistics.median(run.p99_ms for run in runs)
        progress(f"{name}: p50 {out[f'{name}_p50_ms']:.1f} ms, p99 {out[f'{name}_p99_ms']:.1f} ms")
    return out


def export(http: httpx.Client, pid: int, format: str) -> dict[str, float]:
    """One whole-deployment export, read to the end and thrown away."""
    with peak_growth(pid) as figure:
        began = time.perf_counter()
        size = 0
        with http.stream("GET", "/v1/audit/export", params={"format": format}) as response:
            if response.status_code != 200:
                raise SystemExit(f"export {format}: {response.status_code} {response.read()[:300]!r}")
            for chunk in response.iter_raw():
                size += len(chunk)
        figure["seconds"] = time.perf_counter() - began
    figure["mib"] = size / 2**20
    progress(
        f"export {format}: {figure['seconds']:.1f} s, {figure['mib']:.0f} MiB,"
        f" peak +{figure['peak_growth_mib']:.0f} MiB"
    )
    return figure


def reconciliation(http: httpx.Client, pid: int) -> dict[str, float]:
    """A reconciliation of the whole deployment, polled until done; it must be clean."""
    with peak_growth(pid) as figure:
        began = time.perf_counter()
        response = http.post("/v1/audit/reconciliations")
        if response.status_code != 202:
            raise SystemExit(f"reconciliation: {response.status_code} {response.text[:300]}")
        job, location = response.json(), response.headers["location"]
        while job["status"] in ("queued", "running"):
            time.sleep(POLL_SECONDS)
            job = http.get(location).json()
        figure["seconds"] = time.perf_counter() - began
    if job["status"] != "done" or not job["result"]["clean"]:
        raise SystemExit(
            f"reconciliation: {job['status']}, {str(job.get('result') or job.get('error'))[:500]}"
        )
    figure["events_read"] = job["result"].get("chain_events_read", 0)
    progress(f"reconciliation: {figure['seconds']:.1f} s, peak +{figure['peak_growth_mib']:.0f} MiB")
    return figure


# --------------------------------------------------------------------- run


def fill_options(options: argparse.Namespace, donations: int) -> argparse.Namespace:
    """The read benchmark's proportions: a disbursement per ten donations."""
    return argparse.Namespace(
        donations=donations,
        disbursements=max(1, donations // 10),
        campaigns=options.campaigns,
        seed=options.seed,
    )


def one_size(donations: int, options: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {"donations": donations}
    with (
        AnvilNode("--gas-limit", str(options.block_gas_limit), "--prune-history", str(KEPT_STATES)) as node,
        tempfile.TemporaryDirectory(prefix="bench_million_") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        progress(f"{donations:,}: filling anvil")
        filled = read.fill(node, fill_options(options, donations), options.block_gas_limit)
        figures["fill_seconds"] = filled.fill_seconds
        figures["anvil_mib"] = _status_kib(node.process.pid, "VmRSS") / 1024
        progress(f"filled in {filled.fill_seconds:.0f} s; anvil holds {figures['anvil_mib']:,.0f} MiB")
        figures["blocks"] = filled.head - filled.deployment_block + 1
        urls = {"sqlite": f"sqlite:///{workdir / 'sqlite.db'}"}
        if not options.skip_postgres:
            urls["postgresql"] = stack.enter_context(postgres_database(options.postgres_url, "bench_million"))
        for name, url in urls.items():
            progress(f"{donations:,}: backfilling {name}")
            seconds, events = read.index(filled, node.url, url)
            figures[f"{name}_backfill_seconds"] = seconds
            figures[f"{name}_events_per_second"] = events / seconds
            figures[f"{name}_mib"] = database_bytes(name, url, workdir) / 2**20
            figures["events"] = events
            progress(f"{name}: {events:,} events in {seconds:.1f} s, {figures[f'{name}_mib']:.0f} MiB")
        with read.serve(
            node.url, urls[options.serve_on], filled.address, workdir, options.serve_on
        ) as running:
            pid = running.process.pid
            figures.update(latencies(running.base, (pid, node.process.pid), filled, options))
            admin = {"Authorization": f"Bearer {running_admin_key(running)}"}
            with httpx.Client(base_url=running.base, headers=admin, timeout=3600) as http:
                for format in ("csv", "iati"):
                    for key, value in export(http, pid, format).items():
                        figures[f"export_{format}_{key}"] = value
                for key, value in reconciliation(http, pid).items():
                    figures[f"reconcile_{key}"] = value
    progress(f"{donations:,}: {figures}")
    return figures


def running_admin_key(running: Any) -> str:
    """read.serve gives the service a fresh admin key in its environment."""
    environ = Path(f"/proc/{running.process.pid}/environ").read_bytes().split(b"\0")
    for entry in environ:
        if entry.startswith(b"LEDGER_ADMIN_KEY="):
            return entry.split(b"=", 1)[1].decode()
    raise SystemExit("the service has no LEDGER_ADMIN_KEY")


ROWS = (
    ("fill_seconds", "fill (s)"),
    ("events", "events"),
    ("blocks", "blocks"),
    ("anvil_mib", "anvil RSS after the fill (MiB)"),
    ("sqlite_backfill_seconds", "SQLite backfill (s)"),
    ("sqlite_events_per_second", "SQLite backfill (events/s)"),
    ("sqlite_mib", "SQLite file (MiB)"),
    ("postgresql_backfill_seconds", "PostgreSQL backfill (s)"),
    ("postgresql_events_per_second", "PostgreSQL backfill (events/s)"),
    ("postgresql_mib", "PostgreSQL database (MiB)"),
    ("trace_p50_ms", "trace p50 (ms)"),
    ("trace_p99_ms", "trace p99 (ms)"),
    ("campaign_p50_ms", "campaign p50 (ms)"),
    ("campaign_p99_ms", "campaign p99 (ms)"),
    ("export_csv_seconds", "CSV export (s)"),
    ("export_csv_mib", "CSV export size (MiB)"),
    ("export_csv_peak_growth_mib", "CSV export peak RSS growth (MiB)"),
    ("export_iati_seconds", "IATI export (s)"),
    ("export_iati_mib", "IATI export size (MiB)"),
    ("export_iati_peak_growth_mib", "IATI export peak RSS growth (MiB)"),
    ("reconcile_seconds", "reconciliation (s)"),
    ("reconcile_peak_growth_mib", "reconciliation peak RSS growth (MiB)"),
    ("reconcile_events_read", "reconciliation events read"),
)


def report(small: dict[str, Any], large: dict[str, Any], options: argparse.Namespace) -> str:
    header = f"{'figure':<40} {small['donations']:>14,} {large['donations']:>14,} {'ratio':>8}"
    lines = [header, "-" * len(header)]
    for key, label in ROWS:
        if key in large and key in small:
            ratio = large[key] / small[key] if small[key] else float("nan")
            lines.append(f"{label:<40} {small[key]:>14,.1f} {large[key]:>14,.1f} {ratio:>8.2f}")
    lines.append(
        f"latencies: {options.clients} clients, {options.duration:g} s runs, medians of {options.repeat};"
        f" API on {options.serve_on}; peak RSS growth = the `ledger serve` process's VmHWM above its RSS"
        " at the start (reset per measure)"
    )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A million donations against a hundred thousand.")
    parser.add_argument(
        "--donations",
        type=int,
        default=1_000_000,
        help="the large size (default 1,000,000); the baseline is a tenth",
    )
    parser.add_argument("--campaigns", type=int, default=20, help="campaigns (default 20)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients (default 16)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per latency run (default 10)")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of warm-up per endpoint (default 2)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="latency runs, medians quoted (default 3)")
    parser.add_argument(
        "--serve-on", choices=("sqlite", "postgresql"), default="sqlite", help="the API's database"
    )
    parser.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="a database on the server to use")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fill (default 1)")
    parser.add_argument(
        "--block-gas-limit",
        type=int,
        default=BLOCK_GAS_LIMIT,
        help=f"anvil's block gas limit; blocks are filled to half of it (default {BLOCK_GAS_LIMIT:,})",
    )
    options = parser.parse_args()
    if options.donations < 10 * options.campaigns:
        parser.error("need at least ten donations per campaign at the baseline's size")
    if options.skip_postgres and options.serve_on == "postgresql":
        parser.error("--serve-on postgresql needs PostgreSQL")
    return options


def main() -> None:
    options = parse_args()
    started = time.perf_counter()
    small = one_size(options.donations // 10, options)
    large = one_size(options.donations, options)
    print(report(small, large, options))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"load average at the end {load}; total {time.perf_counter() - started:.0f} s; code at {revision()}"
    )


if __name__ == "__main__":
    main()
