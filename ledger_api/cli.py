"""The `ledger` command line."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError
from sqlalchemy import make_url

from ledger_api.core.config import get_settings
from ledger_api.core.http import slow_client_protocol
from ledger_api.core.paths import ROOT

app = typer.Typer(
    help="Charity ledger: record, mirror and trace charitable fund flows.", no_args_is_help=True
)


@app.command()
def compile() -> None:
    """Compile the contracts and write contracts/artifacts/ (needs solc or `npm ci`)."""
    from ledger_api.chain.build import compile_contracts, find_compiler, write_artifacts

    compiler = find_compiler()
    for path in write_artifacts(compile_contracts(compiler)):
        typer.echo(f"wrote {path.relative_to(ROOT)} (compiler: {compiler})")


@app.command()
def dev(
    host: str = typer.Option(None, help="Address to listen on (default LEDGER_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port to listen on (default LEDGER_PORT or 8000)."),
    demo: bool = typer.Option(False, help="Load demo charities, campaigns, donations and disbursements."),
) -> None:
    """Run everything on embedded defaults in one process: chain, database, indexer and API.

    One `ledger dev` at a time per state: on the embedded chain it starts from a fresh
    var/embedded.db and keystore, so a second one on the same checkout refuses to start
    (it would delete the first one's data) unless given a state of its own."""
    from ledger_api.app import create_app
    from ledger_api.core import logs
    from ledger_api.runtime import StateInUse, build_runtime, claim_dev_state

    settings = get_settings()
    host, port = host or settings.host, port or settings.port
    url = _local_url(host, port)
    try:  # before anything is deleted, migrated or deployed
        state_lock = claim_dev_state(settings, f"at {url}")
    except StateInUse as exc:
        typer.echo(f"ledger dev: {exc}", err=True)
        raise typer.Exit(2) from None
    logs.configure(json_lines=False)
    runtime = build_runtime(settings, dev=True)
    from ledger_api.deployment.reads import network, rpc_url

    chain = network(runtime.settings, runtime.deployment)
    if not runtime.settings.embedded_chain:
        chain += f" at {runtime.settings.rpc_url}"
    typer.echo(f"ledger at {runtime.deployment.address} on {chain} (chain id {runtime.deployment.chain_id})")
    public_rpc = rpc_url(runtime.settings, url)
    typer.echo(f"database: {runtime.engine.url.render_as_string(hide_password=True)}")
    application = create_app(runtime, long_lived=True)
    if demo:
        from ledger_api.demo import load_demo

        if runtime.indexer is not None:
            runtime.indexer.start()  # each demo write waits for the mirror to show it
        load_demo(runtime, echo=typer.echo, base_url=runtime.settings.public_url or url)
    box = [f"ledger dev is ready: open {url}", f"charity staff and the registrar: {url}/console"]
    if "admin_key" not in settings.model_fields_set:
        assert runtime.settings.admin_key is not None
        box += [
            "admin API key (made for this run; set LEDGER_ADMIN_KEY to choose one):",
            f"  {runtime.settings.admin_key.get_secret_value()}",
        ]
    else:
        box.append("admin API key: the one in LEDGER_ADMIN_KEY")
    if public_rpc:
        read_only = " (read-only)" if not runtime.settings.public_rpc_url else ""
        box.append(f"chain JSON-RPC{read_only}: {public_rpc}")
    if runtime.settings.embedded_chain:
        box.append("the embedded chain ends with this process: the next `ledger dev` starts afresh")
    server = _AnnouncingServer(
        uvicorn.Config(
            application,
            host=host,
            port=port,
            http=slow_client_protocol(runtime.settings),
            access_log=runtime.settings.access_log,
        ),
        lambda: typer.echo(_boxed(box)),
    )
    try:
        server.run()
    finally:
        state_lock.release()


def _local_url(host: str, port: int) -> str:
    """The address to open for a server listening on `host`: all interfaces are reached
    on the loopback one."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _boxed(lines: list[str]) -> str:
    """`lines` in a box, never cut or wrapped: it is as wide as its longest line."""
    width = max(len(line) for line in lines)
    return "\n".join(
        [
            "╔" + "═" * (width + 2) + "╗",
            *(f"║ {line.ljust(width)} ║" for line in lines),
            "╚" + "═" * (width + 2) + "╝",
        ]
    )


class _AnnouncingServer(uvicorn.Server):
    """uvicorn's server, calling `announce` once it listens: after every line `ledger dev`
    and uvicorn print at startup, so what it says is the last thing on the screen."""

    def __init__(self, config: uvicorn.Config, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self.announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.announce()


@app.command()
def serve(
    host: str = typer.Option(None, help="Address to listen on (default LEDGER_HOST)."),
    port: int = typer.Option(None, help="Port to listen on (default LEDGER_PORT)."),
    workers: int = typer.Option(
        1, min=1, max=64, help="API processes (uvicorn workers); reads scale with cores."
    ),
) -> None:
    """Run the API (and, unless LEDGER_RUN_INDEXER=false, the indexer) against the
    configured node, database and deployment. Outside development it refuses placeholder
    secrets. With --workers N, N processes serve requests; one of them writes the mirror at
    a time (the others' indexers stand by on the writer lock), and all share the outbox
    (nonces come from database row locks)."""
    from ledger_api.app import create_app
    from ledger_api.core import logs
    from ledger_api.core.config import InsecureSettings
    from ledger_api.runtime import SetupError, build_runtime

    settings = get_settings()
    logs.configure(json_lines=settings.env == "production")
    try:
        runtime = build_runtime(settings, dev=False)
    except (InsecureSettings, SetupError) as exc:
        typer.echo(f"ledger serve: {exc}", err=True)
        raise typer.Exit(2) from None
    if workers == 1:
        uvicorn.run(
            create_app(runtime, long_lived=True),
            host=host or settings.host,
            port=port or settings.port,
            http=slow_client_protocol(settings),
            access_log=settings.access_log,
        )
        return
    # Checked here once, with a clear message; each worker builds its own runtime.
    runtime.engine.dispose()
    _serve_workers(workers, host or settings.host, port or settings.port)


def _serve_workers(workers: int, host: str, port: int) -> None:
    """uvicorn's supervisor with a listening socket that says it is TCP, and the workers'
    metrics in one place.

    uvicorn binds the workers' shared socket with `proto` 0, and asyncio turns on
    TCP_NODELAY only for accepted sockets whose `proto` is IPPROTO_TCP (uvicorn issue
    #3149): with Nagle left on, every keep-alive request waited ~44 ms for the client's
    delayed ACK (measured here: 0.6 ms one process, 44 ms two). The socket is re-wrapped
    with its protocol stated, and the workers inherit that.

    PROMETHEUS_MULTIPROC_DIR is set to a fresh private directory (mode 0700) before the
    workers start, so that each writes its metrics there and /metrics adds them up
    (ledger_api/core/metrics.py); it is removed when the supervisor stops, and those of
    supervisors that were killed are removed at the next start. A worker that exits is
    marked dead, so its gauges drop out while its counts stay in the totals."""
    import os
    import shutil
    import socket
    import tempfile
    from pathlib import Path

    from prometheus_client import multiprocess
    from uvicorn.supervisors import Multiprocess

    from ledger_api.core.http import PROTOCOL_BY_NAME
    from ledger_api.core.metrics import MULTIPROC_ENV

    def fresh_metrics_dir() -> str:
        """ledger-metrics-<supervisor pid>-<random>, after removing this user's whose
        supervisor is gone (killed before it could clean up)."""
        for stale in Path(tempfile.gettempdir()).glob("ledger-metrics-*-*"):
            pid = stale.name.split("-")[2]
            try:
                if pid.isdigit() and stale.stat().st_uid == os.getuid():
                    os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(stale, ignore_errors=True)
            except OSError:
                continue  # gone meanwhile, or another user's process
        return tempfile.mkdtemp(prefix=f"ledger-metrics-{os.getpid()}-")

    class Supervisor(Multiprocess):
        def keep_subprocess_alive(self) -> None:
            before = {process.pid for process in self.processes}
            super().keep_subprocess_alive()
            self._mark_dead(before)

        def restart_all(self) -> None:
            before = {process.pid for process in self.processes}
            super().restart_all()
            self._mark_dead(before)

        def _mark_dead(self, before: set[int | None]) -> None:
            for pid in before - {process.pid for process in self.processes}:
                if pid is not None:
                    multiprocess.mark_process_dead(pid, metrics_dir)

    config = uvicorn.Config(
        "ledger_api.app:app_from_environment",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        http=PROTOCOL_BY_NAME,
        access_log=get_settings().access_log,
        # uvicorn kills a worker that does not answer its supervisor's ping within 5 s. A
        # starting worker imports web3 and builds its runtime while it should answer; on a
        # loaded machine (2 cores, load 11) that starved the ping thread for more than 5 s,
        # and every worker was killed and restarted over and over (measured: none of 3
        # serving after 40 s). 30 s still finds a hung worker.
        timeout_worker_healthcheck=30,
    )
    listener = config.bind_socket()
    if listener.family in (socket.AF_INET, socket.AF_INET6):
        listener = socket.socket(listener.family, listener.type, socket.IPPROTO_TCP, fileno=listener.detach())
        listener.set_inheritable(True)
    metrics_dir = fresh_metrics_dir()
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        Supervisor(config, sockets=[listener]).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


@app.command()
def deploy() -> None:
    """Deploy a new ledger contract, signed by the keystore's service account (its admin),
    and record it in the database. Prints the address to set as LEDGER_CONTRACT_ADDRESS."""
    from ledger_api.chain.contract import deploy_ledger, make_web3
    from ledger_api.core import db
    from ledger_api.core.config import InsecureSettings
    from ledger_api.core.limits import sane_recursion_limit
    from ledger_api.runtime import open_keystore, record_deployment

    sane_recursion_limit()  # it parses a node's answers (see core/limits.py)
    settings = get_settings()
    try:
        settings.check_secrets()
    except InsecureSettings as exc:
        typer.echo(f"ledger deploy: {exc}", err=True)
        raise typer.Exit(2) from None
    if settings.embedded_chain:
        typer.echo("ledger deploy: set LEDGER_RPC_URL (the embedded chain ends with the process)", err=True)
        raise typer.Exit(2)
    w3 = make_web3(settings.rpc_url)
    keystore, service_account = open_keystore(settings)
    deployment = deploy_ledger(w3, service_account, keystore=keystore)
    db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    try:
        record_deployment(engine, deployment)
    finally:
        engine.dispose()  # its connections, not the garbage collector's (ResourceWarning in-process)
    where = f"block {deployment.block_number}, chain {deployment.chain_id}"
    typer.echo(f"deployed the ledger at {deployment.address} ({where})")
    typer.echo(f"admin (service account): {service_account}")


keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _expiry(value: str | None) -> Any:
    """`--expires`: an ISO 8601 time (UTC if it has no zone) or a number of days (`90d`)."""
    from datetime import UTC, datetime, timedelta

    from ledger_api.keys.schemas import MAX_DAYS

    if value is None:
        return None
    now = datetime.now(UTC)
    text = value.strip()
    try:
        if text.endswith("d") and text[:-1].isdigit():
            days = int(text[:-1])
            if not 1 <= days <= MAX_DAYS:
                raise ValueError(f"between 1d and {MAX_DAYS}d")
            return now + timedelta(days=days)
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"an ISO 8601 time or a number of days like 90d ({exc})") from None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if moment <= now:
        raise typer.BadParameter("that time is past: a key must expire in the future", param_hint="--expires")
    if moment > now + timedelta(days=MAX_DAYS):
        raise typer.BadParameter(f"at most {MAX_DAYS} days away", param_hint="--expires")
    return moment


def _keys_engine(command: str) -> tuple[Any, str, str | None, bool]:
    """The database of this mode's state, upgraded, for `ledger keys`: (engine, its
    printable URL, the running `ledger dev` holding it, whether the next one wipes it)."""
    from ledger_api.core import db
    from ledger_api.runtime import EMBEDDED_DATABASE, dev_state_holder, state_settings, wiped_at_start

    settings = get_settings()
    located = state_settings(settings)
    database = make_url(located.database_url).render_as_string(hide_password=True)
    wiped = EMBEDDED_DATABASE in wiped_at_start(settings)  # deleted at the next `ledger dev` start
    holder = dev_state_holder(settings)
    if wiped and holder is None:
        typer.echo(
            f"ledger keys {command}: no `ledger dev` is running on the embedded chain's state "
            f"({database}), and the next `ledger dev` deletes it when it starts, so a key "
            "made now could never be used.\n"
            "Start `ledger dev` first and run this again while it runs (or, against a node, "
            "set the same LEDGER_RPC_URL and LEDGER_DATABASE_URL as the service).",
            err=True,
        )
        raise typer.Exit(2)
    db.upgrade(located.database_url)
    return db.make_engine(located.database_url), database, holder, wiped


def _where_written(database: str, holder: str | None, wiped: bool) -> None:
    if holder is not None:
        typer.echo(f"  the database of the running `ledger dev` ({holder})", err=True)
    if wiped:
        typer.echo(
            "  it works until that `ledger dev` stops: the next one starts from a fresh chain and "
            "database, without it",
            err=True,
        )


@keys_app.command("create")
def keys_create(
    role: str = typer.Option(..., help="admin, charity or auditor."),
    charity_id: str = typer.Option(None, help="The charity a charity key writes for (CH-...)."),
    charity: Annotated[
        list[str] | None,
        typer.Option("--charity", help="Limit an auditor key to this charity (CH-...; repeat for several)."),
    ] = None,
    expires: str = typer.Option(None, help="When the key stops working: an ISO 8601 time, or days (90d)."),
    label: str = typer.Option(None, help="A note to recognise the key by."),
) -> None:
    """Issue an API key directly in the database of this mode's state (the one `ledger dev`
    uses with the same LEDGER_* settings). The key is printed once; only its hash is kept.

    On the embedded chain that is var/embedded.db, which `ledger dev` deletes when it
    starts: the key works while the running `ledger dev` runs, so one must be running."""
    from ledger_api.core import ids
    from ledger_api.core.security import ROLES
    from ledger_api.keys.service import issue_key

    if role not in ROLES:
        raise typer.BadParameter(f"one of {', '.join(ROLES)}", param_hint="--role")
    if (role == "charity") != (charity_id is not None):
        raise typer.BadParameter("a charity key needs --charity-id, and only a charity key takes one")
    if charity and role != "auditor":
        raise typer.BadParameter("only an auditor key is limited with --charity", param_hint="--charity")
    charity_hex = None
    charities = None
    try:
        if charity_id is not None:
            charity_hex = ids.to_hex(charity_id, "charity")
        if charity:
            charities = list(dict.fromkeys(ids.to_hex(one, "charity") for one in charity))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--charity-id/--charity") from None
    expires_at = _expiry(expires)
    engine, database, holder, wiped = _keys_engine("create")
    try:
        issued = issue_key(engine, role, charity_hex, label, charities=charities, expires_at=expires_at)
    finally:
        engine.dispose()
    typer.echo(f"key id {issued.id} ({role}), written to {database}", err=True)
    if expires_at is not None:
        typer.echo(f"  it expires at {expires_at.isoformat(timespec='seconds')}", err=True)
    _where_written(database, holder, wiped)
    typer.echo(issued.key)


@keys_app.command("rotate")
def keys_rotate(
    key_id: str = typer.Argument(..., help="The id of the key to replace (the 12 characters after lk_)."),
    grace_hours: int = typer.Option(24, min=0, max=168, help="How long the old key keeps working."),
    expires: str = typer.Option(
        None, help="When the new key stops working (default: the old one's lifetime)."
    ),
) -> None:
    """Issue a successor to a key (same role, charity, scope and label); the old key keeps
    working for the grace period, then answers `key-expired`. The new key is printed once."""
    from datetime import timedelta

    from ledger_api.core.errors import Problem
    from ledger_api.keys.service import rotate_key

    expires_at = _expiry(expires)
    engine, database, holder, wiped = _keys_engine("rotate")
    try:
        rotated = rotate_key(engine, key_id, timedelta(hours=grace_hours), expires_at)
    except Problem as exc:
        typer.echo(f"ledger keys rotate: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    typer.echo(
        f"key id {rotated.issued.id} ({rotated.role}) replaces {key_id}, written to {database}", err=True
    )
    typer.echo(
        f"  {key_id} keeps working until {rotated.previous_expires_at.isoformat(timespec='seconds')}",
        err=True,
    )
    _where_written(database, holder, wiped)
    typer.echo(rotated.issued.key)


@app.command()
def index(
    rpc_url: str = typer.Option(None, help="JSON-RPC URL of the node (default LEDGER_RPC_URL)."),
    database_url: str = typer.Option(None, help="SQLAlchemy URL (default LEDGER_DATABASE_URL)."),
    address: str = typer.Option(None, help="Ledger contract to mirror (default LEDGER_CONTRACT_ADDRESS)."),
    confirmations: int = typer.Option(
        None,
        min=0,
        help="Blocks behind the head before a record is final (default LEDGER_CONFIRMATIONS or 12).",
    ),
    once: bool = typer.Option(False, help="Index up to the current head, then exit."),
    max_range: int = typer.Option(100_000, min=1, help="Largest block span of one eth_getLogs."),
    metrics_port: int = typer.Option(None, help="Serve Prometheus metrics on 127.0.0.1:PORT."),
    log_format: str = typer.Option("json", help="Log lines as 'json' or 'text'."),
    progress: str = typer.Option(
        "auto", help="Backfill progress: 'bar', 'log' or 'auto' (bar on a terminal)."
    ),
) -> None:
    """Mirror a ledger deployment's events into SQL, as a process of its own.

    One writer per deployment: a second `ledger index` against the same database stands by
    and takes over when the first one stops or dies.
    """
    import logging
    import signal
    import threading

    from web3 import Web3

    from indexer.indexer import Indexer, IndexerConfig
    from indexer.lock import WriterLock
    from indexer.progress import BackfillProgress
    from indexer.service import ensure_deployment
    from ledger_api.chain.contract import make_web3
    from ledger_api.core import db, logs
    from ledger_api.core.limits import sane_recursion_limit

    sane_recursion_limit()  # it parses a node's answers (see core/limits.py)
    if log_format not in ("json", "text"):
        raise typer.BadParameter("use 'json' or 'text'", param_hint="--log-format")
    if progress not in ("auto", "bar", "log"):
        raise typer.BadParameter("use 'auto', 'bar' or 'log'", param_hint="--progress")
    logs.configure(logging.INFO, json_lines=log_format == "json")
    settings = get_settings()
    node_url = rpc_url or settings.rpc_url
    if not node_url:
        raise typer.BadParameter("an RPC URL is needed (--rpc-url or LEDGER_RPC_URL)", param_hint="--rpc-url")
    database_url = database_url or settings.database_url
    address = address or settings.contract_address or ""
    if not Web3.is_address(address):
        raise typer.BadParameter(f"not an address: {address!r}", param_hint="--address")
    w3 = make_web3(node_url, timeout=30.0)  # a backfill is not latency-bound; big ranges take time
    try:
        code = w3.eth.get_code(Web3.to_checksum_address(address))
    except Exception as exc:  # a node that is down, or answers what is not JSON-RPC
        typer.echo(
            f"ledger index: the node at {node_url} gave no usable answer ({type(exc).__name__})", err=True
        )
        raise typer.Exit(1) from None
    if not code:
        raise typer.BadParameter(f"no contract at {address} on {node_url}", param_hint="--address")
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    deployment_id = ensure_deployment(engine, w3, address)
    if confirmations is None:
        confirmations = settings.confirmations if settings.confirmations is not None else 12
    config = IndexerConfig(confirmations=confirmations, max_range=max_range)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    indexer = Indexer(w3, engine, deployment_id, config)
    lock = WriterLock(engine, indexer.chain_id, indexer.address)
    if not lock.acquire(stop=stop.is_set):
        return
    try:
        cursor = indexer.cursor()
        bar = BackfillProgress(
            cursor[0] + 1 if cursor else indexer.start_block,
            live=None if progress == "auto" else progress == "bar",
        )
        indexer.on_range = bar
        if once:
            indexer.sync()
            bar.finish()
            typer.echo(
                f"indexed {indexer.address} on chain {indexer.chain_id} up to block {indexer.cursor()}"
            )
        else:
            indexer.run(stop, lock)
    finally:
        lock.release()


evidence_app = typer.Typer(help="Evidence documents at rest.", no_args_is_help=True)
app.add_typer(evidence_app, name="evidence")


@evidence_app.command("rotate-keys")
def evidence_rotate_keys(
    database_url: str = typer.Option(None, help="SQLAlchemy URL (default: this mode's database)."),
) -> None:
    """Re-seal every restricted document under the first key of LEDGER_EVIDENCE_KEYS.
    To rotate: put the new key first (keep the old one after it), restart the service, run
    this, then drop the old key. Safe to run again; prints how many it re-sealed."""
    from ledger_api.core import db, documents
    from ledger_api.runtime import state_settings

    settings = state_settings(get_settings())
    url = database_url or settings.database_url
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        resealed, current = documents.rotate(settings, engine)
    except documents.KeyRingError as exc:
        typer.echo(f"ledger evidence rotate-keys: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    typer.echo(f"re-sealed {resealed} restricted documents; {current} were under the current key already")


@app.command()
def retention(
    database_url: str = typer.Option(None, help="SQLAlchemy URL (default: this mode's database)."),
) -> None:
    """Delete what the data map (PRIVACY.md) keeps only for a while: idempotent answers,
    console sessions, statement imports past their time. The service does this every hour;
    this runs it once (for a cron job, or after changing the clock). Prints what it deleted."""
    from ledger_api.core import db
    from ledger_api.retention import JOBS, run
    from ledger_api.runtime import state_settings

    url = database_url or state_settings(get_settings()).database_url
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        deleted = run(engine)
    finally:
        engine.dispose()
    for job in JOBS:
        typer.echo(f"{deleted[job.name]:>8}  {job.name}: {job.keeps}")


access_app = typer.Typer(help="The access log (使用痕迹) of authenticated reads.", no_args_is_help=True)
app.add_typer(access_app, name="access-log")


@access_app.command("seal")
def access_log_seal(
    day: str = typer.Option(None, help="The UTC day to seal, YYYY-MM-DD (default: every finished day)."),
) -> None:
    """Seal finished UTC days of the access log on chain: each day's Merkle root, row count
    and last row hash, sent as `sealAccessLog` by the platform's account (LOG_SEALER_ROLE).
    Idempotent; never seals today. The running service does this every 10 minutes; this
    runs it once, against the node and database of the LEDGER_* settings."""
    from datetime import date as calendar_date

    from ledger_api.audit import seals
    from ledger_api.core import access_log
    from ledger_api.core.config import InsecureSettings
    from ledger_api.runtime import SetupError, build_runtime

    settings = get_settings()
    if settings.embedded_chain:
        typer.echo(
            "ledger access-log seal: needs LEDGER_RPC_URL (the embedded chain lives in `ledger dev`)",
            err=True,
        )
        raise typer.Exit(2)
    try:
        chosen = (calendar_date.fromisoformat(day) - access_log.EPOCH).days if day else None
    except ValueError:
        typer.echo(f"ledger access-log seal: --day takes YYYY-MM-DD, not {day!r}", err=True)
        raise typer.Exit(2) from None
    try:
        runtime = build_runtime(settings, dev=False)
    except (InsecureSettings, SetupError) as exc:
        typer.echo(f"ledger access-log seal: {exc}", err=True)
        raise typer.Exit(2) from None
    writes = runtime.writes
    if writes is None:
        typer.echo("ledger access-log seal: this service has no writer (keystore, account)", err=True)
        raise typer.Exit(2)
    # The outbox sends and tracks the transaction; the indexer mirrors it (on standby if
    # the service's indexer holds the writer lock).
    workers = [worker for worker in (runtime.indexer, runtime.outbox) if worker is not None]
    for worker in workers:
        worker.start()
    try:
        if chosen is None:
            done = seals.seal_finished_days(writes, runtime.engine)
        else:
            done = [seals.seal_day(writes, runtime.engine, chosen)]
    except ValueError as exc:
        typer.echo(f"ledger access-log seal: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        for worker in reversed(workers):
            worker.stop()
        runtime.engine.dispose()
    for sealed in done:
        typer.echo(sealed.describe())
    if any(sealed.outcome == "mismatch" for sealed in done):
        raise typer.Exit(1)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def verify(ctx: typer.Context) -> None:
    """Check the service's claims about a donation, disbursement or campaign against a node:
    `ledger verify DN-... --rpc-url URL [--contract ADDRESS] [--api URL | --bundle FILE]
    [--secret S --reference R]` (`--help` for all). The same as the standalone
    `ledger-verify` (the verifier/ distribution): nothing of this service is trusted."""
    from ledger_verify.cli import main as verify_main

    raise typer.Exit(verify_main(ctx.args, prog="ledger verify"))


def _read_commands() -> None:
    from ledger_api import client_cli

    client_cli.install(app, keys_app)


_read_commands()


def main() -> None:
    try:
        app()
    except ValidationError as exc:  # a LEDGER_* setting that is not valid: say which, no traceback
        for error in exc.errors():
            name = "LEDGER_" + "_".join(str(part) for part in error.get("loc", ())).upper()
            typer.echo(f"ledger: {name}: {error.get('msg', 'invalid')}", err=True)
        raise SystemExit(2) from None


webhooks_app = typer.Typer(help="Signed webhooks of final records.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("run")
def webhooks_run(
    once: bool = typer.Option(
        False, "--once", help="One round (queue, retract, send what is due), then exit."
    ),
) -> None:
    """Dispatch webhooks outside the API process (run the API with LEDGER_RUN_WEBHOOKS=false,
    or alongside it: each delivery is claimed by one dispatcher). It reads the mirror the
    service's indexer keeps; against the node and database of the LEDGER_* settings."""
    import time

    from ledger_api.core.config import InsecureSettings
    from ledger_api.runtime import SetupError, build_runtime
    from ledger_api.webhooks.dispatcher import Dispatcher

    settings = get_settings()
    if settings.embedded_chain:
        typer.echo("ledger webhooks run: needs LEDGER_RPC_URL (`ledger dev` dispatches itself)", err=True)
        raise typer.Exit(2)
    try:
        runtime = build_runtime(settings.model_copy(update={"run_indexer": False}), dev=False)
    except (InsecureSettings, SetupError) as exc:
        typer.echo(f"ledger webhooks run: {exc}", err=True)
        raise typer.Exit(2) from None
    dispatcher = Dispatcher(runtime.mirror)
    try:
        while True:
            done = dispatcher.run_once()
            if once:
                typer.echo(" ".join(f"{name}={count}" for name, count in done.items()))
                return
            time.sleep(settings.webhook_poll_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        runtime.engine.dispose()


if __name__ == "__main__":
    main()
