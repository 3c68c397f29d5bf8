"""`ledger trace`, `ledger reconcile` and `ledger export`: the read API from a terminal.

They talk to a running service over HTTP (LEDGER_API_URL, default the local one), so they
work the same against the embedded chain of `ledger dev` and against production. The
audit commands need a key (LEDGER_API_KEY: an auditor's, or a charity's for its own data).
"""

from __future__ import annotations

import codecs
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import httpx
import typer

from ledger_api.core.formats import money, terminal_text

API = typer.Option("http://127.0.0.1:8000", envvar="LEDGER_API_URL", help="The service's base URL.")
KEY = typer.Option(None, envvar="LEDGER_API_KEY", help="API key (auditor, or charity for its own data).")


def _client(api: str, key: str | None, timeout: float = 600.0) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=api.rstrip("/"), headers=headers, timeout=timeout, trust_env=False)


def _say(message: str) -> None:
    """An error line on stderr; whatever the server or the network said in it is stripped
    of terminal controls."""
    typer.echo(terminal_text(message), err=True)


def _where_from(api: str) -> str:
    """Where the API URL came from, for messages that tell how to change it."""
    if os.environ.get("LEDGER_API_URL", "").rstrip("/") == api.rstrip("/"):
        return "from LEDGER_API_URL"
    if api.rstrip("/") == API.default:
        return "the default"
    return "from --api"


def _unreachable(api: str, exc: Exception) -> NoReturn:
    _say(f"cannot reach the service at {api} ({_where_from(api)}): {exc}")
    _say(
        "Is it running (`ledger dev`, or `ledger serve`)? Point the command at it with "
        "--api URL or LEDGER_API_URL=URL, e.g. --api http://127.0.0.1:8000"
    )
    raise typer.Exit(2)


