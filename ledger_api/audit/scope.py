"""Who may audit what, and the scope of an audit request.

Admin keys and unlimited auditor keys see every charity; an auditor key limited to some
charities sees those, and a charity key only its own: asking for another charity's (or
one of its campaigns') non-public records answers 404, as if they did not exist. With no
charity filter, a charity key and an auditor key limited to one charity get that charity;
an auditor key limited to several must name one (422): the audit queries (trail, exports,
anomalies, reconciliation) are built for one charity or all, and a wrong guess at a set
would be a leak, so the service does not guess. The anonymous public gets 401: the audit views show operator
accounts, donor commitments and record metadata that the public pages leave out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query
from sqlalchemy import Connection, select

from ledger_api.core import ids
from ledger_api.core.access_log import Trace, TraceDep
from ledger_api.core.errors import Forbidden, InvalidRequest, NotFound, Problem
from ledger_api.core.schemas import CampaignId, CharityId
from ledger_api.core.security import CurrentPrincipal, Principal
from ledger_api.mirror import tables as im
from ledger_api.mirror.gateway import Mirror, MirrorDep

CharityFilter = Annotated[CharityId | None, Query(description="Only this charity (CH-...).")]
CampaignFilter = Annotated[CampaignId | None, Query(description="Only this campaign (CP-...).")]


def _auditor(principal: CurrentPrincipal) -> Principal:
    if principal.role not in ("auditor", "admin", "charity"):
        raise Forbidden("audit views need an auditor, admin or charity key")
    return principal


AuditPrincipal = Annotated[Principal, Depends(_auditor)]


@dataclass(frozen=True)
class Scope:
    """What an audit request covers: one campaign, one charity, or (charity None) all."""

    charity_id: str | None = None  # 0x hex
    campaign_id: str | None = None  # 0x hex

    def describe(self) -> dict[str, Any]:
        return {
            "charity_id": ids.from_bytes32(self.charity_id) if self.charity_id else None,
            "campaign_id": ids.from_bytes32(self.campaign_id) if self.campaign_id else None,
        }


def resolve(
    mirror: Mirror,
    connection: Connection,
    principal: Principal,
    charity_id: str | None,
    campaign_id: str | None,
) -> Scope:
    """The scope of a request, checked against the caller: unknown IDs and other
    charities' records are 404; a charity key with no filter gets its own charity."""
    charity_hex = ids.to_hex(charity_id, "charity") if charity_id else None
    campaign_hex = ids.to_hex(campaign_id, "campaign") if campaign_id else None
    if campaign_hex is not None:
        owner = connection.execute(
            select(im.Campaign.charity_id).where(
                im.Campaign.deployment_id == mirror.deployment_id, im.Campaign.campaign_id == campaign_hex
            )
        ).scalar_one_or_none()
        if owner is None or (charity_hex is not None and owner != charity_hex):
            raise NotFound("campaign not found (or not mirrored yet)")
        charity_hex = owner
    if charity_hex is not None:
        known = connection.execute(
            select(im.Charity.charity_id).where(
                im.Charity.deployment_id == mirror.deployment_id, im.Charity.charity_id == charity_hex
            )
        ).scalar_one_or_none()
        if known is None:
            raise NotFound("charity not found (or not mirrored yet)")
    if principal.role == "charity" and charity_hex is None:
        charity_hex = principal.charity_id
    elif principal.role == "auditor" and principal.charities is not None and charity_hex is None:
        if len(principal.charities) != 1:
            named = ", ".join(ids.from_bytes32(charity) for charity in principal.charities)
            raise InvalidRequest(
                f"this auditor key may read only some charities ({named}): name one with charity_id"
            )
        charity_hex = principal.charities[0]
    if charity_hex is not None and not principal.can_read(charity_hex):
        # The same answer as for an ID that does not exist: nothing given away.
        what = "campaign" if campaign_hex else "charity"
        raise NotFound(f"{what} not found (or not mirrored yet)")
    return Scope(charity_hex, campaign_hex)


def lookup(mirror: Mirror, principal: Principal, charity_id: str | None, campaign_id: str | None) -> Scope:
    """`resolve` on a connection of its own."""
    with mirror.engine.connect() as connection:
        return resolve(mirror, connection, principal, charity_id, campaign_id)


def traced_lookup(
    mirror: Mirror, principal: Principal, trace: Trace, charity_id: str | None, campaign_id: str | None
) -> Scope:
    """`lookup`, with a refusal (another charity's, an unknown or out-of-scope ID) left in
    the access log with the scope that was asked for."""
    try:
        return lookup(mirror, principal, charity_id, campaign_id)
    except Problem as refusal:
        trace.refused(charity_id, campaign_id, refusal.status)
        raise


def _scope(
    mirror: MirrorDep,
    principal: AuditPrincipal,
    trace: TraceDep,
    charity_id: CharityFilter = None,
    campaign_id: CampaignFilter = None,
) -> Scope:
    return traced_lookup(mirror, principal, trace, charity_id, campaign_id)


# The scope of an audit request, from its `charity_id` and `campaign_id` query parameters.
ScopeDep = Annotated[Scope, Depends(_scope)]
