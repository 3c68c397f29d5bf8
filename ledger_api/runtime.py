"""Building what the service runs on, for `ledger dev`, `ledger serve` and the tests:
the chain connection, the database, the keystore with the service account, the ledger
deployment, the writer and the background indexer."""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, Any

from pydantic import SecretStr
from sqlalchemy import Engine, delete, insert, make_url, select
from web3 import Web3
from web3.types import Wei

from indexer.indexer import IndexerConfig
from indexer.service import BackgroundIndexer, ensure_deployment
from ledger_api.audit.context import Auditing
from ledger_api.chain.abi import load_artifact
from ledger_api.chain.contract import Deployment, deploy_ledger, make_web3
from ledger_api.chain.faults import fault_injection
from ledger_api.chain.keystore import SERVICE_ACCOUNT, Keystore
from ledger_api.chain.rpc_server import ReadOnlyRpc
from ledger_api.chain.writer import ChainWriter, OutboxWorker
from ledger_api.core import db
from ledger_api.core.config import Settings
from ledger_api.core.models import Deployment as DeploymentRow
from ledger_api.core.paths import ROOT
from ledger_api.mirror.gateway import Mirror, reading
from ledger_api.mirror.replicas import Replicas
from ledger_api.transactions.coalesce import GroupCommit
from ledger_api.transactions.service import Writes


@dataclass
class Runtime:
    """What the running service works with: its settings, chain, database and, when it
    runs one, the background indexer; and the gateways the routes get from it (reads get
    `mirror`, audits `auditing`, writes `writes`)."""

    settings: Settings
    w3: Web3
    deployment: Deployment
    engine: Engine
    deployment_id: int | None = None
    indexer: BackgroundIndexer | None = None
    # The write side (absent when the service only reads).
    keystore: Keystore | None = None
    writer: ChainWriter | None = None
    service_account: str | None = None
    outbox: OutboxWorker | None = None
    # Development chains fund new operator accounts from this node-held account.
    faucet: str | None = None

    @cached_property
    def mirror(self) -> Mirror:
        return Mirror(
            self.settings,
            self.engine,
            self.deployment,
            self.deployment_id,
            replicas=self.replicas,
            reader=reading(self.engine),
        )

    @cached_property
    def replicas(self) -> Replicas | None:
        """The read replicas public reads may use (LEDGER_READ_DATABASE_URLS); None without
        any, or before the deployment has its row (nothing to measure the lag with).
        The app starts and stops their lag measurement with itself."""
        if not self.settings.read_database_urls or self.deployment_id is None:
            return None
        return Replicas(
            self.engine,
            self.settings.read_database_urls,
            self.deployment_id,
            self.settings.replica_max_lag_blocks,
            self.settings.replica_poll_seconds,
        )

    @cached_property
    def auditing(self) -> Auditing:
        return Auditing(self.settings, self.engine, self.deployment, self.deployment_id, self.w3)

    @cached_property
    def public_chain(self) -> ReadOnlyRpc | None:
        """The embedded chain over read-only JSON-RPC (POST /rpc); None against a node."""
        return ReadOnlyRpc(self.w3) if self.settings.embedded_chain else None

    @cached_property
    def writes(self) -> Writes | None:
        """The write gateway, None when this service serves reads only."""
        if (
            self.writer is None
            or self.keystore is None
            or self.service_account is None
            or self.deployment_id is None
        ):
            return None
        return Writes(
            settings=self.settings,
            w3=self.w3,
            deployment=self.deployment,
            engine=self.engine,
            deployment_id=self.deployment_id,
            writer=self.writer,
            keystore=self.keystore,
            service_account=self.service_account,
            faucet=self.faucet,
            wait_indexer=self.indexer.wait_for if self.indexer is not None else None,
            group_commit=self.group_commit,
            relay_commit=self.relay_commit,
        )

    @cached_property
    def relay_commit(self) -> GroupCommit | None:
        """The relayer's group commit of single signed calls, one executeBatch per charity
        (each call was simulated on its own when it was checked: no check here)."""
        if self.writer is None or self.settings.coalesce_max <= 1:
            return None
        block_gas = int(self.w3.eth.get_block("latest")["gasLimit"])
        return GroupCommit(
            self.writer.simulate,
            self.writer.submit,
            self.settings.coalesce_window,
            self.settings.coalesce_max,
            block_gas // 2,
        )

    @cached_property
    def group_commit(self) -> GroupCommit | None:
        """The group commit of single writes (transactions/coalesce.py), None when
        LEDGER_COALESCE_MAX is 1. A group's gas stays under half a block."""
        if self.writer is None or self.settings.coalesce_max <= 1:
            return None
        block_gas = int(self.w3.eth.get_block("latest")["gasLimit"])
        return GroupCommit(
            self.writer.simulate,
            self.writer.submit,
            self.settings.coalesce_window,
            self.settings.coalesce_max,
            block_gas // 2,
            check_each=self.writer.check_each,
        )


class SetupError(RuntimeError):
    """The configuration cannot work (no contract where one is named, and so on)."""


EMBEDDED_DATABASE = ROOT / "var" / "embedded.db"
EMBEDDED_KEYSTORE = ROOT / "var" / "embedded-keystore"


