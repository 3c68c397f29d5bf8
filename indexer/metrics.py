"""Prometheus metrics of the indexer, labelled by chain id and contract address.

`/metrics` on the API serves them when the indexer runs in the service process;
`ledger index --metrics-port` serves them from a standalone indexer.

Under `ledger serve --workers N` prometheus_client runs in multiprocess mode (see
ledger_api/core/metrics.py): counters and histograms are summed over the workers, and a
gauge shows the value last set by a live process, i.e. by the worker that writes the
mirror now (the others stand by and set none). Without a mode a gauge would be one series
per process, with a `pid` label. In a single process the modes change nothing.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

LATEST: Final = "livemostrecent"  # gauges under multiprocess mode: the value last set by a live process

LABELS = ("chain_id", "contract")

INDEXED_BLOCK = Gauge(
    "ledger_indexer_indexed_block", "Highest block mirrored into SQL.", LABELS, multiprocess_mode=LATEST
)
HEAD_BLOCK = Gauge(
    "ledger_indexer_head_block", "Head block of the node at the last step.", LABELS, multiprocess_mode=LATEST
)
FINALIZED_BLOCK = Gauge(
    "ledger_indexer_finalized_block",
    "Highest block deeper than the confirmation window.",
    LABELS,
    multiprocess_mode=LATEST,
)
LAG_BLOCKS = Gauge(
    "ledger_indexer_lag_blocks", "Head block minus highest indexed block.", LABELS, multiprocess_mode=LATEST
)
EVENTS = Counter("ledger_indexer_events", "Ledger events written to SQL.", LABELS)
REORGS = Counter("ledger_indexer_reorgs", "Chain reorganisations rolled back.", LABELS)
DEEP_REORGS = Counter(
    "ledger_indexer_deep_reorgs", "Reorganisations deeper than the confirmation window.", LABELS
)
REFUSED = Counter("ledger_indexer_refused_ranges", "eth_getLogs ranges the node refused.", LABELS)
ERRORS = Counter("ledger_indexer_errors", "Steps that failed and were retried.", LABELS)
RANGE_SECONDS = Histogram(
    "ledger_indexer_range_seconds",
    "Time to read, check and write one block range.",
    LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
