"""The operator accounts of the charities this service registered (the keystore holds
their keys; this table says which account signs for which charity)."""

from __future__ import annotations

from sqlalchemy import Engine, select

from ledger_api.core.models import CharityAccount


def operator_of(engine: Engine, deployment_id: int | None, charity_hex: str) -> str | None:
    """The operator account of `charity_hex` (0x hex), or None for a charity this
    service did not register."""
    with engine.connect() as connection:
        operator = connection.execute(
            select(CharityAccount.operator).where(
                CharityAccount.deployment_id == deployment_id,
                CharityAccount.charity_id == charity_hex,
            )
        ).scalar_one_or_none()
    return None if operator is None else str(operator)
