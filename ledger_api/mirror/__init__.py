"""The read side: the one way the API reads the SQL mirror the indexer keeps (its tables,
the chain references of mirrored rows, and the `Mirror` gateway routes depend on)."""
