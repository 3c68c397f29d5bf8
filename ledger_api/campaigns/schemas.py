from __future__ import annotations

from ledger_api.core.schemas import ChainText, CharityId, Currency, Goal, Hash32, Strict


class CampaignCreate(Strict):
    charity_id: CharityId
    name: ChainText(200)  # type: ignore[valid-type]
    currency: Currency
    goal: Goal
    metadata_hash: Hash32 | None = None
