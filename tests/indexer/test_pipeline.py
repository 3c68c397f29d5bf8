"""The pipelined read of a backfill (indexer.Prefetch) on a real anvil node: reading ahead
is bounded by the queue, a reorg under ranges already read ahead is rewound exactly as
one under the cursor, and a read that fails on the prefetch thread surfaces in the step
that needs it and is retried from the cursor. Each ends with the mirror equal to a fresh
index of the canonical chain."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests

from indexer.indexer import Indexer, IndexerConfig, Prefetch
from ledger_api.chain.contract import make_web3
from tests.indexer.rpcproxy import RpcProxy
from tests.indexer.test_mirror import _engine, _indexer, activity, chain, dump  # noqa: F401
from tests.indexer.test_resilience import chain_logs, donation_tx, fresh_dump, mirrored_logs, rpc, sync
from tests.ledger import Ledger

pytestmark = pytest.mark.anvil

# Two blocks a range, two ranges read ahead: a chain of 20-odd blocks is many ranges.
SMALL = {"initial_range": 2, "max_range": 2, "prefetch": 2}


def _spread(led: Ledger, n: int) -> None:
    """Activity, then `n` single donations (a block each)."""
    activity(led, "base")
    for i in range(n):
        led.donate(f"spread-{i}", 1 + i)


def _reading_ahead(indexer: Indexer) -> Prefetch:
    prefetch = indexer._prefetch
    assert prefetch is not None, "the first step behind the head started no read-ahead"
    deadline = time.monotonic() + 20
    while not prefetch.queue.full():
        assert time.monotonic() < deadline, "the read-ahead queue never filled"
        time.sleep(0.01)
    return prefetch


def test_reading_ahead_stops_at_the_queue_bound(chain: Ledger, database_url: str) -> None:  # noqa: F811
    _spread(chain, 20)
    indexer, engine = _indexer(chain, database_url, **SMALL)
    reads: list[tuple[int, int]] = []
    get_logs = indexer._get_logs

    def counting(start: int, end: int) -> Any:
        reads.append((start, end))
        return get_logs(start, end)

    indexer._get_logs = counting  # type: ignore[method-assign]
    assert not indexer.step()
    _reading_ahead(indexer)
    time.sleep(0.5)  # an unbounded reader would go on to the head meanwhile
    # The step's own range, two queued, one read and waiting for room.
    assert len(reads) <= 1 + 2 + 1, reads
    assert chain.w3.eth.block_number - reads[-1][1] > 4
    sync(indexer)
    assert mirrored_logs(engine) == chain_logs(chain)
    engine.dispose()


def test_a_reorg_under_ranges_read_ahead_is_rewound(
    chain: Ledger,  # noqa: F811
    database_url: str,
    tmp_path: Path,
) -> None:
    _spread(chain, 12)
    indexer, engine = _indexer(chain, database_url, **SMALL)
    assert not indexer.step()
    prefetch = _reading_ahead(indexer)
    queued = list(prefetch.queue.queue)
    cursor = indexer.cursor()
    assert cursor is not None
    # Replace every block above the first range written, those read ahead included.
    depth = chain.w3.eth.block_number - cursor[0]
    rpc(chain.w3, "anvil_reorg", [depth, [[donation_tx(chain, f"other-{i}", 50 + i), i] for i in range(3)]])
    assert all(chain.w3.eth.get_block(r.end)["hash"].to_0x_hex() != r.headers[r.end]["hash"] for r in queued)

    sync(indexer)
    assert indexer.reorgs == 1
    assert mirrored_logs(engine) == chain_logs(chain)
    assert dump(engine) == fresh_dump(chain, tmp_path)
    engine.dispose()


def test_a_failed_read_ahead_is_raised_and_read_again(
    chain: Ledger,  # noqa: F811
    anvil: Any,
    database_url: str,
    tmp_path: Path,
) -> None:
    _spread(chain, 16)
    dep = chain.deployment
    with RpcProxy(anvil.url) as proxy:
        engine, deployment_id = _engine(database_url, dep.chain_id, dep.address, dep.block_number)
        config = IndexerConfig(confirmations=2, **SMALL)
        indexer = Indexer(make_web3(proxy.url), engine, deployment_id, config)
        assert not indexer.step()
        _reading_ahead(indexer)
        proxy.bad_gateway = True
        # The ranges already read are written; then the prefetch thread's failure is raised.
        with pytest.raises(requests.exceptions.HTTPError):
            for _ in range(10):
                indexer.step()
        assert indexer._prefetch is None
        written = indexer.cursor()
        proxy.bad_gateway = False
        sync(indexer)
    assert written is not None and written[0] < chain.w3.eth.block_number
    assert mirrored_logs(engine) == chain_logs(chain)
    assert dump(engine) == fresh_dump(chain, tmp_path)
    engine.dispose()
