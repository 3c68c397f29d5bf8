"""`ledger trace`, `ledger reconcile` and `ledger export`: the read API from a terminal.

They talk to a running service over HTTP (LEDGER_API_URL, default the local one), so they
work the same against the embedded chain of `ledger dev` and against production. The
audit commands need a key (LEDGER_API_KEY: an auditor's, or a charity's for its own data).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

API = typer.Option("http://127.0.0.1:8000", envvar="LEDGER_API_URL", help="The service's base URL.")
KEY = typer.Option(None, envvar="LEDGER_API_KEY", help="API key (auditor, or charity for its own data).")


def _client(api: str, key: str | None, timeout: float = 600.0) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=api.rstrip("/"), headers=headers, timeout=timeout, trust_env=False)


def _fail(response: httpx.Response) -> None:
    """Print the problem details of a failed request and exit 2."""
    try:
        body = response.json()
        message = body.get("detail") or body.get("title") or response.text
    except ValueError:
        message = response.text
    typer.echo(f"error {response.status_code}: {message}", err=True)
    raise typer.Exit(2)


def _get(api: str, key: str | None, path: str, **params: Any) -> Any:
    try:
        with _client(api, key) as client:
            response = client.get(path, params={k: v for k, v in params.items() if v is not None})
    except httpx.HTTPError as exc:
        typer.echo(f"cannot reach the service at {api}: {exc}", err=True)
        raise typer.Exit(2) from None
    if response.status_code != 200:
        _fail(response)
    return response.json()


def _money(amount: int, currency: str) -> str:
    return f"{amount:,} {currency} (minor units)"


def _where(proof: dict[str, Any]) -> str:
    state = "final" if proof["final"] else f"not final yet, {proof['confirmations']} confirmations"
    return (
        f"[dim]tx {proof['tx_hash']} · block {proof['block_number']} · log {proof['log_index']} · {state}[/]"
    )


def trace(
    donation_id: str = typer.Argument(..., help="The ID on the receipt (DN-...)."),
    api: str = API,
) -> None:
    """Where a donation went: a tree of its allocations, disbursements, evidence and refunds."""
    t = _get(api, None, f"/v1/donations/{donation_id}")
    currency = t["currency"]
    tree = Tree(
        f"[bold]{t['id']}[/]: {_money(t['amount'], currency)} to “{escape(t['campaign']['name'])}” "
        f"({escape(t['charity']['name'])}), {t['proof']['recorded_at']}\n{_where(t['proof'])}"
    )
    spent = tree.add(f"[bold]Paid for[/] {_money(t['allocated'], currency)}")
    for allocation in t.get("allocations", []):
        d = allocation["disbursement"]
        node = spent.add(
            f"{_money(allocation['amount'], currency)} of {d['id']}: {escape(d['purpose'])}"
            f" → {escape(d['recipient'])} ({_money(d['amount'], currency)} in all)\n"
            f"{_where(allocation['proof'])}"
        )
        for document in d.get("evidence", []):
            node.add(f"evidence sha256 {document['sha256']}\n{_where(document['proof'])}")
    if t.get("refunds"):
        refunds = tree.add(f"[bold]Refunded[/] {_money(t['refunded'], currency)}")
        for refund in t["refunds"]:
            refunds.add(
                f"{refund['id']}: {_money(refund['amount'], currency)} ({escape(refund['reason'])})\n"
                f"{_where(refund['proof'])}"
            )
    tree.add(f"[bold]Not yet spent[/] {_money(t['remaining'], currency)}")
    Console(soft_wrap=True).print(tree)


def reconcile(
    charity_id: str = typer.Option(None, help="Only this charity (CH-...)."),
    campaign_id: str = typer.Option(None, help="Only this campaign (CP-...)."),
    api: str = API,
    key: str = KEY,
) -> None:
    """Have the service re-read the chain and compare it with its SQL mirror. The service
    runs it as a background job: this starts it (or joins the one already running for the
    same scope), notes its progress on stderr and prints the result. Exits 0 when clean,
    1 when any difference is found, 2 on errors."""
    import time

    from ledger_api.audit.reconcile import summarize

    params = {k: v for k, v in {"charity_id": charity_id, "campaign_id": campaign_id}.items() if v}
    location = None
    try:
        with _client(api, key, timeout=60) as client:
            response = client.post("/v1/audit/reconciliations", params=params)
            if response.status_code != 202:
                _fail(response)
            job = response.json()
            location = response.headers.get("location") or job["href"]
            note, pause = None, 0.2
            while job["status"] in ("queued", "running"):
                if job["status"] == "queued":
                    latest = f"reconciliation {job['id']}: queued, {job.get('jobs_ahead', 0)} ahead"
                else:
                    latest = f"reconciliation {job['id']}: {job.get('progress') or 'running'}"
                if latest != note:
                    typer.echo(latest, err=True)
                    note = latest
                time.sleep(pause)
                pause = min(2.0, pause * 1.5)
                response = client.get(location)
                if response.status_code != 200:
                    _fail(response)
                job = response.json()
    except httpx.HTTPError as exc:
        typer.echo(f"cannot reach the service at {api}: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        where = f" ({api.rstrip('/')}{location})" if location else ""
        typer.echo(f"stopped waiting; the reconciliation goes on in the service{where}", err=True)
        raise typer.Exit(130) from None
    if job["status"] != "done":
        typer.echo(f"the reconciliation {job['status']}: {job.get('error') or 'no reason given'}", err=True)
        raise typer.Exit(2)
    answer = job["result"]
    for line in summarize(answer):
        typer.echo(line)
    if not answer["clean"]:
        raise typer.Exit(1)


def export(
    format: str = typer.Option(..., "--format", help="csv, json or iati."),
    charity_id: str = typer.Option(None, help="Only this charity (CH-...)."),
    campaign_id: str = typer.Option(None, help="Only this campaign (CP-...)."),
    output: str = typer.Option(None, "--output", "-o", help="Write here (default: standard output)."),
    api: str = API,
    key: str = KEY,
) -> None:
    """Stream a ledger export (the audit trail as CSV or JSON, or IATI 2.03 XML)."""
    params = {
        k: v for k, v in {"format": format, "charity_id": charity_id, "campaign_id": campaign_id}.items() if v
    }
    started = False
    try:
        with _client(api, key) as client, client.stream("GET", "/v1/audit/export", params=params) as response:
            if response.status_code != 200:
                response.read()
                _fail(response)
            with contextlib.ExitStack() as stack:
                sink = stack.enter_context(Path(output).open("wb")) if output else sys.stdout.buffer
                started = True
                for chunk in response.iter_bytes():
                    sink.write(chunk)
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error
        sys.stderr.close()
        raise typer.Exit(0) from None
    except httpx.HTTPError as exc:
        if started:
            typer.echo(f"the export stopped before its end ({exc}); the output is incomplete", err=True)
        else:
            typer.echo(f"cannot reach the service at {api}: {exc}", err=True)
        raise typer.Exit(2) from None
    if output:
        typer.echo(f"wrote {output}", err=True)


def install(app: typer.Typer) -> None:
    app.command()(trace)
    app.command()(reconcile)
    app.command()(export)
