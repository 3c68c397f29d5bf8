"""Building what the service runs on, for `ledger dev`, `ledger serve` and the tests:
the chain connection, the database, the keystore with the service account, the ledger
deployment, the writer and the background indexer."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import Engine, delete, insert, select
from web3 import Web3
from web3.types import Wei

from indexer.indexer import IndexerConfig
from indexer.service import BackgroundIndexer, ensure_deployment
from ledger_api.app import Runtime
from ledger_api.chain.contract import Deployment, deploy_ledger, load_artifact, make_web3
from ledger_api.chain.keystore import SERVICE_ACCOUNT, Keystore
from ledger_api.chain.writer import ChainWriter, OutboxWorker
from ledger_api.core import db
from ledger_api.core.config import ROOT, Settings
from ledger_api.core.models import Deployment as DeploymentRow


class SetupError(RuntimeError):
    """The configuration cannot work (no contract where one is named, and so on)."""


def embedded_settings(settings: Settings) -> Settings:
    """The embedded chain lives only as long as the process, so its records and accounts
    would be stale at the next start: unless chosen explicitly, the database and the
    keystore start fresh each time."""
    if not settings.embedded_chain:
        return settings
    if "database_url" not in settings.model_fields_set:
        path = ROOT / "var" / "embedded.db"
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
        settings = settings.model_copy(update={"database_url": f"sqlite:///{path}"})
    if "keystore_path" not in settings.model_fields_set:
        keystore = ROOT / "var" / "embedded-keystore"
        shutil.rmtree(keystore, ignore_errors=True)
        settings = settings.model_copy(update={"keystore_path": keystore})
    return settings


def existing_deployment(settings: Settings, w3: Web3, engine: Engine) -> tuple[Deployment, int] | None:
    """LEDGER_CONTRACT_ADDRESS if set; else, on a real node, the latest deployment this
    database mirrors that still has code (so a restart resumes where it stopped)."""
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
    if address is None:
        return None
    if not Web3.is_address(address) or not w3.eth.get_code(Web3.to_checksum_address(address)):
        raise SetupError(f"no ledger contract at {address!r} on chain {chain_id}")
    deployment_id = ensure_deployment(engine, w3, address)
    with engine.connect() as connection:
        row = connection.execute(select(DeploymentRow).where(DeploymentRow.id == deployment_id)).one()
    return Deployment(chain_id, row.address, row.deployment_block, row.deployment_tx or ""), deployment_id


def record_deployment(engine: Engine, deployment: Deployment) -> int:
    with engine.begin() as connection:
        connection.execute(
            delete(DeploymentRow).where(
                DeploymentRow.chain_id == deployment.chain_id, DeploymentRow.address == deployment.address
            )
        )
        return int(
            connection.execute(
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
        )


def deploy_signed(w3: Web3, keystore: Keystore, signer: str) -> Deployment:
    """Deploy the ledger in a transaction signed by `signer` from the keystore, which
    becomes its admin, registrar and pauser."""
    artifact = load_artifact()
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    account = Web3.to_checksum_address(signer)
    transaction = factory.constructor(account).build_transaction(
        {
            "from": account,
            "nonce": w3.eth.get_transaction_count(account, "pending"),
            "chainId": w3.eth.chain_id,
        }
    )
    raw, _ = keystore.sign_transaction(account, dict(transaction))
    tx_hash = w3.eth.send_raw_transaction(raw)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise SetupError(f"the deployment transaction {tx_hash.to_0x_hex()} failed")
    return Deployment(
        w3.eth.chain_id, receipt["contractAddress"], receipt["blockNumber"], tx_hash.to_0x_hex()
    )


def open_keystore(settings: Settings) -> tuple[Keystore, str]:
    keystore = Keystore(
        settings.keystore_path, settings.keystore_passphrase, fast_kdf=settings.env == "development"
    )
    return keystore, keystore.find(SERVICE_ACCOUNT) or keystore.create(SERVICE_ACCOUNT)


def build_runtime(settings: Settings, dev: bool) -> Runtime:
    """`dev`: the embedded chain unless LEDGER_RPC_URL, a made-up admin key unless
    LEDGER_ADMIN_KEY, a deployment made if there is none, accounts funded from the node's
    own account. Otherwise (`ledger serve`): secrets must be real outside development,
    and the deployment must exist (`ledger deploy`)."""
    if dev:
        settings = embedded_settings(settings)
        if settings.admin_key is None:
            settings = settings.model_copy(
                update={"admin_key": SecretStr("lk_admin_" + secrets.token_urlsafe(32))}
            )
    else:
        settings.check_secrets()
    w3 = make_web3(settings.rpc_url, settings.rpc_timeout)
    faucet = w3.eth.accounts[0] if dev and w3.eth.accounts else None
    keystore, service_account = open_keystore(settings)
    if faucet is not None and w3.eth.get_balance(Web3.to_checksum_address(service_account)) < 10**19:
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_transaction({"from": faucet, "to": service_account, "value": Wei(10**20)})
        )
    db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    found = existing_deployment(settings, w3, engine)
    if found is None:
        if not dev:
            raise SetupError("no ledger deployment: run `ledger deploy` or set LEDGER_CONTRACT_ADDRESS")
        deployment = deploy_ledger(w3, w3.eth.accounts[0], admin=service_account)
        found = deployment, record_deployment(engine, deployment)
    deployment, deployment_id = found
    background = None
    if settings.run_indexer:
        config = IndexerConfig(
            confirmations=settings.effective_confirmations,
            poll_interval=0.2 if settings.embedded_chain else 0.5,
        )
        background = BackgroundIndexer(w3, engine, deployment_id, config)
    writer = ChainWriter(w3, engine, keystore, deployment.address)
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


def dev_runtime(settings: Settings) -> Runtime:
    return build_runtime(settings, dev=True)


__all__ = ["Any", "build_runtime", "deploy_signed", "dev_runtime", "embedded_settings"]


def app_from_environment() -> FastAPI:
    """The app of one `ledger serve --workers N` process, built from the environment."""
    from ledger_api.app import create_app
    from ledger_api.core import logs
    from ledger_api.core.config import get_settings

    settings = get_settings()
    logs.configure(json_lines=settings.env == "production")
    return create_app(build_runtime(settings, dev=False))
