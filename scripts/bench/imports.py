"""Import benchmark: a bank statement from upload to all mined, against the same
donations sent through POST /v1/donations/batch by a bare loop, in the same run.

What it runs, for each size (`--rows`, default 1,000 and 10,000) and each chain (anvil,
and with `--embedded` the in-process eth-tester chain of `ledger dev`):
1. a fresh chain and `ledger dev` as a process of its own, on SQLite;
2. a GB18030 statement as a Chinese bank exports it (title lines above the header,
   credits in yuan with thousands separators, a balance column);
3. the import: upload (preview: read, check, simulate) -> commit -> polled until done
   (every transaction mined and mirrored); timed from the first byte sent;
4. the baseline: the same number of donations through POST /v1/donations/batch, 1,000 a
   request, one request after another, each answered once mined and mirrored.
Each measurement is repeated (`--repeat`, default 3) on a fresh chain and service;
medians are printed.

    .venv/bin/python -m scripts.bench.imports [--rows 1000 10000] [--repeat 3] [--embedded]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from ledger_api.imports.sample import MAPPING, statement
from scripts.bench.support import AnvilNode, progress, service
from scripts.bench.write import ADMIN, setup


def bench_import(base: str, key: str, campaign: str, data: bytes) -> tuple[float, float, int]:
    """(seconds from upload to all mined, of which the preview, transactions)."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600) as client:
        start = time.perf_counter()
        preview = client.post(
            "/v1/imports",
            files={"file": ("statement.csv", data)},
            data={"mapping": json.dumps({**MAPPING, "campaign_id": campaign})},
        )
        if preview.status_code != 201:
            raise SystemExit(f"the preview failed: {preview.text[:500]}")
        previewed = time.perf_counter() - start
        import_id = preview.json()["id"]
        if client.post(f"/v1/imports/{import_id}/commit").status_code != 202:
            raise SystemExit("the commit was refused")
        while True:
            shown = client.get(f"/v1/imports/{import_id}").json()
            if shown["progress"]["state"] in ("done", "failed"):
                break
            time.sleep(0.5)  # as often as a page that refreshes itself, not a busy loop
        elapsed = time.perf_counter() - start
    if shown["progress"]["state"] != "done" or shown["verdicts"] != {"recorded": shown["rows"]}:
        raise SystemExit(f"the import did not record every row: {shown['progress']} {shown['verdicts']}")
    return elapsed, previewed, shown["progress"]["transactions"]


def bench_baseline(base: str, key: str, campaign: str, rows: int) -> float:
    """Seconds to record `rows` donations by POST /v1/donations/batch, 1,000 a request."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600) as client:
        start = time.perf_counter()
        for first in range(0, rows, 1000):
            donations = [
                {"campaign_id": campaign, "amount": 1000 + i % 100_000, "donor_reference": f"捐赠人 {i}"}
                for i in range(first, min(rows, first + 1000))
            ]
            answer = client.post("/v1/donations/batch", json={"donations": donations})
            if answer.status_code != 201:
                raise SystemExit(f"a batch failed: {answer.text[:500]}")
        return time.perf_counter() - start


def one_run(rows: int, embedded: bool) -> tuple[float, float, int, float]:
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        env = {
            "LEDGER_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
            "LEDGER_KEYSTORE_PATH": str(workdir / "keystore"),
            "LEDGER_EVIDENCE_PATH": str(workdir / "evidence"),
            "LEDGER_ADMIN_KEY": ADMIN,
            "LEDGER_CONFIRMATIONS": "0",
        }
        if not embedded:
            env["LEDGER_RPC_URL"] = stack.enter_context(AnvilNode("--gas-limit", "100000000")).url
        running = stack.enter_context(service(("dev",), env, workdir / "service.log"))
        _charity, key, campaign = setup(running.base)
        data = statement(rows)
        elapsed, previewed, transactions = bench_import(running.base, key, campaign, data)
        baseline = bench_baseline(running.base, key, campaign, rows)
        return elapsed, previewed, transactions, baseline


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10_000], help="statement sizes")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--embedded", action="store_true", help="also on the embedded eth-tester chain")
    args = parser.parse_args()
    chains = ["anvil", "embedded"] if args.embedded else ["anvil"]
    print("import of a GB18030 statement, upload -> preview -> commit -> all mined (SQLite); medians")
    for chain in chains:
        for rows in args.rows:
            runs = []
            for run in range(args.repeat):
                runs.append(one_run(rows, chain == "embedded"))
                progress(f"{chain} {rows} rows, run {run + 1}: {runs[-1]}")
            elapsed = statistics.median(r[0] for r in runs)
            previewed = statistics.median(r[1] for r in runs)
            baseline = statistics.median(r[3] for r in runs)
            print(
                f"  {chain:8} {rows:>6,} rows: import {elapsed:7.2f} s (preview {previewed:6.2f} s, "
                f"{runs[0][2]} transactions); batch API loop {baseline:7.2f} s",
                file=sys.stdout,
            )


if __name__ == "__main__":
    main()
