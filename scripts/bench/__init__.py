"""Benchmarks and the gas report, each run from the checkout as `.venv/bin/python -m
scripts.bench.<name>` (index, read, write, gas; `--help` lists a benchmark's sizes).
They import the product (ledger_api, indexer) and their one support module,
scripts/bench/support.py, never tests/ (tests/test_support_code.py checks)."""
