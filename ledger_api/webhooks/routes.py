"""Webhooks of charity, auditor and admin keys: register, list, read, delete, the log.

Each endpoint belongs to the key that registered it: another key's is "not found". Its
scope is checked as an audit request's (audit/scope.py): a charity key may scope to its
own charity or one of its campaigns, an auditor key only within the charities it reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse

from ledger_api.audit.scope import lookup
from ledger_api.core.errors import (
    AUTH_ERRORS,
    BODY_ERRORS,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    problems,
)
from ledger_api.core.idempotency import WITHHOLD_HEADER
from ledger_api.core.security import CurrentPrincipal, Principal
from ledger_api.mirror.gateway import MirrorDep
from ledger_api.webhooks import service, targets
from ledger_api.webhooks.schemas import (
    DeliveryList,
    WebhookAnswer,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

WebhookId = Annotated[str, Path(max_length=27, pattern=r"^wh_[0-9a-f]{24}$")]


def _subscriber(principal: CurrentPrincipal) -> Principal:
    if principal.role not in ("admin", "charity", "auditor"):
        raise Forbidden("webhooks need a charity, auditor or admin key")
    return principal


Subscriber = Annotated[Principal, Depends(_subscriber)]


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses=problems(*AUTH_ERRORS, *BODY_ERRORS, NotFound, Conflict),
)
def create_webhook(body: WebhookCreate, mirror: MirrorDep, principal: Subscriber) -> JSONResponse:
    """Register an endpoint. Its signing secret is in this answer only. Events of records
    that become final from now on are sent to it (README, "Webhooks")."""
    scope = lookup(mirror, principal, body.scope.charity_id, body.scope.campaign_id)
    try:
        targets.resolve(body.url, mirror.settings)
    except targets.RefusedTarget as refusal:
        raise InvalidRequest(str(refusal)) from None
    registered = service.register(
        mirror, principal, body.url, list(body.events), scope.charity_id, scope.campaign_id
    )
    answer = WebhookCreated(**registered.endpoint, secret=registered.secret)
    return JSONResponse(answer.body(), status_code=201, headers={WITHHOLD_HEADER.decode(): "secret"})


@router.get("", response_model=WebhookList, responses=problems(*AUTH_ERRORS))
def list_webhooks(mirror: MirrorDep, principal: Subscriber) -> WebhookList:
    """This key's endpoints (deleted ones too, with when)."""
    return WebhookList(items=[WebhookAnswer(**row) for row in service.listing(mirror, principal)])


@router.get(
    "/{webhook_id}", response_model=WebhookAnswer, responses=problems(*AUTH_ERRORS, InvalidRequest, NotFound)
)
def get_webhook(webhook_id: WebhookId, mirror: MirrorDep, principal: Subscriber) -> WebhookAnswer:
    return WebhookAnswer(**service.get(mirror, principal, webhook_id))


@router.delete("/{webhook_id}", status_code=204, responses=problems(*AUTH_ERRORS, InvalidRequest, NotFound))
def delete_webhook(webhook_id: WebhookId, mirror: MirrorDep, principal: Subscriber) -> Response:
    """Disable the endpoint: nothing more is sent (queued deliveries are cancelled); its
    delivery log stays readable."""
    service.delete(mirror, principal, webhook_id)
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryList,
    responses=problems(*AUTH_ERRORS, InvalidRequest, NotFound),
)
def list_deliveries(
    webhook_id: WebhookId,
    mirror: MirrorDep,
    principal: Subscriber,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryList:
    """The delivery log, newest first: each event's id and type, its status, every attempt
    (time, status code or error) and when the next one is due."""
    return DeliveryList.model_validate({"items": service.deliveries(mirror, principal, webhook_id, limit)})
