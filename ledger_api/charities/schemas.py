from __future__ import annotations

from ledger_api.core.schemas import Hash32, Strict, Text


class CharityCreate(Strict):
    name: Text(200)  # type: ignore[valid-type]
    metadata_hash: Hash32 | None = None
