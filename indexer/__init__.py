"""The indexer: mirrors the ledger contract's events into SQL (see DESIGN.md, "Indexer rules")."""
