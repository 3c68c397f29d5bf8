"""Issuing a key stores only its digest and the key authenticates as issued; revoking
it shuts it out; revoking an unknown key says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger_api.core import db
from ledger_api.core.errors import Unauthenticated
from ledger_api.core.models import ApiKey
from ledger_api.core.security import authenticate
from ledger_api.keys.service import issue_key, revoke_key


def test_an_issued_key_authenticates_until_revoked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    charity = "0x" + "ab" * 32
    issued = issue_key(engine, "charity", charity, "front desk")
    with engine.connect() as connection:
        row = connection.execute(ApiKey.__table__.select().where(ApiKey.id == issued.id)).one()  # type: ignore[attr-defined]
    assert issued.key.startswith(f"lk_{issued.id}_")
    assert issued.key.split("_", 2)[2] not in row.secret_hash  # only the digest is stored
    assert (row.role, row.charity_id, row.label, row.revoked_at) == ("charity", charity, "front desk", None)

    principal = authenticate(engine, None, f"Bearer {issued.key}")
    assert principal is not None
    assert (principal.key_id, principal.role, principal.charity_id) == (issued.id, "charity", charity)

    assert revoke_key(engine, issued.id)
    assert revoke_key(engine, issued.id)  # again: still a known key, nothing changes
    with pytest.raises(Unauthenticated):
        authenticate(engine, None, f"Bearer {issued.key}")
    assert not revoke_key(engine, "nosuchkey000")
    engine.dispose()
