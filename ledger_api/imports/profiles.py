"""Saved column mappings ("profiles"), per charity: made once, reused every month.
Another charity's profiles are not found; names are unique per charity."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, insert, select, update

from ledger_api.core.errors import InvalidRequest, NotFound
from ledger_api.core.models import ImportProfile
from ledger_api.imports.schemas import Mapping, Profile

MAX_PROFILES = 100  # per charity


def _profile(name: str, mapping: str, updated_at: datetime) -> Profile:
    return Profile(name=name, mapping=json.loads(mapping), updated_at=updated_at.isoformat())


def list_all(engine: Engine, deployment_id: int, charity_hex: str) -> list[Profile]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(ImportProfile.name, ImportProfile.mapping, ImportProfile.updated_at)
            .where(ImportProfile.deployment_id == deployment_id, ImportProfile.charity_id == charity_hex)
            .order_by(ImportProfile.name)
        ).all()
    return [_profile(*row) for row in rows]


def get(engine: Engine, deployment_id: int, charity_hex: str, name: str) -> Profile:
    with engine.connect() as connection:
        row = connection.execute(
            select(ImportProfile.name, ImportProfile.mapping, ImportProfile.updated_at).where(
                ImportProfile.deployment_id == deployment_id,
                ImportProfile.charity_id == charity_hex,
                ImportProfile.name == name,
            )
        ).first()
    if row is None:
        raise NotFound("import profile not found")
    return _profile(*row)


def mapping_of(engine: Engine, deployment_id: int, charity_hex: str, name: str) -> Mapping:
    return Mapping.model_validate(get(engine, deployment_id, charity_hex, name).mapping)


def put(engine: Engine, deployment_id: int, charity_hex: str, name: str, mapping: Mapping) -> Profile:
    """Save (or replace) a profile."""
    text = mapping.model_dump_json(exclude_none=True)
    now = datetime.now(UTC)
    where = (
        ImportProfile.deployment_id == deployment_id,
        ImportProfile.charity_id == charity_hex,
        ImportProfile.name == name,
    )
    with engine.begin() as connection:
        if connection.execute(
            update(ImportProfile).where(*where).values(mapping=text, updated_at=now)
        ).rowcount:
            return _profile(name, text, now)
        count = len(
            connection.execute(
                select(ImportProfile.id).where(
                    ImportProfile.deployment_id == deployment_id, ImportProfile.charity_id == charity_hex
                )
            ).all()
        )
        if count >= MAX_PROFILES:
            raise InvalidRequest(f"a charity keeps at most {MAX_PROFILES} profiles", code="too-many-profiles")
        connection.execute(
            insert(ImportProfile).values(
                deployment_id=deployment_id, charity_id=charity_hex, name=name, mapping=text, updated_at=now
            )
        )
    return _profile(name, text, now)


def remove(engine: Engine, deployment_id: int, charity_hex: str, name: str) -> None:
    with engine.begin() as connection:
        gone = connection.execute(
            delete(ImportProfile).where(
                ImportProfile.deployment_id == deployment_id,
                ImportProfile.charity_id == charity_hex,
                ImportProfile.name == name,
            )
        ).rowcount
    if gone != 1:
        raise NotFound("import profile not found")
