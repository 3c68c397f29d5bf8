"""Names of well-known chains, for the pages and GET /v1/contract when LEDGER_NETWORK_NAME
is unset. Kept small on purpose: a chain not listed is named by its id."""

from __future__ import annotations

EMBEDDED = "embedded eth-tester chain"

KNOWN: dict[int, str] = {
    1: "Ethereum mainnet",
    11155111: "Sepolia testnet",
    17000: "Holesky testnet",
    31337: "anvil (local)",
}


def network_name(chain_id: int, embedded: bool, configured: str | None = None) -> str:
    """LEDGER_NETWORK_NAME if set; else the embedded chain's name, a known chain's name, or
    "chain <id>"."""
    if configured:
        return configured
    if embedded:
        return EMBEDDED
    return KNOWN.get(chain_id, f"chain {chain_id}")
