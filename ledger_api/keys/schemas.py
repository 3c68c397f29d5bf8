from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ledger_api.core.answers import Answer
from ledger_api.core.schemas import CharityId, Strict, Text


class KeyCreate(Strict):
    role: Literal["charity", "auditor"]
    charity_id: CharityId | None = None
    label: Text(200) | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _scope(self) -> KeyCreate:
        if self.role == "charity" and self.charity_id is None:
            raise ValueError("a charity key needs a charity_id")
        if self.role == "auditor" and self.charity_id is not None:
            raise ValueError("an auditor key reads everything; it takes no charity_id")
        return self


class KeyIssued(Answer):
    id: str
    key: str | None = Field(description="The key itself: in the first answer only (a replay says null).")
    role: Literal["charity", "auditor"]
    charity_id: str | None
    label: str | None
