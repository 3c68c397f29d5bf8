"""The deployment, for anyone who wants to check the ledger without trusting this service:
which chain and contract, how the contract was built (GET /v1/contract), and, on the
embedded chain, the chain itself over read-only JSON-RPC (POST /rpc)."""
