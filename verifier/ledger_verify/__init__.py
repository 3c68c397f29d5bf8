"""ledger-verify: checks what a charity ledger service claims about a donation, a
disbursement or a campaign against an Ethereum node (or a proof bundle and trusted block
hashes), trusting nothing the service computed."""

__version__ = "0.1.0"
