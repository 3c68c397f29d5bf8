"""Server-rendered public pages (Chinese and English, no JavaScript): the home page and
search, a donor's trace with its flow diagram, campaigns, charities, disbursements, and
the printable receipt with its QR code. `install(app)` adds them to the API's app."""

from ledger_api.pages.routes import install

__all__ = ["install"]
