"""`ledger trace`, `ledger reconcile` and `ledger export`: the read API from a terminal;
`ledger import`: a bank statement, previewed and committed; `ledger donate` and
`ledger write`: writes, signed on this machine for a charity that holds
its own key (`--keystore`); `ledger keys new-charity-key`: make such a key (a recipient
organisation makes its own the same way); `ledger recipient register` (the registrar) and
`ledger recipient confirm` (a recipient organisation, signing with its own key).

They talk to a running service over HTTP (LEDGER_API_URL, default the local one), so they
work the same against the embedded chain of `ledger dev` and against production. The
audit commands need a key (LEDGER_API_KEY: an auditor's, or a charity's for its own data).
"""

from __future__ import annotations

import codecs
import contextlib
import getpass
import hashlib
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import httpx
import typer
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ledger_api.chain import signed_calls
from ledger_api.chain.abi import selector
from ledger_api.core import ids
from ledger_api.core.formats import money, terminal_text
from ledger_api.core.hexes import hex0x, unhex

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
    full: bool = typer.Option(
        False,
        "--full",
        help="Re-read every event from the node (default: only the blocks after the ranges"
        " already checked, for the whole deployment).",
    ),
    api: str = API,
    key: str = KEY,
) -> None:
    """Have the service re-read the chain and compare it with its SQL mirror. The service
    runs it as a background job: this starts it (or joins the one already running for the
    same scope), notes its progress on stderr and prints the result. Exits 0 when clean,
    1 when any difference is found, 2 on errors."""
    import time

    from ledger_api.audit.reconcile import summarize

    params: dict[str, Any] = {
        k: v for k, v in {"charity_id": charity_id, "campaign_id": campaign_id}.items() if v
    }
    params["full"] = "true" if full else "false"
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


# ------------------------------------------------------- self-custody: signing here

PASSPHRASE_VARIABLE = "LEDGER_CHARITY_KEY_PASSPHRASE"
KEYSTORE = typer.Option(
    None,
    "--keystore",
    help="The charity's own encrypted key file (Ethereum keystore JSON, `ledger keys new-charity-key`)."
    f" The write is prepared by the service, signed HERE, and relayed: the key never leaves this machine."
    f" Passphrase: ${PASSPHRASE_VARIABLE}, else a prompt (never an argument: others see those in `ps`).",
)

OUT = typer.Option(..., "--out", help="Where to write the new encrypted key file.")
BODY = typer.Option(..., "--body", help="The write's JSON body, in a file ('-': standard input).")


def _passphrase(confirm: bool = False) -> str:
    from_env = os.environ.get(PASSPHRASE_VARIABLE)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        _say(f"no passphrase: set {PASSPHRASE_VARIABLE} or run on a terminal to be asked")
        raise typer.Exit(2)
    first = getpass.getpass("Passphrase of the charity's key: ")
    if confirm and getpass.getpass("Again: ") != first:
        _say("the two passphrases differ")
        raise typer.Exit(2)
    return first


def _unlock(path: Path) -> LocalAccount:
    """The charity's account from its keystore file (eth-account's `Account.decrypt`)."""
    try:
        encrypted = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        _say(f"cannot read the keystore {path}: {exc}")
        raise typer.Exit(2) from None
    try:
        key = Account.decrypt(encrypted, _passphrase())
    except (ValueError, TypeError, KeyError):
        _say(f"the passphrase does not unlock {path} (or it is not an Ethereum keystore file)")
        raise typer.Exit(2) from None
    account: LocalAccount = Account.from_key(key)
    return account


def new_charity_key(
    out: Path = OUT,
) -> None:
    """Make a charity operator key on this machine, in an encrypted keystore file (scrypt,
    eth-account's format, readable by any Ethereum wallet). Prints its address: give that
    (not the file) to the platform as the charity's operator (custody "self")."""
    if out.exists():
        _say(f"{out} exists; not overwritten")
        raise typer.Exit(2)
    passphrase = _passphrase(confirm=True)
    account: LocalAccount = Account.create()
    encrypted = Account.encrypt(account.key, passphrase)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(encrypted, handle)
    typer.echo(f"wrote {out} (keep it, and its passphrase, safe: nobody can recover either)", err=True)
    typer.echo(account.address)


