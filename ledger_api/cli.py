"""The `ledger` command line."""

from __future__ import annotations

from pathlib import Path

import typer
import uvicorn
from sqlalchemy import delete, insert

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
    if settings.embedded_chain and "database_url" not in settings.model_fields_set:
        path = ROOT / "var" / "embedded.db"
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
        return settings.model_copy(update={"database_url": f"sqlite:///{path}"})
    return settings


@app.command()
def dev(
    host: str = typer.Option(None, help="Address to listen on (default LEDGER_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port to listen on (default LEDGER_PORT or 8000)."),
) -> None:
    """Run everything on embedded defaults in one process: chain, database and API."""
    from ledger_api.app import Runtime, create_app
    from ledger_api.chain.contract import deploy_ledger, load_artifact, make_web3
    from ledger_api.core import db
    from ledger_api.core.models import Deployment as DeploymentRow

    settings = _embedded_database(get_settings())
    w3 = make_web3(settings.rpc_url)
    deployer = w3.eth.accounts[0]
    deployment = deploy_ledger(w3, deployer)
    db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    with engine.begin() as connection:
        connection.execute(
            delete(DeploymentRow).where(
                DeploymentRow.chain_id == deployment.chain_id, DeploymentRow.address == deployment.address
            )
        )
        connection.execute(
            insert(DeploymentRow).values(
                chain_id=deployment.chain_id,
                address=deployment.address,
                deployment_block=deployment.block_number,
                deployment_tx=deployment.tx_hash,
                source_hash=load_artifact()["sourceHash"],
            )
        )
    chain = "embedded eth-tester chain" if settings.embedded_chain else settings.rpc_url
    typer.echo(f"ledger deployed at {deployment.address} on {chain} (chain id {deployment.chain_id})")
    typer.echo(f"database: {engine.url.render_as_string(hide_password=True)}")
    runtime = Runtime(settings=settings, w3=w3, deployment=deployment, engine=engine)
    uvicorn.run(create_app(runtime), host=host or settings.host, port=port or settings.port)


@app.command()
def index(
    rpc_url: str = typer.Option(None, help="JSON-RPC URL of the node (default LEDGER_RPC_URL)."),
    database_url: str = typer.Option(None, help="SQLAlchemy URL (default LEDGER_DATABASE_URL)."),
    address: str = typer.Option(..., help="Address of the ledger contract to mirror."),
    confirmations: int = typer.Option(12, min=0, help="Blocks behind the head before a record is final."),
    once: bool = typer.Option(False, help="Index up to the current head, then exit."),
) -> None:
    """Mirror a ledger deployment's events into SQL, as a process of its own."""
    import logging

    from sqlalchemy import select
    from web3 import Web3

    from indexer.indexer import Indexer, IndexerConfig
    from ledger_api.chain.contract import ledger_contract, load_artifact, make_web3
    from ledger_api.core import db
    from ledger_api.core.models import Deployment as DeploymentRow

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    node_url = rpc_url or settings.rpc_url
    if not node_url:
        raise typer.BadParameter("an RPC URL is needed (--rpc-url or LEDGER_RPC_URL)", param_hint="--rpc-url")
    database_url = database_url or settings.database_url
    if not Web3.is_address(address):
        raise typer.BadParameter(f"not an address: {address!r}", param_hint="--address")
    w3 = make_web3(node_url)
    if not w3.eth.get_code(Web3.to_checksum_address(address)):
        raise typer.BadParameter(f"no contract at {address} on {node_url}", param_hint="--address")
    contract = ledger_contract(w3, address)
    chain_id = w3.eth.chain_id
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    with engine.begin() as connection:
        deployment_id = connection.execute(
            select(DeploymentRow.id).where(
                DeploymentRow.chain_id == chain_id, DeploymentRow.address == contract.address
            )
        ).scalar_one_or_none()
        if deployment_id is None:
            # The contract knows where it was deployed: the mirror starts there.
            deployment_id = connection.execute(
                insert(DeploymentRow)
                .values(
                    chain_id=chain_id,
                    address=contract.address,
                    deployment_block=contract.functions.deploymentBlock().call(),
                    source_hash=load_artifact()["sourceHash"],
                )
                .returning(DeploymentRow.id)
            ).scalar_one()
    indexer = Indexer(w3, engine, deployment_id, IndexerConfig(confirmations=confirmations))
    if once:
        indexer.sync()
        typer.echo(f"indexed {contract.address} on chain {chain_id} up to block {indexer.cursor()}")
    else:
        indexer.run()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
