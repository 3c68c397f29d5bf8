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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