def _problem(response: httpx.Response) -> str:
    """The problem details' `detail` (and each field error), or the body's text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if not isinstance(body, dict):
        return response.text.strip()[:500]
    message = str(body.get("detail") or body.get("title") or response.text)
    errors = body.get("errors")
    if isinstance(errors, list):
        for error in errors[:5]:
            if isinstance(error, dict) and error.get("msg"):
                message += f"; {error['msg']}"
    return message


def _not_found(path: str, params: dict[str, Any]) -> str:
    """What a 404 says was not there, from the request that got it."""
    for name, kind in (("campaign_id", "campaign"), ("charity_id", "charity")):
        if params.get(name):
            return (
                f"no {kind} {params[name]} (a charity key sees only its own charity's records, "
                "exactly as if the others did not exist)"
            )
    parts = path.strip("/").split("/")
    if len(parts) == 3 and parts[1] == "donations":
        return (
            f"no donation {parts[2]} (check the ID on the receipt, e.g. DN-7K3M-9QX2-P4TA-B5C8; a "
            "donation recorded a moment ago shows once the mirror has it)"
        )
    return f"nothing at {path}"


def _fail(
    response: httpx.Response, api: str | None = None, path: str = "", params: dict[str, Any] | None = None
) -> NoReturn:
    """Print the problem details of a failed request, with how to fix it, and exit 2."""
    status = response.status_code
    params = params or {}
    _say(f"error {status}: {_problem(response)}")
    sent_key = "authorization" in {name.lower() for name in response.request.headers}
    if status == 401 and not sent_key:
        _say(
            "This needs an API key: pass --key lk_... or set LEDGER_API_KEY. An auditor key reads "
            "every charity, a charity's key its own records; an admin issues an auditor key "
            "with `ledger keys create --role auditor` (or POST /v1/keys)."
        )
    elif status == 401:
        _say(
            "The service does not know this key (--key or LEDGER_API_KEY): it is mistyped, "
            "revoked, or was issued for another service or database (`ledger keys create` "
            "says which database it wrote to). An auditor key, or the charity's own key, is needed."
        )
    elif status == 403:
        _say(
            "This key's role may not do this: an auditor key (every charity) or a charity's "
            "own key is needed (--key or LEDGER_API_KEY)."
        )
    elif status == 404:
        where = f" at {api}" if api else ""
        _say(f"Not found{where}: {_not_found(path, params)}.")
        if api:
            _say(f"Is {api} ({_where_from(api)}) the service that recorded it? Choose one with --api.")
    raise typer.Exit(2)


def _get(api: str, key: str | None, path: str, **params: Any) -> Any:
    params = {k: v for k, v in params.items() if v is not None}
    try:
        with _client(api, key) as client:
            response = client.get(path, params=params)
    except httpx.HTTPError as exc:
        _unreachable(api, exc)
    if response.status_code != 200:
        _fail(response, api, path, params)
    return response.json()


def _t(value: Any) -> str:
    """A value from the server, fit for a terminal."""
    return terminal_text(str(value))


def _money(amount: int, currency: str) -> str:
    """As the pages show it (English): CN¥100.00."""
    return terminal_text(money(amount, currency, "en"))


def _where(proof: dict[str, Any]) -> str:
    state = "final" if proof["final"] else f"not final yet, {_t(proof['confirmations'])} confirmations"
    return typer.style(
        f"tx {_t(proof['tx_hash'])} · block {_t(proof['block_number'])} · log {_t(proof['log_index'])}"
        f" · {state}",
        dim=True,
    )


def _bold(text: str) -> str:
    return typer.style(text, bold=True)


@dataclass
class _Node:
    """A tree of lines, drawn with guides as `tree` does. Lines are never cut or folded
    to a width: a hash must stay whole to be copied (the terminal wraps long lines, a
    pipe gets them as they are)."""

    lines: list[str]
    children: list[_Node] = field(default_factory=list)

    def add(self, *lines: str) -> _Node:
        child = _Node(list(lines))
        self.children.append(child)
        return child

    def render(self) -> Iterator[str]:
        yield from self.lines
        yield from self._below("")

    def _below(self, prefix: str) -> Iterator[str]:
        for index, child in enumerate(self.children):
            last = index == len(self.children) - 1
            yield prefix + ("└── " if last else "├── ") + child.lines[0]
            inner = prefix + ("    " if last else "│   ")
            for line in child.lines[1:]:
                yield inner + line
            yield from child._below(inner)


def trace(
    donation_id: str = typer.Argument(..., help="The ID on the receipt (DN-...)."),
    api: str = API,
) -> None:
    """Where a donation went: a tree of its allocations, disbursements, evidence and refunds."""
    t = _get(api, None, f"/v1/donations/{quote(donation_id.strip(), safe='')}")
    currency = t["currency"]
    tree = _Node(
        [
            f"{_bold(_t(t['id']))}: {_money(t['amount'], currency)} to “{_t(t['campaign']['name'])}” "
            f"({_t(t['charity']['name'])}), {_t(t['proof']['recorded_at'])}",
            _where(t["proof"]),
        ]
    )
    spent = tree.add(f"{_bold('Paid for')} {_money(t['allocated'], currency)}")
    for allocation in t.get("allocations", []):
        d = allocation["disbursement"]
        node = spent.add(
            f"{_money(allocation['amount'], currency)} of {_t(d['id'])}: {_t(d['purpose'])}"
            f" → {_t(d['recipient'])} ({_money(d['amount'], currency)} in all)",
            _where(allocation["proof"]),
        )
        for document in d.get("evidence", []):
            node.add(f"evidence sha256 {_t(document['sha256'])}", _where(document["proof"]))
    if t.get("refunds"):
        refunds = tree.add(f"{_bold('Refunded')} {_money(t['refunded'], currency)}")
        for refund in t["refunds"]:
            refunds.add(
                f"{_t(refund['id'])}: {_money(refund['amount'], currency)} ({_t(refund['reason'])})",
                _where(refund["proof"]),
            )
    tree.add(f"{_bold('Not yet spent')} {_money(t['remaining'], currency)}")
    for line in tree.render():
        typer.echo(line)  # click drops the styles when the output is not a terminal


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
                _fail(response, api, "/v1/audit/reconciliations", params)
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
                    _fail(response, api, location)
                job = response.json()
    except httpx.HTTPError as exc:
        _unreachable(api, exc)
    except KeyboardInterrupt:
        where = f" ({api.rstrip('/')}{location})" if location else ""
        typer.echo(f"stopped waiting; the reconciliation goes on in the service{where}", err=True)
        raise typer.Exit(130) from None
    if job["status"] != "done":
        _say(f"the reconciliation {job['status']}: {job.get('error') or 'no reason given'}")
        raise typer.Exit(2)
    answer = job["result"]
    for line in summarize(answer):
        typer.echo(terminal_text(line))
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
                _fail(response, api, "/v1/audit/export", params)
            with contextlib.ExitStack() as stack:
                sink = stack.enter_context(Path(output).open("wb")) if output else sys.stdout.buffer
                started = True
                if output is None and sys.stdout.isatty():
                    _to_terminal(response.iter_bytes(), sink)
                else:  # a file or a pipe gets the service's bytes unchanged
                    for chunk in response.iter_bytes():
                        sink.write(chunk)
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error
        sys.stderr.close()
        raise typer.Exit(0) from None
    except httpx.HTTPError as exc:
        if not started:
            _unreachable(api, exc)
        _say(f"the export stopped before its end ({exc}); the output is incomplete")
        raise typer.Exit(2) from None
    if output:
        typer.echo(f"wrote {output}", err=True)


def _to_terminal(chunks: Iterator[bytes], sink: Any) -> None:
    """An export shown on a terminal: decoded as UTF-8 as it streams (a character may
    straddle two chunks), stripped of terminal controls, lines and tabs kept."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    encoding = sys.stdout.encoding or "utf-8"
    for chunk in chunks:
        sink.write(terminal_text(decoder.decode(chunk), multiline=True).encode(encoding, "replace"))
        sink.flush()
    sink.write(terminal_text(decoder.decode(b"", final=True), multiline=True).encode(encoding, "replace"))


def install(app: typer.Typer) -> None:
    app.command()(trace)
    app.command()(reconcile)
    app.command()(export)