def state_settings(settings: Settings) -> Settings:
    """Where this mode keeps its state, the one place `ledger dev` and `ledger keys
    create` both use: on the embedded chain var/embedded.db and var/embedded-keystore
    (each unless chosen with LEDGER_DATABASE_URL, LEDGER_KEYSTORE_PATH); against a node
    (LEDGER_RPC_URL) the settings' own, by default var/ledger.db and var/keystore."""
    if not settings.embedded_chain:
        return settings
    update: dict[str, Any] = {}
    if "database_url" not in settings.model_fields_set:
        update["database_url"] = f"sqlite:///{EMBEDDED_DATABASE}"
    if "keystore_path" not in settings.model_fields_set:
        update["keystore_path"] = EMBEDDED_KEYSTORE
    return settings.model_copy(update=update) if update else settings


def wiped_at_start(settings: Settings) -> list[Path]:
    """What `ledger dev` deletes when it starts: the embedded chain lives only as long as
    the process, so its records and accounts would be stale at the next start; the
    database and keystore it chose itself start fresh (chosen ones are kept)."""
    if not settings.embedded_chain:
        return []
    wiped = []
    if "database_url" not in settings.model_fields_set:
        wiped += [EMBEDDED_DATABASE, Path(f"{EMBEDDED_DATABASE}-wal"), Path(f"{EMBEDDED_DATABASE}-shm")]
    if "keystore_path" not in settings.model_fields_set:
        wiped.append(EMBEDDED_KEYSTORE)
    return wiped


def embedded_settings(settings: Settings) -> Settings:
    """The settings `ledger dev` runs with (`state_settings`), after deleting what it
    starts fresh (`wiped_at_start`). Hold `claim_dev_state` first."""
    for stale in wiped_at_start(settings):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    return state_settings(settings)


class StateInUse(SetupError):
    """Another `ledger dev` runs on this state."""


@dataclass
class DevStateLock:
    """Exclusive `flock`s on the state of one `ledger dev` on the embedded chain, held as
    long as the process lives (the kernel releases them when it dies, however it dies).
    Each lock file holds the holder's pid and address, for the message of the next one."""

    paths: list[Path]
    handles: list[IO[str]] = field(default_factory=list)

    def release(self) -> None:
        for handle in self.handles:
            handle.close()
        self.handles.clear()


def dev_state_locks(settings: Settings) -> list[Path]:
    """The lock files guarding what `ledger dev` on the embedded chain uses: its database
    (two embedded chains would mirror into one database under the same chain id and
    contract address) and, when it wipes it, its keystore. Empty against a node, where
    several processes may share a database (one indexer writes, the others stand by)."""
    if not settings.embedded_chain:
        return []
    located = state_settings(settings)
    url = make_url(located.database_url)
    paths: list[Path] = []
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            paths.append(Path(f"{Path(url.database).resolve()}.dev.lock"))
    else:
        rendered = url.render_as_string(hide_password=True)
        digest = hashlib.sha256(rendered.encode()).hexdigest()[:16]
        paths.append(ROOT / "var" / f"dev-{digest}.lock")
    if "keystore_path" not in settings.model_fields_set:
        paths.append(Path(f"{EMBEDDED_KEYSTORE}.dev.lock"))
    return paths


def lock_holder(path: Path) -> str:
    """Who holds a dev state lock, from what the holder wrote in it ("pid 123 at http://...")."""
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "another process"


def claim_dev_state(settings: Settings, note: str) -> DevStateLock:
    """Take the locks of `dev_state_locks` without waiting, before anything is touched;
    raise StateInUse naming the holder when another process has one."""
    lock = DevStateLock(dev_state_locks(settings))
    for path in lock.paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")  # not truncated before it is ours: it names the holder
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            lock.release()
            raise StateInUse(_in_use_message(settings, path)) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} {note}\n")
        handle.flush()
        lock.handles.append(handle)
    return lock


def dev_state_holder(settings: Settings) -> str | None:
    """Who runs `ledger dev` on this state now (as in `lock_holder`), or None if nobody."""
    for path in dev_state_locks(settings):
        if not path.exists():
            continue
        with path.open("r") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return lock_holder(path)
    return None


def _in_use_message(settings: Settings, path: Path) -> str:
    located = state_settings(settings)
    database = make_url(located.database_url).render_as_string(hide_password=True)
    holder = lock_holder(path)
    pid = holder.split()[1] if holder.startswith("pid ") else None
    stop = f"Stop it first (Ctrl+C where it runs, or `kill {pid}`)" if pid else "Stop it first"
    wiped = wiped_at_start(settings)
    risk = (
        " Starting would delete its database and keys." if wiped else " Two embedded chains cannot share one."
    )
    return (
        f"another `ledger dev` ({holder}) is running on this state: database {database}, "
        f"keystore {located.keystore_path} (lock {path}).{risk}\n"
        f"{stop}, or give this one a state of its own, e.g.\n"
        "  LEDGER_DATABASE_URL=sqlite:///var/dev2.db LEDGER_KEYSTORE_PATH=var/dev2-keystore "
        "ledger dev --port 8001"
    )


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
    writer = ChainWriter(w3, engine, keystore, deployment.address, fault_injection(settings, dev))
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
