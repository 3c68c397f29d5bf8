from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from ledger_api.core.answers import Answer
from ledger_api.core.schemas import CharityId, Strict, Text

# The longest lifetime a key may be given (and the latest expiry): ten years.
MAX_DAYS = 3650
# How long a rotated key keeps working next to its successor, by default and at most.
GRACE_HOURS = 24
MAX_GRACE_HOURS = 7 * 24

Days = Annotated[int, Field(ge=1, le=MAX_DAYS, description="The key expires this many days from now.")]


class Lifetime(Strict):
    expires_at: AwareDatetime | None = Field(
        default=None, description="When the key stops working (ISO 8601, zoned; future; within 10 years)."
    )
    expires_in_days: Days | None = None

    @model_validator(mode="after")
    def _one_expiry(self) -> Lifetime:
        if self.expires_at is not None and self.expires_in_days is not None:
            raise ValueError("give expires_at or expires_in_days, not both")
        return self


class KeyCreate(Lifetime):
    role: Literal["charity", "auditor"]
    charity_id: CharityId | None = None
    charities: list[CharityId] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="An auditor key limited to these charities (CH-...); absent: every charity.",
    )
    label: Text(200) | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _scope(self) -> KeyCreate:
        if self.role == "charity" and self.charity_id is None:
            raise ValueError("a charity key needs a charity_id")
        if self.role == "auditor" and self.charity_id is not None:
            raise ValueError("an auditor key takes no charity_id; limit it with charities")
        if self.role == "charity" and self.charities is not None:
            raise ValueError("only an auditor key is limited with charities")
        return self


class KeyRotate(Lifetime):
    """The old key keeps working for `grace_hours`, then answers `key-expired`. The new key
    has the old one's role, charity, scope and label, and (unless given) its lifetime."""

    grace_hours: Annotated[int, Field(ge=0, le=MAX_GRACE_HOURS)] = GRACE_HOURS


class KeyIssued(Answer):
    id: str
    key: str | None = Field(description="The key itself: in the first answer only (a replay says null).")
    role: Literal["admin", "charity", "auditor", "approver"]
    charity_id: str | None
    charities: list[str] | None = Field(default=None, description="An auditor key's charities; null: all.")
    expires_at: str | None = Field(default=None, description="When the key stops working; null: never.")
    label: str | None
    rotated_from: str | None = Field(default=None, description="The key this one replaced.")
    previous_expires_at: str | None = Field(
        default=None, description="After a rotation: when the replaced key stops working."
    )
