from __future__ import annotations

from ledger_api.core.schemas import CharityId, Currency, Goal, Hash32, Strict, Text


class CampaignCreate(Strict):
    charity_id: CharityId
    name: Text(200)  # type: ignore[valid-type]
    currency: Currency
    goal: Goal
    metadata_hash: Hash32 | None = None
