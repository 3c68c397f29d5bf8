"""Webhook requests and answers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ledger_api.core.answers import Answer
from ledger_api.core.schemas import CampaignId, CharityId, Strict
from ledger_api.webhooks.service import KNOWN_TYPES
from ledger_api.webhooks.targets import MAX_URL_LENGTH

EventType = Literal[KNOWN_TYPES]  # type: ignore[valid-type]


class WebhookScope(Strict):
    charity_id: CharityId | None = Field(default=None, description="Only this charity's records (CH-...).")
    campaign_id: CampaignId | None = Field(default=None, description="Only this campaign's records (CP-...).")


class WebhookCreate(Strict):
    url: Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)] = Field(
        description="Where to POST each event: https (http in development only), a public address."
    )
    events: Annotated[list[EventType], Field(min_length=1, max_length=len(KNOWN_TYPES))] = Field(
        description="The event types to send (record.retracted is always sent for a delivered record)."
    )
    scope: WebhookScope = Field(default_factory=WebhookScope)


class ScopeAnswer(Answer):
    charity_id: str | None
    campaign_id: str | None


class WebhookAnswer(Answer):
    id: str
    url: str
    events: list[str]
    scope: ScopeAnswer
    created_at: str
    disabled_at: str | None
    disabled_reason: str | None
    consecutive_failures: int


class WebhookCreated(WebhookAnswer):
    secret: str = Field(description="The signing secret (whsec_...): in this answer only.")


class WebhookList(Answer):
    items: list[WebhookAnswer]


class AttemptAnswer(Answer):
    at: str
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryAnswer(Answer):
    event_id: str
    type: str
    status: str = Field(description="pending, delivered, failed or cancelled")
    attempts: int
    next_attempt_at: str | None
    delivered_at: str | None
    log: list[AttemptAnswer]


class DeliveryList(Answer):
    items: list[DeliveryAnswer]
