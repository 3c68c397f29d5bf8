"""The `ledger` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import uvicorn
from sqlalchemy import delete, insert, select

from ledger_api.core.config import ROOT, Settings, get_settings

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


def _embedded_database(settings: Settings) -> Settings:
    """The embedded chain lives only as long as the process, so its records would be
    stale at the next start: unless a database was chosen explicitly, it gets a fresh
    SQLite file each time."""
    if not settings.embedded_chain:
        return settings
    if "database_url" not in settings.model_fields_set:
        path = ROOT / "var" / "embedded.db"
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
        settings = settings.model_copy(update={"database_url": f"sqlite:///{path}"})
    if "keystore_path" not in settings.model_fields_set:
        # The embedded chain's accounts die with it; so do their keys.
        import shutil

        keystore = ROOT / "var" / "embedded-keystore"
        shutil.rmtree(keystore, ignore_errors=True)
        settings = settings.model_copy(update={"keystore_path": keystore})
    return settings


def _dev_deployment(settings: Settings, w3: Any, engine: Any, admin: str) -> tuple[Any, int, bool]:
    """The deployment `ledger dev` serves: LEDGER_CONTRACT_ADDRESS if set; on a real node,
    the one this database already mirrors (so a restart resumes where it stopped);
    otherwise a new one. Returns (deployment, its row id, whether it was just deployed)."""
    from web3 import Web3

    from indexer.service import ensure_deployment
    from ledger_api.chain.contract import Deployment, deploy_ledger, load_artifact
    from ledger_api.core.models import Deployment as DeploymentRow

    chain_id = w3.eth.chain_id
    address = settings.contract_address
    if address is None and not settings.embedded_chain:
        with engine.connect() as connection:
            known = connection.execute(
                select(DeploymentRow.address)
                .where(DeploymentRow.chain_id == chain_id)
                .order_by(DeploymentRow.id.desc())
            ).scalars()
            address = next((a for a in known if w3.eth.get_code(Web3.to_checksum_address(a))), None)
    if address is not None:
        if not Web3.is_address(address) or not w3.eth.get_code(Web3.to_checksum_address(address)):
            raise typer.BadParameter(f"no ledger contract at {address!r} on this chain")
        deployment_id = ensure_deployment(engine, w3, address)
        with engine.connect() as connection:
            row = connection.execute(select(DeploymentRow).where(DeploymentRow.id == deployment_id)).one()
        return (
            Deployment(chain_id, row.address, row.deployment_block, row.deployment_tx or ""),
            deployment_id,
            False,
        )
    deployment = deploy_ledger(w3, w3.eth.accounts[0], admin=admin)
    with engine.begin() as connection:
        connection.execute(
            delete(DeploymentRow).where(
                DeploymentRow.chain_id == deployment.chain_id, DeploymentRow.address == deployment.address
            )
        )
        deployment_id = connection.execute(
            insert(DeploymentRow)
            .values(
                chain_id=deployment.chain_id,
                address=deployment.address,
                deployment_block=deployment.block_number,
                deployment_tx=deployment.tx_hash,
                source_hash=load_artifact()["sourceHash"],
            )
            .returning(DeploymentRow.id)
        ).scalar_one()
    return deployment, deployment_id, True


@app.command()
def dev(
    host: str = typer.Option(None, help="Address to listen on (default LEDGER_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port to listen on (default LEDGER_PORT or 8000)."),
    demo: bool = typer.Option(False, help="Load demo charities, campaigns, donations and disbursements."),
) -> None:
    """Run everything on embedded defaults in one process: chain, database, indexer and API."""
    from ledger_api.app import create_app
    from ledger_api.core import logs

    logs.configure(json_lines=False)
    runtime = dev_runtime(get_settings())
    settings = runtime.settings
    chain = "embedded eth-tester chain" if settings.embedded_chain else settings.rpc_url
    typer.echo(f"ledger at {runtime.deployment.address} on {chain} (chain id {runtime.deployment.chain_id})")
    typer.echo(f"database: {runtime.engine.url.render_as_string(hide_password=True)}")
    if "admin_key" not in get_settings().model_fields_set:
        assert settings.admin_key is not None
        key = settings.admin_key.get_secret_value()
        typer.echo(f"admin API key (made for this run; set LEDGER_ADMIN_KEY to choose one): {key}")
    app_ = create_app(runtime)
    if demo:
        from ledger_api.demo import load_demo

        load_demo(runtime, echo=typer.echo)
    uvicorn.run(app_, host=host or settings.host, port=port or settings.port)


def dev_runtime(settings: Settings) -> Any:
    """Everything `ledger dev` runs on: the chain (embedded unless LEDGER_RPC_URL), the
    database, a keystore with the service account, the ledger deployment, the writer and
    the background indexer."""
    import secrets as secrets_

    from pydantic import SecretStr
    from web3 import Web3
    from web3.types import Wei

    from indexer.indexer import IndexerConfig
    from indexer.service import BackgroundIndexer
    from ledger_api.app import Runtime
    from ledger_api.chain.contract import make_web3
    from ledger_api.chain.keystore import SERVICE_ACCOUNT, Keystore
    from ledger_api.chain.writer import ChainWriter, OutboxWorker
    from ledger_api.core import db

    settings = _embedded_database(settings)
    if settings.admin_key is None:
        settings = settings.model_copy(
            update={"admin_key": SecretStr("lk_admin_" + secrets_.token_urlsafe(32))}
        )
    w3 = make_web3(settings.rpc_url)
    faucet = w3.eth.accounts[0] if w3.eth.accounts else None
    keystore = Keystore(
        settings.keystore_path, settings.keystore_passphrase, fast_kdf=settings.env == "development"
    )
    service_account = keystore.find(SERVICE_ACCOUNT) or keystore.create(SERVICE_ACCOUNT)
    if faucet is not None and w3.eth.get_balance(Web3.to_checksum_address(service_account)) < 10**19:
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_transaction({"from": faucet, "to": service_account, "value": Wei(10**21)})
        )
    db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    deployment, deployment_id, _fresh = _dev_deployment(settings, w3, engine, service_account)
    background = None
    if settings.run_indexer:
        config = IndexerConfig(
            confirmations=settings.effective_confirmations,
            poll_interval=0.2 if settings.embedded_chain else 0.5,
        )
        background = BackgroundIndexer(w3, engine, deployment_id, config)
    writer = ChainWriter(w3, engine, keystore)
    return Runtime(
        settings=settings,
        w3=w3,
        deployment=deployment,
        engine=engine,
        deployment_id=deployment_id,
        indexer=background,
        keystore=keystore,
        writer=writer,
        service_account=service_account,
        outbox=OutboxWorker(writer),
        faucet=faucet,
    )


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
    w3 = make_web3(node_url)
    if not w3.eth.get_code(Web3.to_checksum_address(address)):
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
