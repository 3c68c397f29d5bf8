from __future__ import annotations

from ledger_api.core.schemas import ChainText, Hash32, Strict


class CharityCreate(Strict):
    name: ChainText(200)  # type: ignore[valid-type]
    metadata_hash: Hash32 | None = None
