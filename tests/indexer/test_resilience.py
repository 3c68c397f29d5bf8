"""The mirror stays exact when things go wrong: the indexer process is killed mid-range,
the chain reorganises (anvil_reorg, anvil_rollback, snapshot/revert; shallow, deeper
than the confirmation window, while the indexer is down), the node refuses large
eth_getLogs ranges, and the node disappears for a while. In every case the mirror must
end equal to a fresh index of the canonical chain. On anvil, into SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from web3 import Web3

from indexer import models as m
from indexer.indexer import Indexer, IndexerConfig
from ledger_api.chain.contract import deploy_ledger, ledger_contract, make_web3
from tests.indexer.rpcproxy import RpcProxy
from tests.indexer.test_mirror import _engine, _indexer, activity, dump
from tests.ledger import Ledger, rid

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ helpers


@pytest.fixture
def chain(anvil: Any) -> Ledger:
    w3 = make_web3(anvil.url)
    deployment = deploy_ledger(w3, w3.eth.accounts[0])
    return Ledger.setup(w3, ledger_contract(w3, deployment.address), deployment)


def rpc(w3: Web3, method: str, params: list[Any]) -> Any:
    answer = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    assert "error" not in answer, f"{method}{params}: {answer['error']}"
    return answer["result"]


def sync(indexer: Indexer, max_steps: int = 500) -> None:
    """Indexer.sync, but failing instead of looping for ever."""
    for _ in range(max_steps):
        if indexer.step():
            return
    raise AssertionError(f"not caught up after {max_steps} steps")


def fresh_dump(led: Ledger, tmp_path: Path, name: str = "fresh") -> dict[str, list[tuple[Any, ...]]]:
    """The mirror a new indexer makes of the canonical chain, in a new SQLite file."""
    indexer, engine = _indexer(led, f"sqlite:///{tmp_path / f'{name}.db'}")
    sync(indexer)
    rows = dump(engine)
    engine.dispose()
    return rows


def chain_logs(led: Ledger, to_block: int | str = "latest") -> list[tuple[int, str, str, int]]:
    """(block, block hash, tx hash, log index) of every log the contract emitted."""
    logs = led.w3.eth.get_logs(
        {"address": led.deployment.address, "fromBlock": led.deployment.block_number, "toBlock": to_block}
    )
    return sorted(
        (lg["blockNumber"], lg["blockHash"].to_0x_hex(), lg["transactionHash"].to_0x_hex(), lg["logIndex"])
        for lg in logs
    )


def mirrored_logs(engine: Engine) -> list[tuple[int, str, str, int]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(m.Event.block_number, m.Event.block_hash, m.Event.tx_hash, m.Event.log_index)
        ).all()
    return sorted((r[0], r[1], r[2], r[3]) for r in rows)


def donation_tx(led: Ledger, label: str, amount: int) -> dict[str, Any]:
    """A transaction request for anvil_reorg. The gas must be given: without it anvil
    mines the transaction with too little gas and it reverts (status 0, no logs)."""
    data = led.contract.encode_abi("recordDonation", args=[led.donation(rid(label), amount)])
    return {"from": led.op_a, "to": led.deployment.address, "gas": hex(1_000_000), "data": data}


def donations(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(m.Donation.donation_id)).scalars())


@pytest.fixture
def indexer_log(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[logging.LogRecord]]]:
    """The records of logger "indexer" (and its children) from INFO up, through caplog.

    caplog's handler sits on the root logger, but db.upgrade runs alembic's
    logging.config.fileConfig (migrations/env.py), which replaces the root logger's
    handlers; so the handler is attached to "indexer" itself as well (records reaching it
    twice are counted once)."""
    logger = logging.getLogger("indexer")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(caplog.handler)

    def records() -> list[logging.LogRecord]:
        unique = {id(r): r for r in caplog.handler.records if r.name.split(".")[0] == "indexer"}
        return list(unique.values())

    yield records
    logger.removeHandler(caplog.handler)
    logger.setLevel(level)


def _events_without_hashes(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(m.Event.block_number, m.Event.tx_index, m.Event.log_index, m.Event.name, m.Event.args)
        ).all()
    return sorted(tuple(r) for r in rows)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


# ------------------------------------------------- 1. exactly once across SIGKILL

CHILD = """
import sys
from indexer.indexer import Indexer, IndexerConfig
from ledger_api.chain.contract import deploy_ledger, ledger_contract, make_web3
from ledger_api.core import db
rpc_url, database_url, deployment_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = IndexerConfig(confirmations=2, initial_range=2, max_range=4)
Indexer(make_web3(rpc_url), db.make_engine(database_url), deployment_id, config).sync()
"""


def test_sigkill_mid_run_loses_and_duplicates_nothing(
    chain: Ledger, database_url: str, tmp_path: Path
) -> None:
    """An indexer process killed (SIGKILL) at several points, then restarted to the end,
    leaves exactly the mirror an uninterrupted index makes; at every kill the mirror
    holds exactly the logs up to its cursor (ranges commit whole or not at all)."""
    activity(chain, "pre")
    for b in range(70):  # 70 blocks, each a batch of 3 donations
        batch = [chain.donation(rid(f"k{b}-{i}"), 1 + i, donor=f"k{b}") for i in range(3)]
        chain.send(chain.fn.recordDonations(batch), chain.op_a)
    head = chain.w3.eth.block_number
    start = chain.deployment.block_number
    engine, deployment_id = _engine(database_url, chain.deployment.chain_id, chain.deployment.address, start)
    args = [sys.executable, "-c", CHILD, chain.w3.provider.endpoint_uri, database_url, str(deployment_id)]  # type: ignore[attr-defined]

    def cursor() -> int:
        with engine.connect() as connection:
            value = connection.execute(text("SELECT block_number FROM indexer_cursors")).scalar()
        return start - 1 if value is None else int(value)

    kills = []
    for fraction in (0.15, 0.35, 0.5, 0.65):
        threshold = start + int(fraction * (head - start))
        stderr = tmp_path / f"child-{fraction}.err"
        with stderr.open("wb") as err:
            child = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
            try:
                wait_for(
                    lambda c=child, t=threshold: cursor() >= t or c.poll() is not None,
                    60,
                    f"cursor {threshold}",
                )
            finally:
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL, f"ended before the kill: {stderr.read_text()[-2000:]}"
        at = cursor()
        kills.append(at)
        assert mirrored_logs(engine) == chain_logs(chain, at), f"partial range committed at kill {at}"
    # The child indexes on while the parent polls: on a loaded machine a kill can land a
    # few ranges past its threshold, so only the first is required to be well short of the head.
    assert start <= kills[0] < head, f"kills at {kills}, head {head}"
    assert kills == sorted(kills) and len(set(kills)) > 1

    finished = subprocess.run(args, cwd=ROOT, capture_output=True, timeout=120)
    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
    assert cursor() == head

    on_chain = chain_logs(chain)
    assert mirrored_logs(engine) == on_chain  # same logs: no gap, no duplicate
    rows = dump(engine)
    assert len(rows["events"]) == len(on_chain) > 210
    assert rows == fresh_dump(chain, tmp_path)
    engine.dispose()


# ------------------------------------------------------ 2. anvil_reorg / rollback


@pytest.mark.parametrize("mode", ["empty", "replayed", "different"])
@pytest.mark.parametrize("depth", [1, 5])
def test_anvil_reorg_leaves_the_mirror_equal_to_a_fresh_index(
    chain: Ledger, database_url: str, tmp_path: Path, depth: int, mode: str
) -> None:
    """anvil_reorg replaces the last `depth` blocks: with empty blocks, with the same
    transactions again (same events, new block hashes) or with different ones."""
    w3 = chain.w3
    activity(chain, "base")
    fork = [chain.donate(f"fork-{i}", 10 + i) for i in range(depth)]
    old_head = w3.eth.block_number
    old_hashes = {
        n: w3.eth.get_block(n)["hash"].to_0x_hex() for n in range(old_head - depth + 1, old_head + 1)
    }
    replayed = [
        {k: w3.eth.get_transaction(tx)[k] for k in ("from", "to", "input", "gas", "nonce")}
        for block in range(old_head - depth + 1, old_head + 1)
        for tx in w3.eth.get_block(block)["transactions"]
    ]
    indexer, engine = _indexer(chain, database_url)
    sync(indexer)
    assert {"0x" + d.hex() for d in fork} <= donations(engine)
    before = _events_without_hashes(engine)

    if mode == "empty":
        txs: list[Any] = []
    elif mode == "replayed":
        # The same transactions at the same offsets. Alone they can make the very same
        # blocks again (same parent, timestamp, fees: same hash, no reorg at all), so each
        # block also gets an unrelated transfer after the ledger's transaction.
        filler = {"from": w3.eth.accounts[5], "to": w3.eth.accounts[6], "value": hex(1), "gas": hex(21_000)}
        txs = []
        for i, t in enumerate(replayed):
            txs.append(
                [{"from": t["from"], "to": t["to"], "data": t["input"].to_0x_hex(), "gas": hex(t["gas"])}, i]
            )
            txs.append([filler, i])
    else:
        txs = [[donation_tx(chain, f"other-{i}", 20 + i), i] for i in range(depth)]
    rpc(w3, "anvil_reorg", [depth, txs])
    assert w3.eth.block_number == old_head
    new_hashes = {n: w3.eth.get_block(n)["hash"].to_0x_hex() for n in old_hashes}
    assert all(new_hashes[n] != old_hashes[n] for n in old_hashes)

    sync(indexer)
    assert indexer.reorgs == 1
    rows = dump(engine)
    assert rows == fresh_dump(chain, tmp_path)
    assert mirrored_logs(engine) == chain_logs(chain)
    mirrored_hashes = {r[1] for r in mirrored_logs(engine) if r[0] in old_hashes}
    assert mirrored_hashes <= set(new_hashes.values())
    fork_ids = {"0x" + d.hex() for d in fork}
    if mode == "replayed":  # the same events, now in blocks with other hashes
        assert _events_without_hashes(engine) == before
        assert fork_ids <= donations(engine) and len(mirrored_hashes) == depth
    else:
        assert not fork_ids & donations(engine)
    engine.dispose()


@pytest.mark.parametrize("new_blocks", [2, 6], ids=["shorter", "longer"])
def test_anvil_rollback_then_other_activity(
    chain: Ledger, database_url: str, tmp_path: Path, new_blocks: int
) -> None:
    """anvil_rollback drops the last 4 blocks; different activity follows, ending below
    ("shorter") or above ("longer") the height the indexer had reached."""
    w3 = chain.w3
    activity(chain, "base")
    for i in range(4):
        chain.donate(f"dropped-{i}", 10 + i)
    indexer, engine = _indexer(chain, database_url)
    sync(indexer)
    old_head = w3.eth.block_number

    rpc(w3, "anvil_rollback", [4])
    assert w3.eth.block_number == old_head - 4
    for i in range(new_blocks):
        chain.donate(f"instead-{i}", 30 + i)
    assert w3.eth.block_number == old_head - 4 + new_blocks

    sync(indexer)
    assert indexer.reorgs == 1
    assert dump(engine) == fresh_dump(chain, tmp_path)
    ids = donations(engine)
    assert "0x" + rid("instead-0").hex() in ids and "0x" + rid("dropped-0").hex() not in ids
    engine.dispose()


# --------------------------------------------- 3. deeper than the confirmation window


def test_reorg_deeper_than_the_confirmation_window_is_an_error(
    chain: Ledger, database_url: str, tmp_path: Path, indexer_log: Callable[[], list[logging.LogRecord]]
) -> None:
    """confirmations=2: a 7-block reorg rewrites records the indexer called final. It must
    say so at ERROR, and still end with the mirror equal to a fresh index."""
    w3 = chain.w3
    activity(chain, "base")
    for i in range(7):
        chain.donate(f"deep-{i}", 10 + i)
    indexer, engine = _indexer(chain, database_url)  # confirmations=2
    assert indexer.config.confirmations == 2
    sync(indexer)

    rpc(w3, "anvil_reorg", [7, [[donation_tx(chain, f"other-{i}", 40 + i), i] for i in (0, 3, 6)]])
    sync(indexer)

    errors = [r for r in indexer_log() if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in indexer_log()]
    assert "REORG DEEPER THAN THE CONFIRMATION WINDOW" in errors[0].getMessage()
    assert indexer.reorgs == 1
    assert dump(engine) == fresh_dump(chain, tmp_path)
    assert not {"0x" + rid(f"deep-{i}").hex() for i in range(7)} & donations(engine)
    engine.dispose()


def test_reorg_within_the_confirmation_window_is_no_error(
    chain: Ledger, database_url: str, tmp_path: Path, indexer_log: Callable[[], list[logging.LogRecord]]
) -> None:
    """The counterpart: a 1-block reorg with confirmations=2 is routine (a WARNING), even
    when the blocks below the reorged one held no events (empty blocks)."""
    w3 = chain.w3
    activity(chain, "base")
    rpc(w3, "anvil_mine", [10])  # ten blocks without ledger events
    chain.donate("tip", 5)
    indexer, engine = _indexer(chain, database_url)
    sync(indexer)

    rpc(w3, "anvil_reorg", [1, [[donation_tx(chain, "other-tip", 6), 0]]])
    sync(indexer)

    assert indexer.reorgs == 1
    assert dump(engine) == fresh_dump(chain, tmp_path)
    levels = [(r.levelname, r.getMessage()) for r in indexer_log()]
    assert any(level == "WARNING" and "reorg" in msg for level, msg in levels), levels
    assert not [msg for level, msg in levels if level == "ERROR"], levels
    engine.dispose()


# ------------------------------------------------ 4. a reorg while the indexer is down


def test_reorg_while_the_indexer_is_down(chain: Ledger, database_url: str, tmp_path: Path) -> None:
    w3 = chain.w3
    activity(chain, "base")
    snapshot = rpc(w3, "evm_snapshot", [])
    activity(chain, "orphan", n=4)
    indexer, engine = _indexer(chain, database_url)
    sync(indexer)
    deployment_id = indexer.deployment_id
    assert "0x" + rid("orphan-d0").hex() in donations(engine)
    del indexer
    engine.dispose()

    rpc(w3, "evm_revert", [snapshot])
    activity(chain, "canonical", n=4)
    rpc(w3, "anvil_mine", [3])

    from ledger_api.core import db

    engine = db.make_engine(database_url)
    restarted = Indexer(w3, engine, deployment_id, IndexerConfig(confirmations=2))
    sync(restarted)
    assert restarted.reorgs == 1
    assert dump(engine) == fresh_dump(chain, tmp_path)
    assert "0x" + rid("orphan-d0").hex() not in donations(engine)
    engine.dispose()


# ----------------------------------------------- 5. a node that refuses large ranges


@pytest.mark.parametrize(
    "refusal",
    ["query exceeds max block range {limit}", "query returned more than 10000 results"],
    ids=["stated-limit", "no-limit-stated"],
)
def test_a_node_refusing_large_log_ranges(
    chain: Ledger, anvil: Any, database_url: str, tmp_path: Path, refusal: str
) -> None:
    limit = 5
    activity(chain, "a")
    for i in range(20):
        chain.donate(f"spread-{i}", 1 + i)
    activity(chain, "b")
    dep = chain.deployment
    with RpcProxy(anvil.url, max_logs_range=limit, refusal=refusal) as proxy:
        engine, deployment_id = _engine(database_url, dep.chain_id, dep.address, dep.block_number)
        indexer = Indexer(make_web3(proxy.url), engine, deployment_id, IndexerConfig(confirmations=2))
        sync(indexer)
    assert proxy.refused, "the proxy never refused a range: the test proves nothing"
    assert proxy.accepted and max(proxy.accepted) <= limit
    assert sum(proxy.accepted) >= chain.w3.eth.block_number - dep.block_number + 1
    assert mirrored_logs(engine) == chain_logs(chain)
    assert dump(engine) == fresh_dump(chain, tmp_path)
    engine.dispose()


# ----------------------------------------- 6. the node disappears and comes back


@pytest.fixture
def proxy(anvil: Any) -> Iterator[RpcProxy]:
    with RpcProxy(anvil.url) as running:
        yield running


@pytest.mark.parametrize("outage", ["refused", "bad-gateway"])
def test_the_node_disappears_and_comes_back(
    chain: Ledger,
    proxy: RpcProxy,
    database_url: str,
    tmp_path: Path,
    indexer_log: Callable[[], list[logging.LogRecord]],
    outage: str,
) -> None:
    """Indexer.run in a thread, through a proxy that goes away for 2.5 s (connections
    refused, or HTTP 502) while the chain moves on; the loop must survive and catch up."""
    dep = chain.deployment
    engine, deployment_id = _engine(database_url, dep.chain_id, dep.address, dep.block_number)
    indexer = Indexer(
        make_web3(proxy.url), engine, deployment_id, IndexerConfig(confirmations=2, poll_interval=0.05)
    )
    stop = threading.Event()
    thread = threading.Thread(target=indexer.run, args=(stop,), daemon=True)
    thread.start()

    def caught_up() -> bool:
        cursor = indexer.cursor()
        return cursor is not None and cursor[0] >= chain.w3.eth.block_number

    try:
        activity(chain, "before")
        wait_for(caught_up, 20, "the indexer to catch up before the outage")

        if outage == "refused":
            proxy.stop()
        else:
            proxy.bad_gateway = True
        went_down = time.monotonic()
        activity(chain, "during")
        for i in range(5):
            chain.donate(f"during-extra-{i}", 1 + i)
        time.sleep(max(0.0, 2.5 - (time.monotonic() - went_down)))
        assert not caught_up()
        if outage == "refused":
            proxy.start()  # a new server on the same port
        else:
            proxy.bad_gateway = False

        activity(chain, "after")
        wait_for(lambda: caught_up() or not thread.is_alive(), 30, "the indexer to catch up after the outage")
        assert thread.is_alive(), "the run loop died"
        assert caught_up()
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()

    failures = [r for r in indexer_log() if "step failed" in r.getMessage()]
    assert failures, "no request failed during the outage: the test proves nothing"
    if outage == "bad-gateway":
        assert proxy.failed > 0
    assert mirrored_logs(engine) == chain_logs(chain)
    assert dump(engine) == fresh_dump(chain, tmp_path)
    engine.dispose()