def _check_prepared(prepared: dict[str, Any], account: LocalAccount, expect: dict[str, Any]) -> None:
    """Refuse to sign what the charity did not ask for: the typed data must be a SignedCall
    of the CharityLedger domain, for this key, of the expected function, and hash to the
    digest shown; a donation's campaign and amount must be the ones typed here."""
    typed = prepared["typed_data"]
    message = typed.get("message", {})
    domain = typed.get("domain", {})
    if typed.get("primaryType") != "SignedCall" or domain.get("name") != "CharityLedger":
        _say("the service asked to sign something that is not a CharityLedger SignedCall; not signed")
        raise typer.Exit(2)
    if to_checksum_address(message.get("operator", "0x" + "0" * 40)) != account.address:
        _say(
            f"this keystore holds {account.address}, but the call is for operator "
            f"{_t(message.get('operator'))}: use that operator's key (or --operator)"
        )
        raise typer.Exit(2)
    data = unhex(message["data"])
    function = prepared.get("function", "")
    if function not in expect.get("functions", (function,)) or data[:4] != selector(function):
        _say(f"the service asked to sign a call of {_t(function)}, not what was asked; not signed")
        raise typer.Exit(2)
    if function in ("approveDisbursement", "rejectDisbursement") and "proposal" in expect:
        (proposal,) = abi_decode(["bytes32"], data[4:36])
        if proposal != ids.to_bytes32(expect["proposal"], "disbursement"):
            _say("the call to sign is not a vote on this proposal; not signed")
            raise typer.Exit(2)
    if function in ("recordDonation", "recordGrantDonation") and "donation" in expect:
        (donation, *_) = abi_decode(
            [
                "(bytes32,bytes32,uint256,bytes32,bytes32,bytes32)",
                *(["bytes32"] if function != "recordDonation" else []),
            ],
            data[4:],
        )
        want = expect["donation"]
        if donation[1] != ids.to_bytes32(want["campaign_id"], "campaign") or donation[2] != want["amount"]:
            _say("the call to sign is not this donation (campaign or amount differ); not signed")
            raise typer.Exit(2)
    digest = signed_calls.digest(_signed_call(typed), domain["chainId"], domain["verifyingContract"])
    if hex0x(digest) != prepared.get("digest"):
        _say("the typed data does not hash to the digest the service gave; not signed")
        raise typer.Exit(2)


def _signed_call(typed: dict[str, Any]) -> signed_calls.SignedCall:
    message = typed["message"]
    return signed_calls.SignedCall(
        message["operator"], unhex(message["data"]), unhex(message["nonce"]), int(message["deadline"])
    )


def _sign(prepared: dict[str, Any], account: LocalAccount) -> dict[str, Any]:
    """The signature, made here with the charity's key, over the typed data as checked."""
    typed = prepared["typed_data"]
    domain = typed["domain"]
    signature = signed_calls.sign(
        _signed_call(typed), domain["chainId"], domain["verifyingContract"], account
    )
    return {"message": typed["message"], "signature": hex0x(signature)}


