"""Prometheus metrics of the indexer, labelled by chain id and contract address.

`/metrics` on the API serves them when the indexer runs in the service process;
`ledger index --metrics-port` serves them from a standalone indexer.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LABELS = ("chain_id", "contract")

INDEXED_BLOCK = Gauge("ledger_indexer_indexed_block", "Highest block mirrored into SQL.", LABELS)
HEAD_BLOCK = Gauge("ledger_indexer_head_block", "Head block of the node at the last step.", LABELS)
FINALIZED_BLOCK = Gauge(
    "ledger_indexer_finalized_block", "Highest block deeper than the confirmation window.", LABELS
)
LAG_BLOCKS = Gauge("ledger_indexer_lag_blocks", "Head block minus highest indexed block.", LABELS)
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
