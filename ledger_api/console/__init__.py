"""The console: server-rendered pages where a charity's staff (and the registrar) write to
the ledger without an API client. Sessions and CSRF in `sessions.py`, amounts typed in major
units in `core/amounts.py`, the contract's refusals in words in `explain.py`, the pages in
`routes.py` (a charity's) and `registrar.py` (the platform's)."""