def _post(client: httpx.Client, api: str, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    try:
        return client.post(path, json=body, **kwargs)
    except httpx.HTTPError as exc:
        _unreachable(api, exc)


def signed_write(
    api: str,
    key: str | None,
    path: str,
    body: Any,
    keystore: Path | None,
    operator: str | None = None,
    expect: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A write, in one command: with no keystore, sent as is (the platform signs); with
    one, prepared by the service (`?mode=prepare`), checked and signed here, relayed
    (POST /v1/relay, with an Idempotency-Key so that a retry never sends twice). The
    answer is the prepared records (receipt secrets included) with the relay's answer."""
    with _client(api, key) as client:
        if keystore is None:
            response = _post(client, api, path, body, headers={"Idempotency-Key": str(uuid.uuid4())})
            if response.status_code not in (200, 201, 202):
                _fail(response, api, path)
            return dict(response.json())
        account = _unlock(keystore)
        params = {"mode": "prepare", **({"operator": operator} if operator else {})}
        response = _post(client, api, path, body, params=params)
        if response.status_code != 200:
            _fail(response, api, path)
        prepared = response.json()
        for call in prepared["signed_calls"]:
            _check_prepared(call, account, expect or {})
            domain = call["typed_data"]["domain"]
            typer.echo(
                f"signing {_t(call['function'])} ({_t(call['records'].get('kind'))}: "
                f"{_t(', '.join(map(str, call['records'].get('ids', [])[:3])))}"
                f"{', ...' if len(call['records'].get('ids', [])) > 3 else ''}) with {account.address}"
                f" for ledger {_t(domain['verifyingContract'])} on chain {_t(domain['chainId'])}",
                err=True,
            )
        signed = [_sign(call, account) for call in prepared["signed_calls"]]
        idempotency = {"Idempotency-Key": str(uuid.uuid4())}
        response = _post(client, api, "/v1/relay", {"signed_calls": signed}, headers=idempotency)
        if response.status_code >= 500 or (response.status_code == 409 and "in-flight" in response.text):
            response = _post(client, api, "/v1/relay", {"signed_calls": signed}, headers=idempotency)
        if response.status_code not in (201, 202):
            _fail(response, api, "/v1/relay")
        return {**prepared["records"], "relayed": response.json()}


def donate(
    campaign_id: str = typer.Option(..., help="The campaign (CP-...)."),
    amount: int = typer.Option(..., help="In the currency's minor unit (fen, cents)."),
    donor_reference: str = typer.Option(
        None, help="The donor's reference (hashed; never stored or sent on)."
    ),
    source_disbursement: str = typer.Option(
        None, help="Instead of a donor: the grant (DB-...) from another campaign on the ledger this records."
    ),
    channel: str = typer.Option(None, help="How it was given (bank, cash, ...)."),
    keystore: Path = KEYSTORE,
    operator: str = typer.Option(None, help="Which of the charity's operators signs (default: its first)."),
    api: str = API,
    key: str = typer.Option(None, envvar="LEDGER_API_KEY", help="The charity's API key."),
) -> None:
    """Record a donation. With --keystore the charity's own key signs it here and the
    service only relays it. Prints the receipt: the donation ID and the donor's receipt
    secret (give both, with the reference, to the donor; nobody keeps a copy). With
    --source-disbursement it records a grant received from another campaign on the ledger
    (no donor, no secret)."""
    if (donor_reference is None) == (source_disbursement is None):
        _say("give --donor-reference (a donor) or --source-disbursement (a grant), one of them")
        raise typer.Exit(2)
    body: dict[str, Any] = {"campaign_id": campaign_id, "amount": amount}
    if source_disbursement is not None:
        body["source_disbursement_id"] = source_disbursement
    else:
        body["donor_reference"] = donor_reference
    if channel:
        body["channel"] = channel
    function = "recordGrantDonation" if source_disbursement is not None else "recordDonation"
    expect = {"functions": (function,), "donation": body}
    answer = signed_write(api, key, "/v1/donations", body, keystore, operator, expect)
    typer.echo(json.dumps(answer, indent=2, ensure_ascii=False))


def write(
    path: str = typer.Argument(..., help="The write's path, e.g. /v1/disbursements."),
    body_file: Path = BODY,
    keystore: Path = KEYSTORE,
    operator: str = typer.Option(None, help="Which of the charity's operators signs (default: its first)."),
    api: str = API,
    key: str = typer.Option(None, envvar="LEDGER_API_KEY", help="The charity's API key."),
) -> None:
    """Any JSON write of the API (campaigns, batches of donations, refunds, disbursements,
    operator changes), signed here with --keystore and relayed."""
    text = sys.stdin.read() if str(body_file) == "-" else body_file.read_text()
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--body") from None
    answer = signed_write(api, key, "/" + path.lstrip("/"), body, keystore, operator)
    typer.echo(json.dumps(answer, indent=2, ensure_ascii=False))


TYPED_DATA = typer.Argument(
    ..., help="A prepared record's typed data (JSON), as the console shows it; '-': stdin."
)
OWN_KEY = typer.Option(..., "--keystore", help="The charity's own encrypted key file.")


def sign(typed_data: str = TYPED_DATA, keystore: Path = OWN_KEY) -> None:
    """Sign a prepared record's EIP-712 typed data with the charity's own key, here, and
    print the signature to paste into the console: the key never leaves this machine."""
    text = sys.stdin.read() if typed_data == "-" else typed_data
    try:
        typed = json.loads(text)
        call = _signed_call(typed)
        domain = typed["domain"]
        chain_id, contract = int(domain["chainId"]), str(domain["verifyingContract"])
    except (ValueError, KeyError, TypeError) as exc:
        _say(f"not the typed data of a prepared record: {exc}")
        raise typer.Exit(2) from None
    if typed.get("primaryType") != signed_calls.PRIMARY_TYPE or domain != signed_calls.domain(
        chain_id, contract
    ):
        _say("not the typed data of a prepared record of this ledger; not signed")
        raise typer.Exit(2)
    account = _unlock(keystore)
    if account.address.lower() != call.operator.lower():
        _say(f"this keystore holds {account.address}, not the record's operator {call.operator}; not signed")
        raise typer.Exit(2)
    typer.echo(hex0x(signed_calls.sign(call, chain_id, contract, account)))


def _preview_table(preview: dict[str, Any]) -> None:
    """The preview as a table: counts, totals and the first rows (problems first). Every
    cell from the file or the server is stripped of terminal controls first."""
    console = Console(highlight=False)
    counts = ", ".join(f"{_t(v)} {_t(k)}" for k, v in sorted(preview["verdicts"].items()))
    console.print(
        f"{_t(preview['filename'])}: {_t(preview['rows'])} rows ({counts}); read as "
        f"{_t(preview['encoding'])}, header on line {_t(preview['header_line'])}",
        markup=False,
    )
    for total in preview["totals"]:
        amount = _money(total["amount"], total["currency"] or "CNY")
        console.print(f"  {_t(total['campaign_id'])}: {_t(total['rows'])} donations, {amount}", markup=False)
    table = Table()
    for name in ("line", "bank reference", "verdict", "code", "amount"):
        table.add_column(name, overflow="fold")  # never cut: a reference must stay whole
    table.add_column("message")
    for item in preview["items"][:50]:
        table.add_row(
            *(
                Text(_t("" if value is None else value))
                for value in (
                    item["line"],
                    item["bank_reference"],
                    item["verdict"],
                    item["code"],
                    item["amount"],
                    item["message"],
                )
            )
        )
    console.print(table)


STATEMENT = typer.Argument(..., exists=True, dir_okay=False, help="The bank's CSV or XLSX export.")
PROFILE = typer.Option(None, help="A saved profile's name (PUT /v1/import-profiles/NAME).")
MAPPING = typer.Option(None, exists=True, dir_okay=False, help="A mapping as a JSON file.")
COMMIT = typer.Option(False, "--commit", help="Record the rows (default: preview only).")
REPORT = typer.Option(None, help="Write the report (CSV: which row became which donation).")
CHARITY_KEY = typer.Option(None, envvar="LEDGER_API_KEY", help="The charity's API key.")


def import_statement(
    statement: Path = STATEMENT,
    profile: str | None = PROFILE,
    mapping: Path | None = MAPPING,
    commit: bool = COMMIT,
    report: Path | None = REPORT,
    api: str = API,
    key: str | None = CHARITY_KEY,
) -> None:
    """Import a bank statement: preview every row's verdict; with --commit record the rows
    to record and wait until they are mined; --report writes the report (with the donors'
    receipt secrets: give each to its donor)."""
    if profile is not None and mapping is None:
        form = {"profile": profile}
    elif mapping is not None and profile is None:
        form = {"mapping": mapping.read_text(encoding="utf-8")}
    else:
        raise typer.BadParameter("give --profile NAME or --mapping FILE", param_hint="--profile")
    try:
        with _client(api, key) as client:
            with statement.open("rb") as handle:
                answer = client.post("/v1/imports", files={"file": (statement.name, handle)}, data=form)
            if answer.status_code != 201:
                _fail(answer, api, "/v1/imports")
            preview = answer.json()
            path = f"/v1/imports/{preview['id']}"
            if commit:
                started = client.post(f"{path}/commit")
                if started.status_code != 202:
                    _fail(started, api, f"{path}/commit")
                while preview["progress"]["state"] not in ("done", "failed"):
                    time.sleep(0.5)
                    shown = client.get(path)
                    if shown.status_code != 200:
                        _fail(shown, api, path)
                    preview = shown.json()
                    progress = preview["progress"]
                    _say(
                        f"{progress['state']}: {progress['rows_sent']}/{progress['rows_to_send']} rows sent, "
                        f"{progress['transactions']} transactions mined"
                    )
            _preview_table(preview)
            if report is not None:
                lines = client.get(f"{path}/report.csv")
                if lines.status_code != 200:
                    _fail(lines, api, f"{path}/report.csv")
                report.write_bytes(lines.content)
    except httpx.HTTPError as exc:
        _unreachable(api, exc)
    if preview["progress"]["state"] == "failed":
        _say(f"the import failed: {preview['progress']['error']}")
        raise typer.Exit(1)


# ------------------------------------------------------------------ approvals before payout

proposals_app = typer.Typer(
    help="Proposed disbursements: list, approve, reject, execute.", no_args_is_help=True
)
APPROVER_KEY = typer.Option(None, envvar="LEDGER_API_KEY", help="The approver's API key (or the charity's).")
APPROVER_KEYSTORE = typer.Option(
    None, "--keystore", help="The approver's own encrypted key file, when the approver holds its key."
)


def _print(answer: Any) -> None:
    typer.echo(json.dumps(answer, indent=2, ensure_ascii=False))


def _send(api: str, key: str | None, method: str, path: str, body: Any) -> Any:
    try:
        with _client(api, key) as client:
            response = client.request(method, path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    except httpx.HTTPError as exc:
        _unreachable(api, exc)
    if response.status_code not in (200, 201, 202):
        _fail(response, api, path)
    return response.json()


def add_approver(
    charity_id: str = typer.Option(..., help="The charity (CH-...)."),
    label: str = typer.Option(..., help='The role or name you know the approver by ("Treasurer").'),
    account: str = typer.Option(None, help="The approver's own account, if it holds its key."),
    api: str = API,
    key: str = typer.Option(None, envvar="LEDGER_API_KEY", help="The charity's API key."),
) -> None:
    """Register an approver of the charity's disbursements; prints its account and its API
    key (role approver: shown once, give it to the approver)."""
    body = {"label": label, **({"account": account} if account else {})}
    _print(_send(api, key, "POST", f"/v1/charities/{quote(charity_id)}/approvers", body))


APPROVERS = typer.Option(..., help="An approver account; repeat for each.")


def approval_rule(
    campaign_id: str = typer.Option(..., help="The campaign (CP-...)."),
    approver: list[str] = APPROVERS,
    threshold: int = typer.Option(..., help="How many must approve each disbursement."),
    validity_hours: int = typer.Option(168, help="How long a proposal may collect its approvals."),
    api: str = API,
    key: str = typer.Option(None, envvar="LEDGER_API_KEY", help="The charity's API key."),
) -> None:
    """Put a campaign's disbursements under approval: each is then a proposal, paid only
    once `threshold` of the approvers (never the proposer) approve it."""
    body = {"approvers": approver, "threshold": threshold, "validity_hours": validity_hours}
    _print(_send(api, key, "PUT", f"/v1/campaigns/{quote(campaign_id)}/approval-rule", body))


@proposals_app.command("list")
def list_proposals(
    waiting: bool = typer.Option(False, "--waiting", help="Only what waits for this approver key."),
    campaign_id: str = typer.Option(None, help="One campaign's proposals (public)."),
    api: str = API,
    key: str = APPROVER_KEY,
) -> None:
    """Proposals, newest first: status, amount, recipient, approvals (k of n)."""
    if campaign_id:
        found = _get(api, key, f"/v1/campaigns/{quote(campaign_id)}/proposals")
    else:
        found = _get(api, key, "/v1/proposals", waiting_for="me" if waiting else None)
    table = Table("status", "amount", "recipient", "purpose", "approvals")
    table.add_column("proposal", no_wrap=True)  # an ID is copied whole, never wrapped
    for p in found["items"]:
        table.add_row(
            _t(p["status"]),
            _t(p["amount"]),
            _t(p["recipient"]),
            _t(p["purpose"]),
            f"{p['approvals']} of {p['threshold']} (rule {p['rule_version']}: {p['approvers']} approvers)",
            _t(p["id"]),
        )
    Console().print(table)


def _vote(api: str, key: str | None, proposal_id: str, action: str, body: Any, keystore: Path | None) -> None:
    function = "approveDisbursement" if action == "approve" else "rejectDisbursement"
    expect = {"functions": (function,), "proposal": proposal_id}
    path = f"/v1/proposals/{quote(proposal_id)}/{action}"
    _print(signed_write(api, key, path, body, keystore, None, expect))


@proposals_app.command("approve")
def approve_proposal(
    proposal_id: str = typer.Argument(..., help="The proposal (DB-...)."),
    keystore: Path = APPROVER_KEYSTORE,
    api: str = API,
    key: str = APPROVER_KEY,
) -> None:
    """Approve as your approver key's account (signed here with --keystore if you hold
    your key). The last approval needed executes the proposal."""
    _vote(api, key, proposal_id, "approve", {}, keystore)


@proposals_app.command("reject")
def reject_proposal(
    proposal_id: str = typer.Argument(..., help="The proposal (DB-...)."),
    reason: str = typer.Option(..., help="Public, on chain for ever: why, not who."),
    keystore: Path = APPROVER_KEYSTORE,
    api: str = API,
    key: str = APPROVER_KEY,
) -> None:
    """Reject for good: the proposal can never be paid."""
    _vote(api, key, proposal_id, "reject", {"reason": reason}, keystore)


@proposals_app.command("execute")
def execute_proposal(
    proposal_id: str = typer.Argument(..., help="The proposal (DB-...)."),
    api: str = API,
    key: str = APPROVER_KEY,
) -> None:
    """Execute an approved proposal from the input the service kept."""
    _print(_send(api, key, "POST", f"/v1/proposals/{quote(proposal_id)}/execute", None))


KEY_FILE = typer.Option(
    ..., "--key-file", help="The recipient organisation's own encrypted key file (its registered account)."
)
EVIDENCE = typer.Option(
    None,
    "--evidence",
    help="A document of the receipt (a delivery note): its SHA-256 goes in the confirmation.",
)


def _contract(api: str) -> tuple[int, str]:
    """The chain ID and ledger address the service serves (GET /v1/contract)."""
    found = _get(api, None, "/v1/contract")
    return int(found["chain_id"]), str(found["address"])


def recipient_confirm(
    disbursement_id: str = typer.Argument(..., help="The disbursement (DB-...) that names the organisation."),
    amount: int = typer.Argument(..., help="How much was received, in the currency's minor unit (fen)."),
    statement: str = typer.Argument(
        ..., help="The organisation's statement (public, for ever: no personal data)."
    ),
    key_file: Path = KEY_FILE,
    evidence: Path | None = EVIDENCE,
    api: str = API,
) -> None:
    """Confirm, as a recipient organisation, receipt of (part of) a disbursement: the
    confirmation is signed here with the organisation's own key (EIP-712 SignedCall of
    confirmReceipt) and relayed (POST /v1/recipients/signed-calls); the platform pays the
    gas and cannot confirm in the organisation's name. Confirm in parts as the money
    arrives: the ledger refuses more than the disbursement."""
    try:
        disbursement = ids.to_bytes32(disbursement_id, "disbursement")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="DISBURSEMENT_ID") from None
    if amount <= 0:
        raise typer.BadParameter("the amount is a positive integer in the minor unit", param_hint="AMOUNT")
    evidence_hash = bytes(32)
    if evidence is not None:
        try:
            evidence_hash = hashlib.sha256(evidence.read_bytes()).digest()
        except OSError as exc:
            _say(f"cannot read {evidence}: {exc}")
            raise typer.Exit(2) from None
    account = _unlock(key_file)
    chain_id, contract = _contract(api)
    confirmation_id = ids.new("confirmation")
    call = signed_calls.build(
        account.address,
        "confirmReceipt",
        ids.to_bytes32(confirmation_id),
        disbursement,
        amount,
        statement,
        evidence_hash,
        deadline=int(time.time()) + 3600,
    )
    signature = signed_calls.sign(call, chain_id, contract, account)
    typer.echo(
        f"signing confirmReceipt ({confirmation_id}: {amount} of {_t(disbursement_id)})"
        f" with {account.address} for ledger {contract} on chain {chain_id}",
        err=True,
    )
    message = signed_calls.typed_data(call, chain_id, contract)["message"]
    body = {"message": message, "signature": hex0x(signature)}
    with _client(api, None) as client:
        idempotency = {"Idempotency-Key": str(uuid.uuid4())}
        response = _post(client, api, "/v1/recipients/signed-calls", body, headers=idempotency)
        if response.status_code >= 500:
            response = _post(client, api, "/v1/recipients/signed-calls", body, headers=idempotency)
    if response.status_code not in (201, 202):
        _fail(response, api, "/v1/recipients/signed-calls")
    answer = {
        "confirmation_id": confirmation_id,
        **({"evidence_sha256": evidence_hash.hex()} if evidence is not None else {}),
        "relayed": response.json(),
    }
    typer.echo(json.dumps(answer, indent=2, ensure_ascii=False))


def recipient_register(
    identifier: str = typer.Option(..., help="Its public identifier: a USCC, or CN-USCC-..., GB-CHC-..."),
    name: str = typer.Option(..., help="The organisation's name."),
    account: str = typer.Option(..., help="The organisation's own account (its key never reaches us)."),
    api: str = API,
    key: str = typer.Option(None, envvar="LEDGER_API_KEY", help="The registrar's (admin) API key."),
) -> None:
    """Register a recipient organisation (the registrar): POST /v1/recipients."""
    body = {"identifier": identifier, "name": name, "account": account}
    with _client(api, key) as client:
        response = _post(client, api, "/v1/recipients", body, headers={"Idempotency-Key": str(uuid.uuid4())})
    if response.status_code not in (201, 202):
        _fail(response, api, "/v1/recipients")
    typer.echo(json.dumps(response.json(), indent=2, ensure_ascii=False))


# ------------------------------------------------------------------ disclosure on time

disclosure_app = typer.Typer(
    help="Disclosure deadlines: what is due, publish a report, record a disposal, set an end date.",
    no_args_is_help=True,
)
CHARITY_KEY = typer.Option(
    None, envvar="LEDGER_API_KEY", help="The charity's API key (or an auditor's, to read)."
)
REPORT_FILE = typer.Option(..., exists=True, dir_okay=False, help="The report's file (hashed here).")
DECISION_FILE = typer.Option(None, exists=True, dir_okay=False, help="The decision's file (hashed here).")
STATUS_STYLE = {"overdue": "bold red", "due": "yellow", "met_late": "magenta", "met": "green"}


@disclosure_app.command("due")
def disclosure_due(
    charity_id: str = typer.Option(None, help="One charity (CH-...); a charity key gets its own."),
    campaign_id: str = typer.Option(None, help="One campaign (CP-...)."),
    as_of: str = typer.Option(None, help="The day to judge on (YYYY-MM-DD); default today."),
    show_met: bool = typer.Option(False, "--all", help="Also the obligations already met."),
    api: str = API,
    key: str = CHARITY_KEY,
) -> None:
    """What is overdue and due for the charity's campaigns, soonest first, with the rule
    each comes from (the deployment's disclosure rule set)."""
    report = _get(
        api, key, "/v1/audit/disclosure", charity_id=charity_id, campaign_id=campaign_id, as_of=as_of
    )
    rules = report["rules"]
    _say(f"{rules['title']} ({rules['id']} {rules['version']}), as of {report['as_of']}, {rules['timezone']}")
    rows = [
        (obligation, campaign)
        for campaign in report["campaigns"]
        for obligation in campaign["obligations"]
        if obligation["due_on"] and (show_met or obligation["status"] in ("overdue", "due"))
    ]
    rows.sort(key=lambda row: (row[0]["status"] != "overdue", row[0]["due_on"]))
    table = Table("due", "status", "campaign", "obligation", "met by")
    for obligation, campaign in rows:
        late = f" ({obligation['days_late']} days)" if obligation["days_late"] else ""
        met = obligation["satisfied_by"]
        table.add_row(
            _t(obligation["due_on"]),
            f"[{STATUS_STYLE[obligation['status']]}]{_t(obligation['status'])}{late}[/]",
            f"{_t(campaign['name'])} {_t(campaign['campaign_id'])}",
            _t(obligation["title"]),
            _t(f"{met['id']} on {met['on']}") if met else "",
        )
    Console().print(table)
    summary = report["summary"]
    counts = ", ".join(f"{summary[s]} {s.replace('_', ' ')}" for s in ("overdue", "due", "met_late", "met"))
    _say(counts)


@disclosure_app.command("report")
def disclosure_report(
    campaign_id: str = typer.Option(..., help="The campaign (CP-...)."),
    document: Path = REPORT_FILE,
    period_start: str = typer.Option(..., help="First day covered (YYYY-MM-DD)."),
    period_end: str = typer.Option(..., help="Last day covered (YYYY-MM-DD)."),
    final: bool = typer.Option(False, "--final", help="The full report after the campaign's end."),
    api: str = API,
    key: str = CHARITY_KEY,
) -> None:
    """Publish a periodic (or --final) report: its SHA-256 is anchored on chain with the
    period it covers. The report is public: keep personal data out of it."""
    body = {
        "kind": "final" if final else "periodic",
        "period_start": period_start,
        "period_end": period_end,
        "document_sha256": hashlib.sha256(document.read_bytes()).hexdigest(),
    }
    _print(_send(api, key, "POST", f"/v1/campaigns/{quote(campaign_id)}/reports", body))


@disclosure_app.command("dispose")
def disclosure_dispose(
    campaign_id: str = typer.Option(..., help="The closed campaign (CP-...)."),
    disposition: str = typer.Option(..., help="returned_to_donors, moved_to_campaign or kept_under_rule."),
    amount: int = typer.Option(..., help="Minor units (fen, cents); 0 when nothing remained."),
    target_campaign_id: str = typer.Option(None, help="moved_to_campaign: where the funds go."),
    rule: str = typer.Option(None, help="kept_under_rule: the rule they are kept under."),
    document: Path = DECISION_FILE,
    api: str = API,
    key: str = CHARITY_KEY,
) -> None:
    """Record what becomes of a closed campaign's remaining funds."""
    body: dict[str, Any] = {"disposition": disposition, "amount": amount}
    if target_campaign_id:
        body["target_campaign_id"] = target_campaign_id
    if rule:
        body["rule"] = rule
    if document is not None:
        body["document_sha256"] = hashlib.sha256(document.read_bytes()).hexdigest()
    _print(_send(api, key, "POST", f"/v1/campaigns/{quote(campaign_id)}/disposals", body))


@disclosure_app.command("end-date")
def disclosure_end_date(
    campaign_id: str = typer.Option(..., help="The campaign (CP-...)."),
    ends_on: str = typer.Option(..., help="Its last day (YYYY-MM-DD)."),
    reason: str = typer.Option(None, help="Required when it changes an end date already set."),
    api: str = API,
    key: str = CHARITY_KEY,
) -> None:
    """Set (or, with a reason, change) the campaign's end date, from which the after-end
    disclosures are due."""
    body = {"ends_on": ends_on, **({"reason": reason} if reason else {})}
    _print(_send(api, key, "POST", f"/v1/campaigns/{quote(campaign_id)}/end-date", body))


def install(app: typer.Typer, keys_app: typer.Typer | None = None) -> None:
    app.command()(trace)
    app.command()(reconcile)
    app.command()(export)
    app.command()(donate)
    app.command()(write)
    app.command()(sign)
    app.command("import")(import_statement)
    app.command("add-approver")(add_approver)
    app.command("approval-rule")(approval_rule)
    app.add_typer(proposals_app, name="proposals")
    app.add_typer(disclosure_app, name="disclosure")
    if keys_app is not None:
        keys_app.command("new-charity-key")(new_charity_key)
    recipient_app = typer.Typer(
        help="Recipient organisations: register one; confirm receipt with its own key."
    )
    recipient_app.command("confirm")(recipient_confirm)
    recipient_app.command("register")(recipient_register)
    app.add_typer(recipient_app, name="recipient")
